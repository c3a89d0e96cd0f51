// Measures the local cluster: warm `up`, 1000 simulated nodes to Ready, a DaemonSet to 1000 Ready
// pods, and each component's peak memory. Prints a Markdown table (docs/local-cluster.md).
//   npm run build && node dist/bench/local-cluster.js [--nodes 1000]
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { ensureControlPlaneBinaries } from "../src/local-cluster/binaries.js";
import { COMPONENTS } from "../src/local-cluster/cluster.js";
import { STATE_ROOT, startBenchCluster, startInterruptibleCluster } from "./support/cluster.js";
import { installInterruptHandlers, interruption } from "./support/interruption.js";
import { cpuSeconds, log, machineLine, peakMemoryBytes, seconds } from "./support/machine.js";

const nodesArg = process.argv.indexOf("--nodes");
const nodeCount = nodesArg > 0 ? Number(process.argv[nodesArg + 1]) : 1000;

installInterruptHandlers();
const binaries = await ensureControlPlaneBinaries({ progress: log, env: process.env, signal: interruption });
const rows: Array<[string, string]> = [];

// 1. Warm `up` with the default 3 nodes, three times.
const warm: number[] = [];
for (let i = 0; i < 3; i++) {
  const t0 = Date.now();
  const c = await startInterruptibleCluster({ name: "bench", stateRoot: STATE_ROOT, binaries, nodes: 3 });
  warm.push(Date.now() - t0);
  await c.stop();
}
rows.push(["warm `up`, 3 nodes (3 runs)", warm.map(seconds).join(", ")]);

// 2. 1000 nodes.
const { cluster, controlPlaneUpMs, nodesCreatedMs, nodesReadyMs } = await startBenchCluster({ name: "bench", nodes: nodeCount });
try {
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
  rows.push([`control plane up (no nodes)`, seconds(controlPlaneUpMs)]);
  rows.push([`${nodeCount} nodes created (API, 32 in parallel)`, seconds(nodesCreatedMs)]);
  rows.push([`${nodeCount} nodes Ready and schedulable (from first create)`, seconds(nodesReadyMs)]);

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
  await cluster.stop();
}

process.stdout.write(
  `${machineLine()}\n\n` +
    "| what | measured |\n|---|---|\n" +
    rows.map(([k, v]) => `| ${k} | ${v} |`).join("\n") +
    "\n",
);
