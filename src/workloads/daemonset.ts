// DaemonSets (spec §3a): the prepull runs on the DaemonSet's own nodes (its template's placement,
// and the tolerations every DaemonSet pod gets, since the prepull is a DaemonSet too). An update is
// held by switching `updateStrategy` to `OnDelete`: the DaemonSet controller then replaces no
// running pod (pods it creates for new nodes already use the new template, as they would anyway),
// and the release restores the user's own strategy, recorded whole in `held-by`. Safe (nothing
// stops or restarts while held) and reversible (one field, restored verbatim); a user's own
// strategy change while held is respected. A new DaemonSet's first pods cannot be held.
// https://kubernetes.io/docs/tasks/manage-daemon/update-daemon-set/#daemonset-update-strategy
import type * as k8s from "@kubernetes/client-node";
import type { Workload } from "./workload.js";

const strategyOf = (d: k8s.V1DaemonSet): string => d.spec?.updateStrategy?.type ?? "RollingUpdate";

const scalar = (value: unknown): string | number | undefined => (typeof value === "string" || typeof value === "number" ? value : undefined);

/**
 * The user's strategy, to restore, with the fields the apiserver's typed object has (type,
 * rollingUpdate's maxUnavailable and maxSurge): admission sees the object before validation, and
 * anything else (a value nested 10,000 deep, found by the fuzzer) could not be recorded in held-by.
 */
function ownStrategy(d: k8s.V1DaemonSet): k8s.V1DaemonSetUpdateStrategy {
  const strategy: unknown = d.spec?.updateStrategy;
  if (typeof strategy !== "object" || strategy === null) return { type: "RollingUpdate" };
  const { type, rollingUpdate } = strategy as { type?: unknown; rollingUpdate?: { maxUnavailable?: unknown; maxSurge?: unknown } | null };
  const rolling = typeof rollingUpdate === "object" && rollingUpdate !== null
    ? Object.fromEntries(Object.entries({ maxUnavailable: scalar(rollingUpdate.maxUnavailable), maxSurge: scalar(rollingUpdate.maxSurge) }).filter(([, v]) => v !== undefined))
    : undefined;
  return { ...(typeof type === "string" ? { type } : {}), ...(rolling ? { rollingUpdate: rolling } : {}) };
}

/** kubectl rollout status for DaemonSets: every scheduled pod updated and available. */
export function daemonSetRolledOut(d: k8s.V1DaemonSet): boolean {
  const status = d.status;
  if (!status || (status.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) return false;
  return (status.updatedNumberScheduled ?? 0) >= status.desiredNumberScheduled && (status.numberAvailable ?? 0) >= status.desiredNumberScheduled;
}

export const daemonSetWorkload: Workload<k8s.V1DaemonSet> = {
  kind: "DaemonSet",
  group: "apps",
  version: "v1",
  resource: "daemonsets",
  shortName: "ds",
  template: (d) => d.spec?.template,
  templateChanged: "object.spec.template != oldObject.spec.template",
  skipReason: () => undefined,
  startHold(d, operation, before) {
    if (operation === "CREATE") {
      return { held: false, warning: "a new DaemonSet's first pods cannot be held; prepulling alongside" };
    }
    if (!before && strategyOf(d) === "OnDelete") {
      return { held: false, warning: "the DaemonSet updates OnDelete (pods change only when deleted); prepulling without holding" };
    }
    const own = before?.restore?.updateStrategy ?? ownStrategy(d);
    return {
      held: true,
      patch: [{ op: "add", path: "/spec/updateStrategy", value: { type: "OnDelete" } }],
      restore: { updateStrategy: own },
    };
  },
  isHeld: (d) => strategyOf(d) === "OnDelete",
  release: (_d, heldBy) => [{ op: "replace", path: "/spec/updateStrategy", value: heldBy.restore?.updateStrategy ?? { type: "RollingUpdate" } }],
  rolloutComplete: daemonSetRolledOut,
  api: {
    list: (c, params) => c.apps.listDaemonSetForAllNamespaces(params),
    listNamespaced: (c, namespace, params) => c.apps.listNamespacedDaemonSet({ namespace, ...params }),
    patch: (c, namespace, name, body, options) => c.apps.patchNamespacedDaemonSet({ namespace, name, body }, options),
  },
};
