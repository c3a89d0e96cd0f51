// The controller loop: caches of workloads, nodes, prepull DaemonSets and their pods (watch, never
// poll), a work queue of workloads and keep-warm lists with per-key backoff, the cluster-wide
// start order of prepulls, and a single worker that reconciles one key at a time. Decisions live
// in reconcile.ts, their effects in executor.ts, the caches in caches.ts, the start order (spec §4
// "Scale") in start-order.ts, keep-warm lists in ../keepwarm/.
import { SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { decodeStatus } from "../prepull/progress.js";
import { decodeRequest } from "../prepull/request.js";
import { decodeHeldBy, parseWorkloadKey, workloadKey, type WorkloadObject } from "../workloads/workload.js";
import { WORKLOADS } from "../workloads/kinds.js";
import { createCaches, KEEP_WARM_KEY, type CacheDeps, type Caches } from "./caches.js";
import { createExecutor } from "./executor.js";
import { reconcile } from "./reconcile.js";
import { prepullState, StartOrder } from "./start-order.js";
import { WorkQueue } from "./work-queue.js";

/** What the controller needs: the caches' dependencies (kubeconfig, actions, config, log, metrics, clock). */
export type ControllerDeps = CacheDeps;

export interface RunningController {
  /** True once every cache has listed once. */
  hasSynced: () => boolean;
  stop: () => void;
}

/** Reconciles asked for by a decision come this much after the deadline, so it has passed. */
const DEADLINE_SLACK_MS = 50;

const stateOf = (object: WorkloadObject): ReturnType<typeof prepullState> => {
  const a = object.metadata?.annotations ?? {};
  return prepullState(decodeRequest(a[SYSTEM_ANNOTATIONS.request]), decodeStatus(a[SYSTEM_ANNOTATIONS.status]));
};

export function startController(deps: ControllerDeps): RunningController {
  const { log } = deps;
  const queue = new WorkQueue();
  const order = new StartOrder(deps.config.maxConcurrentPrepulls);
  // After a prepull ends or a slot frees up, the next queued prepulls may start.
  const startQueued = (): void => {
    for (const key of order.startable()) queue.add(key);
  };
  const caches: Caches = createCaches(deps, {
    workloadChanged: (key, object) => {
      order.set(key, object ? stateOf(object) : undefined);
      startQueued();
    },
    enqueue: (key, afterMs) => queue.addAfter(key, afterMs),
    pullingKeys: () => order.pulling(),
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

  const processWorkload = async (key: string): Promise<void> => {
    const parsed = parseWorkloadKey(key);
    const found = parsed ? caches.workload(parsed.kind, parsed.namespace, parsed.name) : undefined;
    if (!parsed || !found) return; // deleted: its DaemonSets go with it (ownerReference)
    const daemonSets = caches.daemonSetsOf(key);
    if (!caches.isOurs(found.object) && daemonSets.length === 0) return;
    const pods = daemonSets.flatMap((ds) => caches.podsOf(parsed.namespace, ds.metadata!.name!));
    const decision = reconcile({ ...found, daemonSets, pods, nodes: caches.nodes(), mayStart: order.mayStart(key), now: deps.now() }, deps.config);
    if (decision.actions.length > 0) log.debug({ key, actions: decision.actions.map((a) => a.kind) }, "reconcile");
    const ref = { workload: found.workload, namespace: parsed.namespace, name: parsed.name };
    for (const action of decision.actions) await perform(ref, found.object, action);
    if (decision.requeueAfterMs !== undefined) queue.addAfter(key, decision.requeueAfterMs + DEADLINE_SLACK_MS);
  };

  const process = async (key: string): Promise<void> => {
    if (!key.startsWith(KEEP_WARM_KEY)) return processWorkload(key);
    const refreshAt = await caches.keepWarm?.process(key.slice(KEEP_WARM_KEY.length));
    if (refreshAt) queue.addAfter(key, refreshAt.getTime() - deps.now().getTime() + DEADLINE_SLACK_MS);
  };

  let running = true;
  const work = async (): Promise<void> => {
    while (running && !caches.hasSynced()) await new Promise((resolve) => setTimeout(resolve, 200));
    for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
      try {
        await process(key);
        queue.forget(key);
      } catch (error) {
        // Per-key exponential backoff (5 ms doubling to 1000 s) under an overall rate limit.
        const retryInMs = queue.addRateLimited(key);
        log.warn({ key, err: error, retries: queue.retries(key), retryInMs: Math.round(retryInMs) }, "reconcile failed; retrying");
      } finally {
        queue.done(key);
      }
    }
  };

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
  void work();
  return {
    hasSynced: caches.hasSynced,
    stop: () => {
      running = false;
      clearInterval(gauges);
      queue.shutdown();
      caches.stop();
    },
  };
}
