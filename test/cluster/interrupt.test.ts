// Interrupted commands clean up (issue 15 item 6): `cluster up` and the benchmark's cluster start,
// stopped with SIGTERM or SIGINT at several points of the start (found from their progress lines on
// stderr), stop everything they launched, say so, exit 130/143 and leave no process and no state
// folder behind — what `down` leaves. Each run starts its own small cluster (1–2 simulated
// nodes, never a real node) under a temporary --state-dir; the shared test cluster is not touched.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { readClusterState, stateDirOf, stopCluster } from "../../src/local-cluster/cluster.js";
import { commandLine, isAlive, processesNaming } from "../../src/local-cluster/processes.js";

/** Each interruption, from the signal to the exit, must end within this. */
const INTERRUPT_BOUND_MS = 60_000;

interface Interrupted {
  code: number | null;
  stderr: string;
  /** Every PID the state file named while the command ran. */
  recordedPids: number[];
  /** Milliseconds from the signal to the exit. */
  stopMs: number;
  /** When the signal was sent: the recorded components running, and the command lines naming the state folder. */
  atSignal: { components: string[]; commandLines: string[] };
}

/**
 * Runs `args` (node scripts from dist/) until a stderr line matches `point`, sends `signal`, and
 * waits for the exit, meanwhile collecting the PIDs the cluster's state file records.
 */
async function interruptAt(args: string[], stateDir: string, point: RegExp, signal: NodeJS.Signals): Promise<Interrupted> {
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], cwd: packageRoot() });
  const recorded = new Set<number>();
  const record = (): void => {
    const state = readClusterState(stateDir);
    for (const pid of Object.values(state?.pids ?? {})) recorded.add(pid);
  };
  const sampler = setInterval(record, 50);
  let stderr = "";
  let signalledAt = 0;
  let atSignal: Interrupted["atSignal"] = { components: [], commandLines: [] };
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    if (signalledAt === 0 && point.test(stderr)) {
      record();
      const pids = readClusterState(stateDir)?.pids ?? {};
      atSignal = {
        components: Object.entries(pids).filter(([, pid]) => isAlive(pid)).map(([component]) => component),
        commandLines: processesNaming(stateDir).map((pid) => commandLine(pid) ?? ""),
      };
      signalledAt = Date.now();
      child.kill(signal);
    }
  });
  const timeout = setTimeout(() => child.kill("SIGKILL"), 180_000);
  const code = await exited;
  clearTimeout(timeout);
  clearInterval(sampler);
  assert.notEqual(signalledAt, 0, `the command never reached ${point} (exit ${code}):\n${stderr}`);
  return { code, stderr, recordedPids: [...recorded], stopMs: Date.now() - signalledAt, atSignal };
}

/** After a failed test: stops what it left, by its state folder, then anything still naming that folder. */
async function cleanUp(stateDir: string): Promise<void> {
  await stopCluster(stateDir);
  for (const pid of processesNaming(stateDir)) {
    try {
      process.kill(pid, "SIGKILL"); // ours: it names this test's own temporary folder
    } catch {
      // gone meanwhile
    }
  }
}

/** What is left of a cluster: live processes naming its state folder, or recorded PIDs still running for it. */
function leftovers(stateDir: string, recordedPids: number[]): string[] {
  const running = new Set([...processesNaming(stateDir), ...recordedPids.filter((pid) => commandLine(pid)?.includes(stateDir))]);
  return [
    ...[...running].map((pid) => `process ${pid}: ${commandLine(pid)?.slice(0, 160)}`),
    ...(existsSync(stateDir) ? [`state folder ${stateDir}`] : []),
  ];
}

const EXIT_CODE = { SIGINT: 130, SIGTERM: 143 } as Partial<Record<NodeJS.Signals, number>>;

function assertCleanedUp(result: Interrupted, stateDir: string, signal: NodeJS.Signals, said: RegExp, t: TestContext): void {
  t.diagnostic(`running at the signal: ${result.atSignal.components.join(", ") || "no component"}; exit ${result.code} ${result.stopMs} ms after ${signal}`);
  assert.equal(result.code, EXIT_CODE[signal], `exit code after ${signal}; stderr:\n${result.stderr}`);
  assert.match(result.stderr, said, "it says it was interrupted and stops what it started");
  assert.deepEqual(leftovers(stateDir, result.recordedPids), [], "nothing of the cluster is left");
  assert.ok(result.stopMs <= INTERRUPT_BOUND_MS, `stopped within ${INTERRUPT_BOUND_MS / 1000} s (took ${result.stopMs} ms)`);
}

