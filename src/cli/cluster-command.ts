// `kube-prepull cluster up|down|status|env` (also `npm run cluster -- …`): the embedded local
// cluster for development, tests and the demo (docs/local-cluster.md).
import path from "node:path";
import { Argument, Command, InvalidArgumentError } from "commander";
import { ensureControlPlaneBinaries, packageRoot } from "../local-cluster/binaries.js";
import { clusterStatus, COMPONENTS, envLines, startCluster, stateDirOf, stopCluster } from "../local-cluster/cluster.js";
import { isComponent, restartComponent } from "../local-cluster/restart.js";
import { Interrupted } from "../local-cluster/wait.js";
import { parseDurationOption } from "./serve-command.js";

export interface CliContext {
  env: NodeJS.ProcessEnv;
  out: (line: string) => void;
  err: (line: string) => void;
}

export function parsePositiveInteger(value: string, max = 5000, min = 0): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

interface ClusterFlags {
  name: string;
  stateDir: string;
}

const DEFAULTS = (): ClusterFlags => ({ name: "dev", stateDir: path.join(packageRoot(), ".cluster") });

/** `npm run cluster -- [--name N] [--state-dir D] <subcommand>` for this cluster, the defaults left out. */
export function clusterCommandLine(cluster: ClusterFlags, defaults: ClusterFlags, subcommand: string): string {
  const quote = (value: string): string => (/^[\w./:@%+=-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`);
  const flags = [
    ...(cluster.name !== defaults.name ? ["--name", quote(cluster.name)] : []),
    ...(path.resolve(cluster.stateDir) !== path.resolve(defaults.stateDir) ? ["--state-dir", quote(path.resolve(cluster.stateDir))] : []),
  ];
  return ["npm run -s cluster --", ...flags, subcommand].join(" ");
}

/**
 * `interruption` gives SIGINT/SIGTERM as an AbortSignal (asking installs the handlers): an
 * interrupted `up` stops what it started and removes the state, as `down` would.
 */
export function clusterCommand(ctx: CliContext, interruption: () => AbortSignal): Command {
  const cluster = new Command("cluster")
    .description("run the embedded local cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok) on 127.0.0.1")
    .option("--name <name>", "cluster name (its state lives in <state-dir>/<name>); before or after the subcommand", DEFAULTS().name)
    .option("--state-dir <dir>", "folder for cluster state", DEFAULTS().stateDir);

  const stateDir = (): string => {
    const opts = cluster.opts<ClusterFlags>();
    return path.resolve(stateDirOf(opts.stateDir, opts.name));
  };

  cluster
    .command("up")
    .description("build the control plane if needed, start it with simulated (and optionally real) nodes, return when usable (interrupted, it stops what it started)")
    .option("--nodes <n>", "number of simulated nodes", (v) => parsePositiveInteger(v), 3)
    .option("--real-nodes <n>", "number of real nodes (kubelet + containerd, root and Debian packages needed; docs/local-cluster.md)", (v) => parsePositiveInteger(v, 8), 0)
    .action(async (opts: { nodes: number; realNodes: number }) => {
      const { name, stateDir: root } = cluster.opts<ClusterFlags>();
      const started = Date.now();
      const signal = interruption();
      const running = await startCluster({
        name,
        stateRoot: root,
        binaries: await ensureControlPlaneBinaries({ progress: ctx.err, env: ctx.env, signal }),
        nodes: opts.nodes,
        realNodes: opts.realNodes,
        env: ctx.env,
        progress: (line) => ctx.err(`[cluster ${name}] ${line}`),
        signal,
      }).catch((error: unknown) => {
        if (error instanceof Interrupted) throw new Interrupted(error.reason, `stopped the cluster it was starting and removed ${stateDir()}`);
        throw error;
      });
      ctx.err(`[cluster ${name}] up in ${((Date.now() - started) / 1000).toFixed(1)}s: ${running.state.server}, ${opts.nodes} simulated node(s), ${opts.realNodes} real node(s)`);
      if (running.state.real) ctx.err(`[cluster ${name}] registry: push to ${running.state.real.registry.addresses.push}, nodes pull from ${running.state.real.registry.addresses.pull}`);
      ctx.err(`[cluster ${name}] use it with:  eval "$(${clusterCommandLine({ name, stateDir: root }, DEFAULTS(), "env")})"`);
      ctx.out(envLines(running.state).join("\n"));
    });

  cluster
    .command("down")
    .description("stop every process of the cluster and remove its state")
    .action(async () => {
      await stopCluster(stateDir());
      ctx.err(`[cluster] stopped and removed ${stateDir()}`);
    });

  addRestartCommand(cluster, stateDir, ctx);

  cluster
    .command("status")
    .description("show the cluster's components and whether they run")
    .action(() => {
      const status = clusterStatus(stateDir());
      if (!status) {
        ctx.out(`no cluster at ${stateDir()}`);
        process.exitCode = 1;
        return;
      }
      ctx.out(`cluster ${status.state.name}: ${status.state.server} (started ${status.state.startedAt})`);
      for (const c of status.components) {
        ctx.out(`  ${c.component.padEnd(24)} ${c.running ? "running" : "not running"}${c.pid ? ` (pid ${c.pid})` : ""}`);
      }
      const real = status.state.real;
      if (real) {
        const a = real.registry.addresses;
        ctx.out(`registry: push ${a.push}, pull ${a.pull} (open), ${a.authPull} (credentials); proxy control ${a.pullControl}`);
        for (const node of real.nodes) ctx.out(`real node ${node.name}: ${node.dir} (bridge ${node.bridge}, pods ${node.subnet})`);
      }
      if (status.components.some((c) => !c.running)) process.exitCode = 1;
    });

  cluster
    .command("env")
    .description("print shell exports (KUBECONFIG, PATH with the version-matched kubectl first)")
    .action(() => {
      const status = clusterStatus(stateDir());
      if (!status) {
        ctx.err(`no cluster at ${stateDir()}; start one with: ${clusterCommandLine(cluster.opts<ClusterFlags>(), DEFAULTS(), "up")}`);
        process.exitCode = 1;
        return;
      }
      ctx.out(envLines(status.state).join("\n"));
    });

  return cluster;
}

/** `cluster restart <component> [--down-for 60s]` (docs/local-cluster.md "Restarting a component"). */
function addRestartCommand(cluster: Command, stateDir: () => string, ctx: CliContext): void {
  cluster
    .command("restart")
    .addArgument(new Argument("<component>", "the component to restart").choices(COMPONENTS))
    .description(`stop one component (${COMPONENTS.join(", ")}) and start it again as it ran: a control-plane outage`)
    .option("--down-for <duration>", "how long it stays down (e.g. 60s)", parseDurationOption, 0)
    .action(async (component: string, opts: { downFor: number }) => {
      if (!isComponent(component)) return; // commander checked the choices
      const result = await restartComponent(stateDir(), component, { downForMs: opts.downFor * 1000, progress: (line) => ctx.err(`[cluster] ${line}`) });
      ctx.err(`[cluster] ${component} back (pid ${result.newPid}) after ${((result.readyAt - result.stoppedAt) / 1000).toFixed(1)}s down`);
    });
}
