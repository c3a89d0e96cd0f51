// Runs a command (the test runner) against one local cluster started for the whole run, then stops
// the cluster whatever happened: `node dist/test/run-with-cluster.js -- node --test …`.
// The tests find the cluster through KUBE_PREPULL_TEST_KUBECONFIG (test/support/cluster.ts).
import { spawn } from "node:child_process";
import path from "node:path";
import { ensureControlPlaneBinaries, packageRoot } from "../src/local-cluster/binaries.js";
import { startCluster, stateDirOf, stopCluster } from "../src/local-cluster/cluster.js";

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

let stopping: Promise<void> | undefined;
const stop = (): Promise<void> => (stopping ??= stopCluster(stateDir));
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping the cluster`);
    void stop().finally(() => process.exit(130));
  });
}

let exitCode = 1;
try {
  const started = Date.now();
  const binaries = await ensureControlPlaneBinaries({ progress: (l) => process.stderr.write(l + "\n"), env: process.env });
  const cluster = await startCluster({ name: "test", stateRoot, binaries, nodes, env: process.env, progress: log });
  log(`up in ${((Date.now() - started) / 1000).toFixed(1)}s at ${cluster.state.server} with ${nodes} nodes`);
  const child = spawn(command[0]!, command.slice(1), {
    stdio: "inherit",
    env: {
      ...process.env,
      KUBE_PREPULL_TEST_KUBECONFIG: cluster.state.kubeconfig,
      KUBE_PREPULL_TEST_BIN_DIR: binaries.dir,
      KUBE_PREPULL_TEST_STATE_DIR: stateDir,
    },
  });
  exitCode = await new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 1)));
} catch (error) {
  log(`failed: ${(error as Error).message}`);
} finally {
  await stop();
  log("stopped");
}
process.exit(exitCode);
