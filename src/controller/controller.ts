// The controller loop: caches of Deployments, prepull DaemonSets and their pods (watch, never
// poll), a de-duplicating work queue of Deployments, timers for deadlines, and the effects of
// `reconcile`'s actions. All decisions live in reconcile.ts.
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { LABELS, MANAGED_BY, SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { decodeStatus } from "../prepull/progress.js";
import type { ClusterActions } from "../kube/cluster-actions.js";
import { Reflector, type ObjectEvent } from "../kube/reflector.js";
import type { Metrics } from "../observability/metrics.js";
import { reconcile, type Action, type ControllerConfig } from "./reconcile.js";

export interface ControllerDeps {
  kubeConfig: k8s.KubeConfig;
  actions: ClusterActions;
  config: ControllerConfig;
  log: Logger;
  metrics: Metrics;
  now: () => Date;
}

export interface RunningController {
  /** True once every cache has listed once. */
  hasSynced: () => boolean;
  stop: () => void;
}

const MANAGED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY}`;

function isOurs(deployment: k8s.V1Deployment): boolean {
  const a = deployment.metadata?.annotations ?? {};
  return a[SYSTEM_ANNOTATIONS.request] !== undefined || a[SYSTEM_ANNOTATIONS.heldBy] !== undefined;
}

export function startController(deps: ControllerDeps): RunningController {
  const { kubeConfig, log } = deps;
  const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);

  const queue = new Set<string>();
  const timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  let running = true;
  let working = false;

  const enqueue = (key: string): void => {
    queue.add(key);
    void drain();
  };
  const ownerKey = (ds: k8s.V1DaemonSet): string | undefined => {
    const owner = ds.metadata?.ownerReferences?.find((o) => o.kind === "Deployment");
    return owner ? `${ds.metadata?.namespace}/${owner.name}` : undefined;
  };
  // Pods of each prepull DaemonSet, indexed by "<namespace>/<daemonset>".
  const podsByDaemonSet = new Map<string, Map<string, k8s.V1Pod>>();

  const deployments = new Reflector<k8s.V1Deployment>({
    name: "deployments",
    kubeConfig,
    path: "/apis/apps/v1/deployments",
    list: (p) => apps.listDeploymentForAllNamespaces(p),
    log,
    onEvent: (_type: ObjectEvent, d) => {
      if (isOurs(d)) enqueue(`${d.metadata?.namespace}/${d.metadata?.name}`);
    },
  });
  const daemonSets = new Reflector<k8s.V1DaemonSet>({
    name: "daemonsets",
    kubeConfig,
    path: "/apis/apps/v1/daemonsets",
    labelSelector: MANAGED_SELECTOR,
    list: (p) => apps.listDaemonSetForAllNamespaces(p),
    log,
    onEvent: (_type, ds) => {
      const key = ownerKey(ds);
      if (key) enqueue(key);
    },
  });
  const pods = new Reflector<k8s.V1Pod>({
    name: "pods",
    kubeConfig,
    path: "/api/v1/pods",
    labelSelector: MANAGED_SELECTOR,
    list: (p) => core.listPodForAllNamespaces(p),
    log,
    onEvent: (type, pod) => {
      const dsName = pod.metadata?.labels?.[LABELS.prepull];
      if (!dsName) return;
      const dsKey = `${pod.metadata?.namespace}/${dsName}`;
      const index = podsByDaemonSet.get(dsKey) ?? new Map<string, k8s.V1Pod>();
      if (type === "DELETED") index.delete(pod.metadata!.name!);
      else index.set(pod.metadata!.name!, pod);
      if (index.size > 0) podsByDaemonSet.set(dsKey, index);
      else podsByDaemonSet.delete(dsKey);
      const ds = daemonSets.get(pod.metadata!.namespace!, dsName);
      const key = ds ? ownerKey(ds) : undefined;
      if (key) enqueue(key);
    },
  });

  const schedule = (key: string, afterMs: number): void => {
    const at = Date.now() + afterMs;
    const existing = timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    // Timers longer than ~24.8 days overflow; deadlines here are hours at most, but clamp anyway.
    const timer = setTimeout(() => {
      timers.delete(key);
      enqueue(key);
    }, Math.min(afterMs + 50, 2 ** 31 - 1));
    timers.set(key, { at, timer });
  };

  const perform = async (deployment: k8s.V1Deployment, action: Action): Promise<void> => {
    const namespace = deployment.metadata!.namespace!;
    const name = deployment.metadata!.name!;
    switch (action.kind) {
      case "create-daemonset":
        await deps.actions.createDaemonSet(action.daemonSet);
        return;
      case "delete-daemonset":
        log.info({ namespace, deployment: name, daemonSet: action.name, reason: action.reason }, "deleting prepull DaemonSet");
        await deps.actions.deleteDaemonSet(namespace, action.name);
        return;
      case "write-status":
        await deps.actions.writeStatus(namespace, name, action.status);
        return;
      case "release-hold":
        if (await deps.actions.releaseHold(namespace, name, action.heldBy)) {
          log.info({ namespace, deployment: name, reason: action.reason }, "hold released");
        }
        return;
      case "forget-hold":
        await deps.actions.forgetHold(namespace, name, action.heldBy);
        return;
      case "event":
        await deps.actions.recordEvent(deployment, action.type, action.reason, action.message, deps.now());
        return;
      case "count":
        deps.metrics.prepulls.inc({ result: action.result });
        deps.metrics.prepullDuration.observe({ result: action.result }, action.seconds);
        deps.metrics.nodesPulled.inc(action.pulled);
        deps.metrics.nodesFailed.inc(action.failed);
        log.info({ namespace, deployment: name, result: action.result, seconds: action.seconds, pulled: action.pulled, failed: action.failed }, "prepull finished");
        return;
    }
  };

  const process = async (key: string): Promise<void> => {
    const [namespace, name] = key.split("/") as [string, string];
    const deployment = deployments.get(namespace, name);
    if (!deployment) return; // deleted: its DaemonSets go with it (ownerReference)
    const owned = daemonSets.list().filter((ds) => ownerKey(ds) === key);
    if (!isOurs(deployment) && owned.length === 0) return;
    const currentPods = owned.flatMap((ds) => [...(podsByDaemonSet.get(`${namespace}/${ds.metadata!.name}`)?.values() ?? [])]);
    const decision = reconcile({ deployment, daemonSets: owned, pods: currentPods, now: deps.now() }, deps.config);
    if (decision.actions.length > 0) {
      log.debug({ namespace, deployment: name, actions: decision.actions.map((a) => a.kind) }, "reconcile");
    }
    for (const action of decision.actions) await perform(deployment, action);
    if (decision.requeueAfterMs !== undefined) schedule(key, decision.requeueAfterMs);
  };

  const drain = async (): Promise<void> => {
    if (working || !running) return;
    if (!deployments.hasSynced() || !daemonSets.hasSynced() || !pods.hasSynced()) {
      setTimeout(() => void drain(), 200);
      return;
    }
    working = true;
    try {
      while (running && queue.size > 0) {
        const key = queue.values().next().value as string;
        queue.delete(key);
        try {
          await process(key);
        } catch (error) {
          log.warn({ key, err: error }, "reconcile failed; retrying");
          schedule(key, 1000 + Math.random() * 1000);
        }
      }
    } finally {
      working = false;
    }
  };

  const gauges = setInterval(() => {
    let active = 0;
    let held = 0;
    for (const d of deployments.list()) {
      const a = d.metadata?.annotations ?? {};
      if (decodeStatus(a[SYSTEM_ANNOTATIONS.status])?.phase === "Pulling") active++;
      if (d.spec?.paused && a[SYSTEM_ANNOTATIONS.heldBy] !== undefined) held++;
    }
    deps.metrics.activePrepulls.set(active);
    deps.metrics.heldDeployments.set(held);
    deps.metrics.queueDepth.set(queue.size);
  }, 5000);
  gauges.unref();

  deployments.start();
  daemonSets.start();
  pods.start();
  return {
    hasSynced: () => deployments.hasSynced() && daemonSets.hasSynced() && pods.hasSynced(),
    stop: () => {
      running = false;
      clearInterval(gauges);
      for (const { timer } of timers.values()) clearTimeout(timer);
      deployments.stop();
      daemonSets.stop();
      pods.stop();
    },
  };
}
