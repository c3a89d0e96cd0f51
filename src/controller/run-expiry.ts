// DaemonSets of `kube-prepull run` are not the controller's: it only deletes the ones a crashed run
// left behind, once their kube-prepull.io/expires-at has passed (spec §5 `run`).
import type * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ClusterActions } from "../kube/cluster-actions.js";
import { objectKey } from "../kube/reflector.js";
import { runExpiry } from "../prepull/run.js";
import { systemClock, type QueueClock } from "./work-queue.js";

export interface RunExpiry {
  /** A run DaemonSet was seen (or deleted): (re)arm or drop its timer. Ignores other DaemonSets. */
  observe(daemonSet: k8s.V1DaemonSet, deleted: boolean): void;
  stop(): void;
}

const RETRY_MS = 30_000;

export function createRunExpiry(deps: { actions: ClusterActions; log: Logger; clock?: QueueClock }): RunExpiry {
  const clock = deps.clock ?? systemClock;
  const timers = new Map<string, { cancel(): void }>();
  let running = true;

  const arm = (ds: k8s.V1DaemonSet, afterMs: number | undefined): void => {
    const key = objectKey(ds);
    timers.get(key)?.cancel();
    timers.delete(key);
    if (afterMs === undefined || !running) return;
    timers.set(key, clock.setTimeout(() => {
      timers.delete(key);
      if (running) void expire(ds);
    }, afterMs));
  };

  const expire = async (ds: k8s.V1DaemonSet): Promise<void> => {
    const [namespace, name] = [ds.metadata!.namespace!, ds.metadata!.name!];
    try {
      await deps.actions.deleteDaemonSet(namespace, name);
      deps.log.info({ namespace, daemonSet: name }, "deleted a DaemonSet an interrupted `kube-prepull run` left behind");
    } catch (error) {
      deps.log.warn({ namespace, daemonSet: name, err: error }, "could not delete an expired `kube-prepull run` DaemonSet; retrying");
      arm(ds, RETRY_MS);
    }
  };

  return {
    observe(ds, deleted) {
      const expiry = runExpiry(ds);
      if (expiry !== undefined) arm(ds, deleted ? undefined : expiry - clock.now());
    },
    stop() {
      running = false;
      for (const timer of timers.values()) timer.cancel();
      timers.clear();
    },
  };
}
