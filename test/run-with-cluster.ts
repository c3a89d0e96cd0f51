// Runs a command (the test runner) against one local cluster started for the whole run, then stops
// the cluster whatever happened: `node dist/test/run-with-cluster.js -- node --test …`.
// The tests find the cluster through KUBE_PREPULL_TEST_KUBECONFIG (test/support/cluster.ts), and
// the pinned helm through KUBE_PREPULL_TEST_HELM (test/support/helm.ts).
// The cluster has one real node (KUBE_PREPULL_TEST_REAL_NODES) besides the simulated ones, and for
// the whole run no process of the suite may connect outside 127.0.0.0/8 (network-watch.ts): the
// run fails if one did.
import { spawn } from "node:child_process";
import path from "node:path";
import { ensureControlPlaneBinaries, ensureHelm, packageRoot } from "../src/local-cluster/binaries.js";
import { readClusterState, startCluster, stateDirOf, stopCluster } from "../src/local-cluster/cluster.js";
import { realNodeLeftovers } from "../src/local-cluster/real-node/node.js";
import { watchNetwork } from "./support/network-watch.js";

const separator = process.argv.indexOf("--");
const command = separator >= 0 ? process.argv.slice(separator + 1) : [];
if (command.length === 0) {
  process.stderr.write("usage: run-with-cluster -- <command> [args…]\n");
  process.exit(2);
}
const log = (line: string): void => void process.stderr.write(`[test cluster] ${line}\n`);
const stateRoot = path.join(packageRoot(), ".cluster");
const stateDir = stateDirOf(stateRoot, "test");
const nodes = Number(process.env.KUBE_PREPULL_TEST_NODES ?? "4");
const realNodes = Number(process.env.KUBE_PREPULL_TEST_REAL_NODES ?? "1");
// Started once the binaries are built (a cold build downloads Go modules, as it should).
let network: ReturnType<typeof watchNetwork> | undefined;

let stopping: Promise<void> | undefined;
const stop = (): Promise<void> => (stopping ??= stopCluster(stateDir));
// A start in progress launches nothing more once interrupted (what it launched is in the state file).
const interruption = new AbortController();
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping the cluster`);
    interruption.abort(signal);
    void stop().finally(() => process.exit(130));
  });
}

let exitCode = 1;
try {
  const started = Date.now();
  const progress = (l: string): void => void process.stderr.write(l + "\n");
  const binaries = await ensureControlPlaneBinaries({ progress, env: process.env });
  // The real helm for the chart's tests (test/cluster/helm*.test.ts), built before the network watch.
  const helm = await ensureHelm({ progress, env: process.env });
  network = watchNetwork(() => {
    const real = readClusterState(stateDir)?.real;
    return [path.resolve(stateDir), ...(real?.nodes.map((n) => n.cgroupRoot) ?? [])];
  }, process.pid, 250);
  const cluster = await startCluster({ name: "test", stateRoot, binaries, nodes, realNodes, env: process.env, progress: log, signal: interruption.signal });
  log(`up in ${((Date.now() - started) / 1000).toFixed(1)}s at ${cluster.state.server} with ${nodes} simulated and ${realNodes} real node(s)`);
  const child = spawn(command[0]!, command.slice(1), {
    stdio: "inherit",
    env: {
      ...process.env,
      KUBE_PREPULL_TEST_KUBECONFIG: cluster.state.kubeconfig,
      KUBE_PREPULL_TEST_BIN_DIR: binaries.dir,
      KUBE_PREPULL_TEST_STATE_DIR: stateDir,
      KUBE_PREPULL_TEST_HELM: helm,
    },
  });
  exitCode = await new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 1)));
} catch (error) {
  log(`failed: ${(error as Error).message}`);
} finally {
  const real = readClusterState(stateDir)?.real;
  await stop();
  log("stopped");
  // `down` must leave nothing of a real node behind (processes, mounts, cgroups, devices, state).
  const left = (await Promise.all((real?.nodes ?? []).map(realNodeLeftovers))).flat();
  if (left.length > 0) {
    log(`FAILED: stopping the cluster left ${left.length} thing(s) behind: ${left.join("; ")}`);
    exitCode = 1;
  } else if (real) {
    log(`stopping left nothing of the ${real.nodes.length} real node(s) behind`);
  }
}
const outside = network?.stop() ?? [];
if (outside.length > 0) {
  log(`FAILED: ${outside.length} TCP connection(s) outside 127.0.0.0/8 during the run:`);
  for (const v of outside) log(`  to ${v.remote} (state ${v.state}) by ${v.owner}`);
  exitCode = 1;
} else {
  log("network: no TCP connection outside 127.0.0.0/8 by the suite's processes during the run");
}
process.exit(exitCode);
