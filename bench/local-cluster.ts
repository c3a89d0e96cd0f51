// Measures the local cluster: warm `up`, 1000 simulated nodes to Ready, a DaemonSet to 1000 Ready
// pods, and each component's peak memory. Prints a Markdown table (docs/local-cluster.md).
//   npm run build && node dist/bench/local-cluster.js [--nodes 1000]
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { ensureControlPlaneBinaries, packageRoot } from "../src/local-cluster/binaries.js";
import { COMPONENTS, startCluster, stopCluster, stateDirOf } from "../src/local-cluster/cluster.js";
import { createNodes, waitForNodesReady } from "../src/local-cluster/nodes.js";
import { peakMemoryBytes } from "../src/local-cluster/processes.js";

const nodesArg = process.argv.indexOf("--nodes");
const nodeCount = nodesArg > 0 ? Number(process.argv[nodesArg + 1]) : 1000;
const stateRoot = path.join(packageRoot(), ".cluster");
const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
const seconds = (ms: number): string => (ms / 1000).toFixed(1) + " s";

function cpuSeconds(pid: number): number {
  // /proc/<pid>/stat fields 14 and 15: utime, stime in clock ticks (100 Hz on Linux).
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const binaries = await ensureControlPlaneBinaries({ progress: log, env: process.env });
const rows: Array<[string, string]> = [];

// 1. Warm `up` with the default 3 nodes, three times.
const warm: number[] = [];
for (let i = 0; i < 3; i++) {
  const t0 = Date.now();
  const c = await startCluster({ name: "bench", stateRoot, binaries, nodes: 3, env: process.env, progress: () => undefined });
  warm.push(Date.now() - t0);
  await c.stop();
}
rows.push(["warm `up`, 3 nodes (3 runs)", warm.map(seconds).join(", ")]);

// 2. 1000 nodes.
const t0 = Date.now();
const cluster = await startCluster({ name: "bench", stateRoot, binaries, nodes: 0, env: process.env, progress: log });
const controlPlaneUp = Date.now() - t0;
try {
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
  const t1 = Date.now();
  await createNodes(core, nodeCount, { concurrency: 32 });
  const created = Date.now() - t1;
  await waitForNodesReady(core, nodeCount, { timeoutMs: 900_000, progress: log, stillRunning: () => undefined });
  const ready = Date.now() - t1;
  rows.push([`control plane up (no nodes)`, seconds(controlPlaneUp)]);
  rows.push([`${nodeCount} nodes created (API, 32 in parallel)`, seconds(created)]);
  rows.push([`${nodeCount} nodes Ready and schedulable (from first create)`, seconds(ready)]);

  // 3. A DaemonSet with one init container and a pause container, to one Ready pod per node.
  const t2 = Date.now();
  await apps.createNamespacedDaemonSet({
    namespace: "default",
    body: {
      metadata: { name: "bench" },
      spec: {
        selector: { matchLabels: { app: "bench" } },
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "100%" } },
        template: {
          metadata: { labels: { app: "bench" } },
          spec: {
            terminationGracePeriodSeconds: 0,
            initContainers: [{ name: "pull", image: "example.com/app:v1" }],
            containers: [{ name: "pause", image: "registry.k8s.io/pause:3.10" }],
          },
        },
      },
    },
  });
  let lastReady = -1;
  let halfAt = 0;
  for (;;) {
    const ds = await apps.readNamespacedDaemonSet({ name: "bench", namespace: "default" });
    const n = ds.status?.numberReady ?? 0;
    if (!halfAt && n >= nodeCount / 2) halfAt = Date.now() - t2;
    if (n !== lastReady) log(`DaemonSet ready ${n}/${nodeCount}`);
    lastReady = n;
    if (n >= nodeCount) break;
    if (Date.now() - t2 > 900_000) throw new Error(`DaemonSet stuck at ${n}/${nodeCount}`);
    await sleep(500);
  }
  rows.push([`DaemonSet: half of ${nodeCount} pods Ready`, seconds(halfAt)]);
  rows.push([`DaemonSet: all ${nodeCount} pods Ready`, seconds(Date.now() - t2)]);
  const t3 = Date.now();
  await apps.deleteNamespacedDaemonSet({ name: "bench", namespace: "default" });
  for (;;) {
    const pods = await core.listNamespacedPod({ namespace: "default", labelSelector: "app=bench", limit: 1 });
    if (pods.items.length === 0) break;
    await sleep(500);
  }
  rows.push([`DaemonSet deleted: all ${nodeCount} pods gone`, seconds(Date.now() - t3)]);

  for (const component of COMPONENTS) {
    const pid = cluster.state.pids[component]!;
    const peak = peakMemoryBytes(pid) ?? 0;
    rows.push([`${component}: peak RSS / CPU time`, `${(peak / 2 ** 20).toFixed(0)} MiB / ${cpuSeconds(pid).toFixed(0)} s`]);
  }
} finally {
  await stopCluster(stateDirOf(stateRoot, "bench"));
}

const cpu = os.cpus()[0]?.model ?? "unknown CPU";
process.stdout.write(
  `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${cpu}, ` +
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}:\n\n` +
    "| what | measured |\n|---|---|\n" +
    rows.map(([k, v]) => `| ${k} | ${v} |`).join("\n") +
    "\n",
);
