// The controller's worker: takes keys off the work queue (several run at once, never two on one key), reconciles the workload (or
// keep-warm list) behind each from the caches, performs the actions, and hands the key back to the
// queue: forgotten on success, retried with per-key backoff on failure (as controller-runtime's
// reconcile loop does). A refused DaemonSet create is remembered per workload and given to the next
// reconcile, which decides whether the prepull fails now or at its deadline (api-errors.ts). Its ports are small interfaces so the loop is tested against fakes
// (test/unit/controller/worker.test.ts).
import type { Logger } from "pino";
import { isApiserverUnavailable } from "../kube/api-errors.js";
import { createFailureOf, type CreateFailure } from "./api-errors.js";
import { OwnWrites } from "./own-writes.js";
import { SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { encodeStatus } from "../prepull/progress.js";
import { parseWorkloadKey, type WorkloadObject } from "../workloads/workload.js";
import { KEEP_WARM_KEY, type Caches } from "./caches.js";
import type { Perform } from "./executor.js";
import { reconcile, type Action, type ControllerConfig } from "./reconcile.js";
import type { WorkloadRef } from "../kube/cluster-actions.js";
import { viewOf } from "./phases/view.js";
import type { View } from "./phases/types.js";
import type { WorkQueue } from "./work-queue.js";

/** Reconciles asked for by a decision come this much after the deadline, so it has passed. */
export const DEADLINE_SLACK_MS = 50;
/** The longest wait before retrying a key whose reconcile failed because the apiserver was unavailable. */
export const UNAVAILABLE_RETRY_MS = 2000;
/** How often the worker looks whether the caches have synced before it takes the first key. */
const SYNC_POLL_MS = 200;

export type WorkerCaches = Pick<Caches, "workload" | "daemonSetsOf" | "pendingPodsOf" | "nodes" | "isOurs" | "hasSynced" | "keepWarm">;
export type WorkerQueue = Pick<WorkQueue, "get" | "forget" | "addAfter" | "addRateLimited" | "retries" | "done">;

export interface WorkerPorts {
  caches: WorkerCaches;
  queue: WorkerQueue;
  perform: Perform;
  /** The cluster-wide start order lets this workload's prepull start now. */
  mayStart: (key: string) => boolean;
  config: ControllerConfig;
  log: Logger;
  now: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

export interface Worker {
  /** Reconciles one key; throws what an action threw. */
  process: (key: string) => Promise<void>;
  /** Waits for the caches, then processes keys until the queue shuts down or stop() is called; several may run at once (the queue hands a key to one at a time). */
  run: () => Promise<void>;
  stop: () => void;
}

/** The DaemonSet of the workload's current request while its status says it is pulling. */
function pullingDaemonSet(view: View): string | undefined {
  return view.status?.phase === "Pulling" && view.status.request === view.request?.id ? view.currentName : undefined;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function createWorker(ports: WorkerPorts): Worker {
  const { caches, queue, log } = ports;
  const sleep = ports.sleep ?? defaultSleep;
  let running = true;

  // The last refused DaemonSet create per workload: reconcile decides from it (api-errors.ts).
  const createFailures = new Map<string, CreateFailure>();
  // Status writes the workload cache has not brought back yet: no decision from before them.
  const ownWrites = new OwnWrites();

  /** Performs the actions in order; a refused create is remembered for the next reconcile. */
  const performAll = async (key: string, ref: WorkloadRef, object: WorkloadObject, actions: Action[], request: string | undefined): Promise<void> => {
    for (const action of actions) {
      try {
        await ports.perform(ref, object, action);
        if (action.kind === "create-daemonset") createFailures.delete(key);
        if (action.kind === "write-status") ownWrites.record(key, object, encodeStatus(action.status), ports.now());
      } catch (error) {
        if (action.kind === "create-daemonset" && request) createFailures.set(key, createFailureOf(request, error));
        throw error;
      }
    }
  };

  const processWorkload = async (key: string): Promise<void> => {
    const parsed = parseWorkloadKey(key);
    const found = parsed ? caches.workload(parsed.kind, parsed.namespace, parsed.name) : undefined;
    if (!parsed || !found) {
      createFailures.delete(key);
      ownWrites.forget(key);
      return; // deleted: its DaemonSets go with it (ownerReference)
    }
    const unseen = ownWrites.unseen(key, found.object, found.object.metadata?.annotations?.[SYSTEM_ANNOTATIONS.status], ports.now());
    if (unseen !== undefined) {
      // The watch event of the write enqueues the key again; this requeue only bounds the wait.
      log.debug({ key, waitMs: unseen }, "cache has not shown our status write yet");
      queue.addAfter(key, unseen);
      return;
    }
    const daemonSets = caches.daemonSetsOf(key);
    if (!caches.isOurs(found.object) && daemonSets.length === 0) return;
    // Pending pods matter only to the prepull pulling now (not to finished ones kept until cleanup).
    const view = viewOf(found);
    const pulling = pullingDaemonSet(view);
    const details = daemonSets.filter((ds) => ds.metadata?.name === pulling).map((ds) => [ds.metadata!.name!, caches.pendingPodsOf(ds)] as const);
    const pendingPods = new Map(details.flatMap(([name, d]) => (d.pods ? [[name, d.pods] as const] : [])));
    const createFailure = createFailures.get(key);
    const observed = { ...found, daemonSets, pendingPods, nodes: caches.nodes(), mayStart: ports.mayStart(key), ...(createFailure ? { createFailure } : {}), now: ports.now() };
    const decision = reconcile(observed, ports.config, view);
    // No pod events wake a stalled prepull: look again when a pending-pod list would be due.
    const recheck = details.flatMap(([, d]) => (d.recheckInMs !== undefined ? [d.recheckInMs] : []));
    if (decision.actions.length > 0) log.debug({ key, actions: decision.actions.map((a) => a.kind) }, "reconcile");
    // Before the actions: a deadline is kept even when an action fails (the backoff may be longer).
    const after = [...recheck, ...(decision.requeueAfterMs !== undefined ? [decision.requeueAfterMs] : [])];
    if (after.length > 0) queue.addAfter(key, Math.min(...after) + DEADLINE_SLACK_MS);
    const ref = { workload: found.workload, namespace: parsed.namespace, name: parsed.name };
    await performAll(key, ref, found.object, decision.actions, view.request?.id);
  };

  const process = async (key: string): Promise<void> => {
    if (!key.startsWith(KEEP_WARM_KEY)) return processWorkload(key);
    const refreshAt = await caches.keepWarm?.process(key.slice(KEEP_WARM_KEY.length));
    if (refreshAt) queue.addAfter(key, refreshAt.getTime() - ports.now().getTime() + DEADLINE_SLACK_MS);
  };

  const processOrRetry = async (key: string): Promise<void> => {
    try {
      await process(key);
      queue.forget(key);
    } catch (error) {
      // Per-key exponential backoff (5 ms doubling to 1000 s) under an overall rate limit; at most
      // UNAVAILABLE_RETRY_MS while the apiserver is unavailable, so a hold that fell due during an
      // outage (of the apiserver or its etcd) is released within seconds of its return; a webhook
      // of someone else's that is down keeps the backoff (it is no outage of the apiserver).
      const retryInMs = queue.addRateLimited(key, isApiserverUnavailable(error) ? UNAVAILABLE_RETRY_MS : undefined);
      log.warn({ key, err: error, retries: queue.retries(key), retryInMs: Math.round(retryInMs) }, "reconcile failed; retrying");
    } finally {
      queue.done(key);
    }
  };

  const run = async (): Promise<void> => {
    while (running && !caches.hasSynced()) await sleep(SYNC_POLL_MS);
    while (running) {
      const key = await queue.get();
      if (key === undefined) return;
      await processOrRetry(key);
    }
  };

  return { process, run, stop: () => (running = false) };
}
