// The controller loop: caches of workloads, nodes, prepull DaemonSets and their pods (watch, never
// poll), a work queue of workloads and keep-warm lists with per-key backoff, the cluster-wide
// start order of prepulls, and CONCURRENT_RECONCILES workers (never two on one key). The worker is in
// worker.ts, decisions in reconcile.ts, their effects in executor.ts, the caches in caches.ts, the
// start order (spec §4 "Scale") in start-order.ts, keep-warm lists in ../keepwarm/.
import { SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { decodeStatus } from "../prepull/progress.js";
import { decodeRequest } from "../prepull/request.js";
import { decodeHeldBy, workloadKey, type WorkloadObject } from "../workloads/workload.js";
import { WORKLOADS } from "../workloads/kinds.js";
import { createCaches, type CacheDeps, type Caches } from "./caches.js";
import { createExecutor } from "./executor.js";
import { prepullState, StartOrder } from "./start-order.js";
import { WorkQueue } from "./work-queue.js";
import { createWorker } from "./worker.js";

/**
 * Keys reconciled at once (kube-controller-manager: --concurrent-deployment-syncs=5). One at a
 * time, 50 prepulls timing out together on a slow apiserver (5–6 calls each) were released up to
 * 40 s past their deadlines in the chaos soak (docs/reliability.md). The work queue never hands one
 * key to two workers, so each workload's actions stay in order.
 */
export const CONCURRENT_RECONCILES = 4;

/** What the controller needs: the caches' dependencies (kubeconfig, actions, config, log, metrics, clock). */
export type ControllerDeps = CacheDeps;

export interface RunningController {
  /** True once every cache has listed once. */
  hasSynced: () => boolean;
  stop: () => void;
}

const stateOf = (object: WorkloadObject): ReturnType<typeof prepullState> => {
  const a = object.metadata?.annotations ?? {};
  return prepullState(decodeRequest(a[SYSTEM_ANNOTATIONS.request]), decodeStatus(a[SYSTEM_ANNOTATIONS.status]));
};

export function startController(deps: ControllerDeps): RunningController {
  const { log } = deps;
  const queue = new WorkQueue();
  const order = new StartOrder(deps.config.maxConcurrentPrepulls);
  // After a prepull ends or a slot frees up, the next queued prepulls may start (once: a start that
  // fails waits for its backoff, not for the next workload event anywhere in the cluster).
  const startQueued = (): void => {
    for (const key of order.newlyStartable()) queue.add(key);
  };
  const caches: Caches = createCaches(deps, {
    workloadChanged: (key, object) => {
      order.set(key, object ? stateOf(object) : undefined);
      startQueued();
    },
    enqueue: (key, afterMs) => queue.addAfter(key, afterMs),
    pullingKeys: () => order.pulling(),
    apiserverBack: () => queue.retryFailingNow(),
  });
  const perform = createExecutor({
    ...deps,
    statusWritten: (ref, object, status) => {
      // The start order learns the new phase now, not when the write comes back through the watch:
      // a finished prepull's slot goes to the next queued one at once.
      order.set(workloadKey(ref.workload.kind, ref.namespace, ref.name), prepullState(decodeRequest(object.metadata?.annotations?.[SYSTEM_ANNOTATIONS.request]), status));
      startQueued();
    },
  });

  const worker = createWorker({ caches, queue, perform, mayStart: (key) => order.mayStart(key), config: deps.config, log, now: deps.now });

  const gauges = setInterval(() => {
    for (const workload of WORKLOADS) {
      const held = caches.workloads(workload.kind).filter((o) => {
        const heldBy = decodeHeldBy(o.metadata?.annotations?.[SYSTEM_ANNOTATIONS.heldBy]);
        return heldBy !== undefined && workload.isHeld(o, heldBy);
      });
      deps.metrics.heldWorkloads.set({ kind: workload.kind }, held.length);
    }
    deps.metrics.activePrepulls.set(order.pulling().length);
    deps.metrics.queueDepth.set(order.queued().length);
  }, 5000);
  gauges.unref();

  caches.start();
  for (let i = 0; i < CONCURRENT_RECONCILES; i++) void worker.run();
  return {
    hasSynced: caches.hasSynced,
    stop: () => {
      worker.stop();
      clearInterval(gauges);
      queue.shutdown();
      caches.stop();
    },
  };
}
