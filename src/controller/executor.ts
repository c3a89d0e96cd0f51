// Performs reconcile's actions for one workload: cluster writes through ClusterActions, metrics,
// logs. Apart from the loop so each can be read and tested alone.
import type { Logger } from "pino";
import type { ClusterActions, WorkloadRef } from "../kube/cluster-actions.js";
import type { Metrics } from "../observability/metrics.js";
import type { PrepullStatus } from "../prepull/progress.js";
import { apiVersionOf, type WorkloadObject } from "../workloads/workload.js";
import type { Action } from "./reconcile.js";

export interface ExecutorDeps {
  actions: ClusterActions;
  log: Logger;
  metrics: Metrics;
  now: () => Date;
  /** A status was written (the start order learns the new phase before the watch brings it back). */
  statusWritten: (ref: WorkloadRef, object: WorkloadObject, status: PrepullStatus) => void;
}

export type Perform = (ref: WorkloadRef, object: WorkloadObject, action: Action) => Promise<void>;

function countFinished(metrics: Metrics, action: Extract<Action, { kind: "count" }>): void {
  metrics.prepulls.inc({ result: action.result });
  metrics.prepullDuration.observe({ result: action.result }, action.seconds);
  metrics.nodesPulled.inc(action.pulled);
  metrics.nodesFailed.inc(action.failed);
}

export function createExecutor(deps: ExecutorDeps): Perform {
  const { log } = deps;
  return async (ref, object, action) => {
    const { namespace, name } = ref;
    const who = { namespace, kind: ref.workload.kind, name };
    switch (action.kind) {
      case "create-daemonset":
        return deps.actions.createDaemonSet(action.daemonSet);
      case "set-daemonset-nodes":
        log.info({ ...who, daemonSet: action.name, added: action.added }, "next wave");
        return deps.actions.setDaemonSetAffinity(namespace, action.name, action.affinity);
      case "delete-daemonset":
        log.info({ ...who, daemonSet: action.name, reason: action.reason }, "deleting prepull DaemonSet");
        return deps.actions.deleteDaemonSet(namespace, action.name);
      case "write-status":
        await deps.actions.writeStatus(ref, action.status);
        deps.statusWritten(ref, object, action.status);
        return;
      case "release-hold":
        if (await deps.actions.endHold(ref, action.heldBy, action.release)) log.info({ ...who, reason: action.reason }, "hold released");
        return;
      case "forget-hold":
        await deps.actions.endHold(ref, action.heldBy, []);
        return;
      case "event":
        return deps.actions.recordEvent(object, action.type, action.reason, action.message, deps.now(), { apiVersion: apiVersionOf(ref.workload), kind: ref.workload.kind });
      case "count":
        countFinished(deps.metrics, action);
        log.info({ ...who, result: action.result, seconds: action.seconds, pulled: action.pulled, failed: action.failed }, "prepull finished");
        return;
    }
  };
}
