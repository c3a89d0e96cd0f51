// A local cluster for a benchmark: the control plane, then `nodes` simulated nodes created 32 at a
// time and waited for, each phase timed. Interrupting the benchmark stops it at any point
// (interruption.ts).
import path from "node:path";
import { ensureControlPlaneBinaries, packageRoot } from "../../src/local-cluster/binaries.js";
import { startCluster, stateDirOf, stopCluster, type RunningCluster, type StartOptions } from "../../src/local-cluster/cluster.js";
import { createNodes, waitForNodesReady } from "../../src/local-cluster/nodes.js";
import * as k8s from "@kubernetes/client-node";
import { interruption, stopOnInterrupt } from "./interruption.js";
import { log } from "./machine.js";

/** Where the benchmarks' clusters live unless --state-dir says otherwise. */
export const STATE_ROOT = path.join(packageRoot(), ".cluster");

export interface BenchCluster {
  cluster: RunningCluster;
  controlPlaneUpMs: number;
  nodesCreatedMs: number;
  nodesReadyMs: number;
}

/**
 * startCluster under the benchmark's interruption: a start in progress stops (and cleans up) at
 * its next step; a cluster that is up is stopped by the interrupt handler, unless stopped before.
 */
export async function startInterruptibleCluster(options: Omit<StartOptions, "signal" | "env" | "progress">): Promise<RunningCluster> {
  const stateDir = stateDirOf(options.stateRoot, options.name);
  const starting = startCluster({ ...options, env: process.env, progress: log, signal: interruption });
  const release = stopOnInterrupt(async () => {
    await starting.catch(() => undefined); // an interrupted start stops what it launched itself
    await stopCluster(stateDir);
  });
  const cluster = await starting.catch((error: unknown) => {
    release();
    throw error;
  });
  return {
    ...cluster,
    // Released once stopped: an interruption meanwhile waits for its own stop of the same cluster.
    stop: async () => {
      await cluster.stop();
      release();
    },
  };
}

export async function startBenchCluster(options: { name: string; nodes: number; stateRoot?: string; extraApiserverArgs?: string[] }): Promise<BenchCluster> {
  const binaries = await ensureControlPlaneBinaries({ progress: log, env: process.env, signal: interruption });
  const t0 = Date.now();
  const cluster = await startInterruptibleCluster({
    name: options.name, stateRoot: options.stateRoot ?? STATE_ROOT, binaries, nodes: 0,
    ...(options.extraApiserverArgs ? { extraApiserverArgs: options.extraApiserverArgs } : {}),
  });
  const controlPlaneUpMs = Date.now() - t0;
  try {
    const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
    const t1 = Date.now();
    log(`creating ${options.nodes} simulated node(s)`);
    await createNodes(core, options.nodes, { concurrency: 32, signal: interruption });
    const nodesCreatedMs = Date.now() - t1;
    await waitForNodesReady(core, options.nodes, { timeoutMs: 900_000, progress: log, stillRunning: () => undefined, signal: interruption });
    return { cluster, controlPlaneUpMs, nodesCreatedMs, nodesReadyMs: Date.now() - t1 };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}
