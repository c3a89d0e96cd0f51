// The effects of keep-warm lists (decisions in keep-warm.ts): a watch on the lists' ConfigMaps in
// kube-prepull's namespace and the writes. The controller's work queue, timers and caches of
// DaemonSets and pods run them (controller.ts): this module says which list an event concerns,
// reconciles one list, and says when to look at it again (its refresh).
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ClusterActions } from "../kube/cluster-actions.js";
import { pointerSegment } from "../admission/review.js";
import { Reflector } from "../kube/reflector.js";
import type { PendingPodsRead } from "../kube/pending-pods.js";
import type { Metrics } from "../observability/metrics.js";
import type { PrepullPodConfig } from "../prepull/daemonset.js";
import { httpStatusOf } from "../kube/api-errors.js";
import {
  KEEP_WARM_LABEL, SPEC_HASH_ANNOTATION, STATUS_ANNOTATION, decodeKeepWarmStatus, keepWarmDaemonSetName, keepWarmSelector,
  nextRefresh, parseKeepWarmList, reconcileKeepWarm, sameKeepWarmStatus, type KeepWarmAction,
} from "./keep-warm.js";

export interface KeepWarmListsDeps {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  podConfig: PrepullPodConfig;
  actions: ClusterActions;
  log: Logger;
  metrics: Metrics;
  now: () => Date;
  /** The controller's caches. */
  daemonSet: (namespace: string, name: string) => k8s.V1DaemonSet | undefined;
  /** Its pending pods, when a stall made them worth listing (src/kube/pending-pods.ts). */
  pendingPodsOf: (daemonSet: k8s.V1DaemonSet) => PendingPodsRead;
  /** A list changed: queue it (the controller's queue). */
  changed: (list: string) => void;
}

export interface KeepWarmLists {
  reflector: Reflector<k8s.V1ConfigMap>;
  /** The list a DaemonSet or pod belongs to, if it is one of a list in this namespace. */
  listOf: (object: k8s.KubernetesObject) => string | undefined;
  /** Reconciles one list; resolves to when to look at it again (its next refresh), if ever. */
  process: (list: string) => Promise<Date | undefined>;
}

export function createKeepWarmLists(deps: KeepWarmListsDeps): KeepWarmLists {
  const { kubeConfig, namespace, log } = deps;
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
  const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
  const jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);

  const reflector = new Reflector<k8s.V1ConfigMap>({
    name: "keep-warm configmaps",
    kubeConfig,
    path: `/api/v1/namespaces/${namespace}/configmaps`,
    labelSelector: keepWarmSelector,
    list: (p) => core.listNamespacedConfigMap({ namespace, ...p }),
    log,
    onEvent: (type, cm) => {
      const name = cm.metadata!.name!;
      if (type === "DELETED") {
        // Its DaemonSet goes with it (ownerReference); its gauges go now.
        for (const state of ["desired", "warm", "failed"]) deps.metrics.keepWarmNodes.remove({ list: name, state });
      }
      deps.changed(name);
    },
  });

  const perform = async (configMap: k8s.V1ConfigMap, action: KeepWarmAction): Promise<void> => {
    const list = configMap.metadata!.name!;
    switch (action.kind) {
      case "apply-daemonset": {
        const desired = action.daemonSet;
        const name = desired.metadata!.name!;
        log.info({ list, daemonSet: name, reason: action.reason }, "keep-warm DaemonSet applied");
        if (!deps.daemonSet(namespace, name)) {
          await deps.actions.createDaemonSet(desired);
          return;
        }
        // The whole pod template at once: a merge patch would keep map keys the list dropped.
        await apps.patchNamespacedDaemonSet({
          name,
          namespace,
          body: [
            { op: "replace", path: "/spec/template", value: desired.spec!.template },
            { op: "replace", path: "/spec/updateStrategy", value: desired.spec!.updateStrategy },
            { op: "add", path: `/metadata/annotations/${pointerSegment(SPEC_HASH_ANNOTATION)}`, value: desired.metadata!.annotations![SPEC_HASH_ANNOTATION] },
          ],
        }, jsonPatch);
        return;
      }
      case "write-status": {
        if (sameKeepWarmStatus(decodeKeepWarmStatus(configMap.metadata?.annotations?.[STATUS_ANNOTATION]), action.status)) return;
        for (const state of ["desired", "warm", "failed"] as const) deps.metrics.keepWarmNodes.set({ list, state }, action.status.nodes[state]);
        try {
          await core.patchNamespacedConfigMap({ name: list, namespace, body: { metadata: { annotations: { [STATUS_ANNOTATION]: JSON.stringify(action.status) } } } }, mergePatch);
        } catch (error) {
          if (httpStatusOf(error) !== 404) throw error;
        }
        return;
      }
      case "event":
        await deps.actions.recordEvent(configMap, action.type, action.reason, action.message, deps.now(), { apiVersion: "v1", kind: "ConfigMap" });
        return;
    }
  };

  return {
    reflector,
    listOf: (object) => (object.metadata?.namespace === namespace ? object.metadata?.labels?.[KEEP_WARM_LABEL] : undefined),
    process: async (name) => {
      const configMap = reflector.get(namespace, name);
      if (!configMap) return undefined; // deleted
      const dsName = keepWarmDaemonSetName(name);
      const daemonSet = deps.daemonSet(namespace, dsName);
      const detail = daemonSet ? deps.pendingPodsOf(daemonSet) : { pods: undefined };
      const actions = reconcileKeepWarm({ configMap, daemonSet, pods: detail.pods ?? [], now: deps.now() }, deps.podConfig);
      for (const action of actions) await perform(configMap, action);
      const parsed = parseKeepWarmList(configMap);
      const refresh = parsed.ok ? nextRefresh(parsed.list, daemonSet) : undefined;
      const recheck = detail.recheckInMs !== undefined ? new Date(deps.now().getTime() + detail.recheckInMs) : undefined;
      return [refresh, recheck].filter((d) => d !== undefined).sort((a, b) => a.getTime() - b.getTime())[0];
    },
  };
}
