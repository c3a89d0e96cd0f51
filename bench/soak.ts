// `npm run soak`: the chaos soak on a cluster of its own (docs/reliability.md "Chaos soak").
//   npm run soak [-- --duration 10m --deployments 50 --nodes 200 --seed N --replica-logs DIR]
// Starts the local cluster "soak" (simulated nodes only), runs bench/soak/scenario.ts, prints the
// counts and violations, stops the cluster (also on Ctrl-C or SIGTERM). Exit code 1 on a violation.
import { parseDuration } from "../src/prepull/annotations.js";
import { startBenchCluster } from "./support/cluster.js";
import { log, machineLine } from "./support/machine.js";
import { flag } from "./support/flags.js";
import { killReplicas, reportLines, runSoak } from "./soak/scenario.js";

const durationSeconds = parseDuration(flag("duration", "10m"));
const deployments = Number(flag("deployments", "50"));
const nodes = Number(flag("nodes", "200"));
const seed = Number(flag("seed", String(Date.now() % 2 ** 31)));
const replicaLogDir = flag("replica-logs", "") || undefined;
if (!durationSeconds || !Number.isInteger(deployments) || deployments < 1 || !Number.isInteger(nodes) || nodes < 1 || !Number.isInteger(seed)) {
  throw new Error("usage: npm run soak -- [--duration 10m] [--deployments 50] [--nodes 200] [--seed N] [--replica-logs DIR]");
}

const started = Date.now();
log(`soak: starting the cluster "soak" with ${nodes} simulated nodes`);
const { cluster } = await startBenchCluster({ name: "soak", nodes });
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    log(`soak: ${signal}: stopping the cluster "soak" and the replicas`);
    killReplicas();
    void cluster.stop().finally(() => process.exit(130));
  });
}
try {
  const report = await runSoak({
    kubeconfig: cluster.state.kubeconfig,
    stateDir: cluster.state.stateDir,
    durationMs: durationSeconds * 1000,
    deployments,
    seed,
    holdTimeouts: ["30s", "45s", "60s"],
    apiserverDownMs: 10_000,
    etcdDownMs: 10_000,
    killEveryMs: [5000, 30_000],
    cleanupTtl: "30s",
    ...(replicaLogDir ? { replicaLogDir } : {}),
    log: (line) => log(`soak: ${line}`),
  });
  const command = `npm run soak -- --duration ${flag("duration", "10m")} --deployments ${deployments} --nodes ${nodes} --seed ${seed}`;
  process.stdout.write([`\`${command}\` (${((Date.now() - started) / 60_000).toFixed(1)} min in all, ${nodes} simulated nodes)`, machineLine(), "", ...reportLines(report)].join("\n") + "\n");
  if (report.violations.length > 0) process.exitCode = 1;
} finally {
  if (!stopping) await cluster.stop();
}
