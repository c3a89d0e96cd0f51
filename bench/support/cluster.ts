// A local cluster for a benchmark: the control plane, then `nodes` simulated nodes created 32 at a
// time and waited for, each phase timed.
import path from "node:path";
import { ensureControlPlaneBinaries, packageRoot } from "../../src/local-cluster/binaries.js";
import { startCluster, type RunningCluster } from "../../src/local-cluster/cluster.js";
import { createNodes, waitForNodesReady } from "../../src/local-cluster/nodes.js";
import * as k8s from "@kubernetes/client-node";
import { log } from "./machine.js";

export const STATE_ROOT = path.join(packageRoot(), ".cluster");

export interface BenchCluster {
  cluster: RunningCluster;
  controlPlaneUpMs: number;
  nodesCreatedMs: number;
  nodesReadyMs: number;
}

export async function startBenchCluster(options: { name: string; nodes: number; extraApiserverArgs?: string[] }): Promise<BenchCluster> {
  const binaries = await ensureControlPlaneBinaries({ progress: log, env: process.env });
  const t0 = Date.now();
  const cluster = await startCluster({
    name: options.name, stateRoot: STATE_ROOT, binaries, nodes: 0, env: process.env, progress: log,
    ...(options.extraApiserverArgs ? { extraApiserverArgs: options.extraApiserverArgs } : {}),
  });
  const controlPlaneUpMs = Date.now() - t0;
  try {
    const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
    const t1 = Date.now();
    await createNodes(core, options.nodes, { concurrency: 32 });
    const nodesCreatedMs = Date.now() - t1;
    await waitForNodesReady(core, options.nodes, { timeoutMs: 900_000, progress: log, stillRunning: () => undefined });
    return { cluster, controlPlaneUpMs, nodesCreatedMs, nodesReadyMs: Date.now() - t1 };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}
