// The effects of keep-warm lists (decisions in keep-warm.ts): a watch on the lists' ConfigMaps in
// kube-prepull's namespace, a work queue of list names fed by them and by the lists' DaemonSets and
// pods (the controller's caches, shared), a timer per list for its refresh, and the writes.
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ClusterActions } from "../kube/cluster-actions.js";
import { errorCode } from "../kube/cluster-actions.js";
import { pointerSegment } from "../admission/review.js";
import { Reflector } from "../kube/reflector.js";
import type { Metrics } from "../observability/metrics.js";
import type { PrepullPodConfig } from "../prepull/daemonset.js";
import {
  KEEP_WARM_LABEL, SPEC_HASH_ANNOTATION, STATUS_ANNOTATION, decodeKeepWarmStatus, keepWarmDaemonSetName, keepWarmSelector,
  nextRefresh, parseKeepWarmList, reconcileKeepWarm, sameKeepWarmStatus, type KeepWarmAction,
} from "./keep-warm.js";

export interface KeepWarmLoopDeps {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  podConfig: PrepullPodConfig;
  actions: ClusterActions;
  log: Logger;
  metrics: Metrics;
  now: () => Date;
  /** The controller's caches. */
  daemonSet: (namespace: string, name: string) => k8s.V1DaemonSet | undefined;
  podsOf: (namespace: string, daemonSetName: string) => k8s.V1Pod[];
}

export interface KeepWarmLoop {
  reflector: Reflector<k8s.V1ConfigMap>;
  /** A DaemonSet or pod event: the list it belongs to, if any, is looked at again. */
  touched: (object: k8s.KubernetesObject) => void;
  /** Start working (once the shared caches have synced). */
  drain: () => void;
  stop: () => void;
}

export function createKeepWarmLoop(deps: KeepWarmLoopDeps): KeepWarmLoop {
  const { kubeConfig, namespace, log } = deps;
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
  const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
  const jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
  const queue = new Set<string>();
  const timers = new Map<string, NodeJS.Timeout>();
  let running = true;
  let working = false;
  let ready = false;

  const enqueue = (name: string): void => {
    queue.add(name);
    drain();
  };
  const schedule = (name: string, at: Date): void => {
    clearTimeout(timers.get(name));
    const delay = Math.min(Math.max(0, at.getTime() - deps.now().getTime()) + 50, 2 ** 31 - 1);
    const timer = setTimeout(() => enqueue(name), delay);
    timer.unref();
    timers.set(name, timer);
  };

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
        // Its DaemonSet goes with it (ownerReference); forget the metrics and the timer.
        clearTimeout(timers.get(name));
        timers.delete(name);
        deps.metrics.keepWarmNodes.remove({ list: name, state: "warm" });
        deps.metrics.keepWarmNodes.remove({ list: name, state: "desired" });
        deps.metrics.keepWarmNodes.remove({ list: name, state: "failed" });
        return;
      }
      enqueue(name);
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
          if (errorCode(error) !== 404) throw error;
        }
        return;
      }
      case "event":
        await deps.actions.recordEvent(configMap, action.type, action.reason, action.message, deps.now(), { apiVersion: "v1", kind: "ConfigMap" });
        return;
    }
  };

  const process = async (name: string): Promise<void> => {
    const configMap = reflector.get(namespace, name);
    if (!configMap) return;
    const dsName = keepWarmDaemonSetName(name);
    const daemonSet = deps.daemonSet(namespace, dsName);
    const actions = reconcileKeepWarm({ configMap, daemonSet, pods: deps.podsOf(namespace, dsName), now: deps.now() }, deps.podConfig);
    for (const action of actions) await perform(configMap, action);
    const parsed = parseKeepWarmList(configMap);
    const refresh = parsed.ok ? nextRefresh(parsed.list, daemonSet) : undefined;
    if (refresh) schedule(name, refresh);
  };

  function drain(): void {
    if (working || !running || !ready) return;
    working = true;
    void (async () => {
      try {
        while (running && queue.size > 0) {
          const name = queue.values().next().value as string;
          queue.delete(name);
          try {
            await process(name);
          } catch (error) {
            log.warn({ list: name, err: error }, "keep-warm reconcile failed; retrying");
            schedule(name, new Date(deps.now().getTime() + 1000 + Math.random() * 1000));
          }
        }
      } finally {
        working = false;
      }
    })();
  }

  return {
    reflector,
    touched: (object) => {
      if (object.metadata?.namespace !== namespace) return;
      const list = object.metadata?.labels?.[KEEP_WARM_LABEL];
      if (list) enqueue(list);
    },
    drain: () => {
      ready = true;
      drain();
    },
    stop: () => {
      running = false;
      for (const timer of timers.values()) clearTimeout(timer);
    },
  };
}