describe("an interrupted cluster up", () => {
  let root: string;
  let runs = 0;
  const names: string[] = [];
  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), "kp-interrupt-"));
  });
  after(async () => {
    // Only if a test failed: stop what it left, by its own state folders.
    for (const name of names) await cleanUp(stateDirOf(root, name));
    rmSync(root, { recursive: true, force: true });
  });

  const main = path.join(packageRoot(), "dist", "src", "cli", "main.js");
  // The progress lines `up` prints as it goes: each marks a point of the start.
  // The progress lines `up` prints as it goes mark the points, each with the components that run by then.
  const ALL = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"];
  const points: [string, RegExp, NodeJS.Signals, string[]][] = [
    ["before any component starts", /generating certificates/, "SIGTERM", []],
    ["while etcd starts", /starting etcd/, "SIGINT", []],
    ["once etcd is up, as the apiserver starts", /starting kube-apiserver/, "SIGTERM", ["etcd"]],
    ["once the apiserver is up", /starting kube-controller-manager/, "SIGINT", ["etcd", "kube-apiserver"]],
    ["once the apiserver is up", /starting kube-controller-manager/, "SIGTERM", ["etcd", "kube-apiserver"]],
    ["while it creates the nodes", /creating 2 simulated node/, "SIGINT", ALL],
    // On an idle machine both nodes can be Ready at the first look, and no "nodes ready" line comes:
    // then the next wait of the start, for the default ServiceAccount, is the point.
    ["while it waits for the nodes (or the default ServiceAccount)", /nodes ready: [01]\/2|waiting for the default ServiceAccount/, "SIGTERM", ALL],
  ];
  for (const [when, point, signal, running] of points) {
    it(`stops everything it started when ${signal} comes ${when}`, async (t) => {
      const name = `int-${process.pid}-${++runs}`;
      names.push(name);
      const stateDir = stateDirOf(root, name);
      const result = await interruptAt([main, "cluster", "--name", name, "--state-dir", root, "up", "--nodes", "2"], stateDir, point, signal);
      for (const component of running) assert.ok(result.atSignal.components.includes(component), `${component} was running when ${signal} came`);
      assertCleanedUp(result, stateDir, signal, new RegExp(`${signal}: interrupted, stopping what it started[\\s\\S]*interrupted by ${signal}: stopped the cluster it was starting`), t);
    });
  }
});

describe("an interrupted benchmark", () => {
  let root: string;
  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), "kp-interrupt-bench-"));
  });
  after(async () => {
    await cleanUp(stateDirOf(root, "bench-api"));
    rmSync(root, { recursive: true, force: true });
  });

  // Only the API-cost section, on 2 nodes: the quickest way to its cluster start and serve.
  const bench = (): string[] => [path.join(packageRoot(), "dist", "bench", "run.js"), "--skip", "admission,scripted,burst,scale,real-node",
    "--nodes", "2", "--pull-delay", "30s", "--state-dir", root];
  const points: [string, RegExp, NodeJS.Signals, RegExp | undefined][] = [
    ["while the apiserver starts", /\[bench\] starting kube-apiserver/, "SIGTERM", undefined],
    ["while it creates the nodes", /\[bench\] creating 2 simulated node/, "SIGINT", undefined],
    ["with serve running and a prepull in flight", /\[bench\] 2 nodes: .* after \d+ ms/, "SIGTERM", / serve --kubeconfig /],
  ];
  for (const [when, point, signal, expected] of points) {
    it(`stops its cluster and serve when ${signal} comes ${when}`, async (t) => {
      const stateDir = stateDirOf(root, "bench-api");
      const result = await interruptAt(bench(), stateDir, point, signal);
      if (expected) assert.ok(result.atSignal.commandLines.some((line) => expected.test(line)), `${expected} was running when ${signal} came`);
      assertCleanedUp(result, stateDir, signal, new RegExp(`${signal}: interrupted, stopping the cluster\\(s\\) and processes it started[\\s\\S]*${signal}: stopped everything it started`), t);
    });
  }
});
