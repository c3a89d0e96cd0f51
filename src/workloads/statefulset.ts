// StatefulSets (spec §3a): an update is held by `rollingUpdate.partition` = replicas (no pod has
// an ordinal at or above it, so none is updated) and released by restoring the user's partition,
// recorded in `held-by` in the same write. A partition holds updates only: a new StatefulSet's
// first pods, and `OnDelete` StatefulSets, are prepulled without a hold.
// https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#partitions
import type * as k8s from "@kubernetes/client-node";
import type { JsonPatchOperation } from "../admission/review.js";
import type { HeldBy, HoldStart, Workload } from "./workload.js";

const partitionOf = (s: k8s.V1StatefulSet): number => s.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;

/** The partition kube-prepull set, recorded in `held-by` (`restore.held`). */
const heldPartition = (heldBy: HeldBy): unknown => heldBy.restore?.held;

/** kubectl rollout status for StatefulSets: the pods at or above the partition are updated and ready. */
export function statefulSetRolledOut(s: k8s.V1StatefulSet): boolean {
  const status = s.status ?? { replicas: 0 };
  const replicas = s.spec?.replicas ?? 1;
  if ((status.observedGeneration ?? 0) < (s.metadata?.generation ?? 0)) return false;
  if ((status.readyReplicas ?? 0) < replicas) return false;
  const partition = partitionOf(s);
  if (s.spec?.updateStrategy?.type === "OnDelete" || partition > 0) return (status.updatedReplicas ?? 0) >= replicas - partition;
  return status.updateRevision === status.currentRevision;
}

function holdByPartition(s: k8s.V1StatefulSet, before: HeldBy | undefined): HoldStart {
  const replicas = s.spec?.replicas ?? 1;
  // While held, the partition is kube-prepull's; the user's own is the one recorded before.
  const own = before ? (before.restore?.partition as number | undefined) ?? 0 : partitionOf(s);
  if (!before && own >= replicas) {
    return { held: false, warning: `the StatefulSet's own partition (${own}) already holds every pod; prepulling without holding (it will not be changed)` };
  }
  const rollingUpdate = { ...(s.spec?.updateStrategy?.rollingUpdate ?? {}), partition: replicas };
  // The API server defaults updateStrategy before admission; a patch must never fail on its absence.
  const strategy: unknown = s.spec?.updateStrategy;
  const patch: JsonPatchOperation = typeof strategy === "object" && strategy !== null && !Array.isArray(strategy)
    ? { op: "add", path: "/spec/updateStrategy/rollingUpdate", value: rollingUpdate }
    : { op: "add", path: "/spec/updateStrategy", value: { type: "RollingUpdate", rollingUpdate } };
  return { held: true, patch: [patch], restore: { partition: own, held: replicas } };
}

export const statefulSetWorkload: Workload<k8s.V1StatefulSet> = {
  kind: "StatefulSet",
  group: "apps",
  version: "v1",
  resource: "statefulsets",
  shortName: "sts",
  template: (s) => s.spec?.template,
  templateChanged: "object.spec.template != oldObject.spec.template",
  skipReason: (s) => (s.spec?.replicas === 0 ? "replicas is 0" : undefined),
  startHold(s, operation, before) {
    if (operation === "CREATE") {
      return { held: false, warning: "a new StatefulSet's first pods cannot be held (a partition holds updates only); prepulling alongside" };
    }
    if (s.spec?.updateStrategy?.type === "OnDelete") {
      return { held: false, warning: "the StatefulSet updates OnDelete (pods change only when deleted); prepulling without holding" };
    }
    return holdByPartition(s, before);
  },
  // The user changing the partition (or the strategy) while held takes the hold over.
  isHeld: (s, heldBy) => s.spec?.updateStrategy?.type !== "OnDelete" && partitionOf(s) === heldPartition(heldBy),
  release: (_s, heldBy) => [{ op: "replace", path: "/spec/updateStrategy/rollingUpdate/partition", value: (heldBy.restore?.partition) ?? 0 }],
  rolloutComplete: statefulSetRolledOut,
  api: {
    list: (c, params) => c.apps.listStatefulSetForAllNamespaces(params),
    listNamespaced: (c, namespace, params) => c.apps.listNamespacedStatefulSet({ namespace, ...params }),
    patch: (c, namespace, name, body, options) => c.apps.patchNamespacedStatefulSet({ namespace, name, body }, options),
  },
};
