// The controller loop: caches of Deployments, nodes, prepull DaemonSets and their pods (watch,
// never poll), a de-duplicating work queue of Deployments and keep-warm lists, timers for deadlines
// and refreshes, the cluster-wide start order of prepulls, and the effects of `reconcile`'s
// actions. All decisions about one Deployment live in reconcile.ts; the start order (spec §4
// "Scale") in start-order.ts; keep-warm lists in ../keepwarm/.
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { LABELS, MANAGED_BY, SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { decodeStatus } from "../prepull/progress.js";
import { decodeRequest } from "../prepull/request.js";
import { runExpiry } from "../prepull/run.js";
import { createKeepWarmLists } from "../keepwarm/keep-warm-loop.js";
import type { ClusterActions } from "../kube/cluster-actions.js";
import { nodeForCache, podForCache } from "../kube/cache-shapes.js";
import { objectKey, Reflector, type ObjectEvent } from "../kube/reflector.js";
import type { Metrics } from "../observability/metrics.js";
import { reconcile, type Action, type ControllerConfig } from "./reconcile.js";
import { prepullState, StartOrder } from "./start-order.js";

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
/** Queue keys of keep-warm lists (Deployments are "<namespace>/<name>"; a namespace has no ":"). */
const KEEP_WARM_KEY = "keep-warm:";
/** Pod events of one prepull within this window are handled by one reconcile. */
const POD_EVENT_BATCH_MS = 200;

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
  // Prepull DaemonSets by owning Deployment ("<namespace>/<deployment>"), and their pods by
  // "<namespace>/<daemonset>": a reconcile reads only its own objects, whatever the cluster size.
  const daemonSetsByOwner = new Map<string, Map<string, k8s.V1DaemonSet>>();
  const podsByDaemonSet = new Map<string, Map<string, k8s.V1Pod>>();
  const index = <T>(map: Map<string, Map<string, T>>, key: string, name: string, value: T | undefined): void => {
    const entries = map.get(key) ?? new Map<string, T>();
    if (value === undefined) entries.delete(name);
    else entries.set(name, value);
    if (entries.size > 0) map.set(key, entries);
    else map.delete(key);
  };
  // DaemonSets of `kube-prepull run` are not the controller's: it only deletes the ones a crashed
  // run left behind, once their kube-prepull.io/expires-at has passed.
  const expiries = new Map<string, NodeJS.Timeout>();
  const expireRunDaemonSet = (ds: k8s.V1DaemonSet, afterMs: number | undefined): void => {
    const key = objectKey(ds);
    clearTimeout(expiries.get(key));
    expiries.delete(key);
    if (afterMs === undefined) return;
    const timer = setTimeout(() => {
      expiries.delete(key);
      if (!running) return;
      const [namespace, name] = [ds.metadata!.namespace!, ds.metadata!.name!];
      deps.actions.deleteDaemonSet(namespace, name).then(
        () => log.info({ namespace, daemonSet: name }, "deleted a DaemonSet an interrupted `kube-prepull run` left behind"),
        (error: unknown) => {
          log.warn({ namespace, daemonSet: name, err: error }, "could not delete an expired `kube-prepull run` DaemonSet; retrying");
          expireRunDaemonSet(ds, 30_000);
        },
      );
    }, Math.min(Math.max(0, afterMs), 2 ** 31 - 1));
    expiries.set(key, timer);
  };
  const order = new StartOrder(deps.config.maxConcurrentPrepulls);
  // After a prepull ends or a slot frees up, the next queued prepulls may start.
  const startQueued = (): void => {
    for (const key of order.startable()) enqueue(key);
  };

  const deployments = new Reflector<k8s.V1Deployment>({
    name: "deployments",
    kubeConfig,
    path: "/apis/apps/v1/deployments",
    list: (p) => apps.listDeploymentForAllNamespaces(p),
    log,
    onEvent: (type: ObjectEvent, d) => {
      const key = `${d.metadata?.namespace}/${d.metadata?.name}`;
      const a = d.metadata?.annotations ?? {};
      order.set(key, type === "DELETED" ? undefined : prepullState(decodeRequest(a[SYSTEM_ANNOTATIONS.request]), decodeStatus(a[SYSTEM_ANNOTATIONS.status])));
      if (type !== "DELETED" && isOurs(d)) enqueue(key);
      startQueued();
    },
  });
  // Node changes (Ready, cordon, images, new nodes) matter to prepulls in flight; heartbeats of
  // many nodes come in bursts, so they are folded into one pass a second.
  let nodesChanged: NodeJS.Timeout | undefined;
  const nodes = new Reflector<k8s.V1Node>({
    name: "nodes",
    kubeConfig,
    path: "/api/v1/nodes",
    list: (p) => core.listNode(p),
    transform: nodeForCache,
    log,
    onEvent: () => {
      nodesChanged ??= setTimeout(() => {
        nodesChanged = undefined;
        for (const key of order.pulling()) enqueue(key);
      }, 1000);
    },
  });
  const daemonSets = new Reflector<k8s.V1DaemonSet>({
    name: "daemonsets",
    kubeConfig,
    path: "/apis/apps/v1/daemonsets",
    labelSelector: MANAGED_SELECTOR,
    list: (p) => apps.listDaemonSetForAllNamespaces(p),
    log,
    onEvent: (type, ds) => {
      const list = keepWarm?.listOf(ds);
      if (list) enqueue(KEEP_WARM_KEY + list);
      const key = ownerKey(ds);
      const expiry = runExpiry(ds);
      if (expiry !== undefined) expireRunDaemonSet(ds, type === "DELETED" ? undefined : expiry - deps.now().getTime());
      if (!key) return;
      index(daemonSetsByOwner, key, ds.metadata!.name!, type === "DELETED" ? undefined : ds);
      enqueue(key);
    },
  });
  const pods = new Reflector<k8s.V1Pod>({
    name: "pods",
    kubeConfig,
    path: "/api/v1/pods",
    labelSelector: MANAGED_SELECTOR,
    list: (p) => core.listPodForAllNamespaces(p),
    transform: podForCache,
    log,
    onEvent: (type, pod) => {
      const dsName = pod.metadata?.labels?.[LABELS.prepull];
      if (!dsName) return;
      index(podsByDaemonSet, `${pod.metadata?.namespace}/${dsName}`, pod.metadata!.name!, type === "DELETED" ? undefined : pod);
      const list = keepWarm?.listOf(pod);
      if (list) schedule(KEEP_WARM_KEY + list, POD_EVENT_BATCH_MS);
      const ds = daemonSets.get(pod.metadata!.namespace!, dsName);
      const key = ds ? ownerKey(ds) : undefined;
      // Pods of one prepull change in bursts (hundreds of nodes at once): fold each burst into one
      // reconcile instead of one per pod event, so the controller keeps up with the watch.
      if (key) schedule(key, POD_EVENT_BATCH_MS);
    },
  });
  const keepWarm = deps.config.keepWarm
    ? createKeepWarmLists({
        kubeConfig,
        namespace: deps.config.keepWarm.namespace,
        podConfig: deps.config.pod,
        actions: deps.actions,
        log,
        metrics: deps.metrics,
        now: deps.now,
        daemonSet: (namespace, name) => daemonSets.get(namespace, name),
        podsOf: (namespace, name) => [...(podsByDaemonSet.get(`${namespace}/${name}`)?.values() ?? [])],
        changed: (list) => enqueue(KEEP_WARM_KEY + list),
      })
    : undefined;
  const reflectors = [deployments, nodes, daemonSets, pods, ...(keepWarm ? [keepWarm.reflector] : [])];
  const synced = (): boolean => reflectors.every((r) => r.hasSynced());

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
      case "set-daemonset-nodes":
        log.info({ namespace, deployment: name, daemonSet: action.name, added: action.added }, "next wave");
        await deps.actions.setDaemonSetAffinity(namespace, action.name, action.affinity);
        return;
      case "delete-daemonset":
        log.info({ namespace, deployment: name, daemonSet: action.name, reason: action.reason }, "deleting prepull DaemonSet");
        await deps.actions.deleteDaemonSet(namespace, action.name);
        return;
      case "write-status": {
        await deps.actions.writeStatus(namespace, name, action.status);
        // The start order learns the new phase now, not when the write comes back through the
        // Deployment watch: a finished prepull's slot goes to the next queued one at once.
        const key = `${namespace}/${name}`;
        order.set(key, prepullState(decodeRequest(deployment.metadata?.annotations?.[SYSTEM_ANNOTATIONS.request]), action.status));
        startQueued();
        return;
      }
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
    if (keepWarm && key.startsWith(KEEP_WARM_KEY)) {
      const refreshAt = await keepWarm.process(key.slice(KEEP_WARM_KEY.length));
      if (refreshAt) schedule(key, refreshAt.getTime() - deps.now().getTime());
      return;
    }
    const [namespace, name] = key.split("/") as [string, string];
    const deployment = deployments.get(namespace, name);
    if (!deployment) return; // deleted: its DaemonSets go with it (ownerReference)
    const owned = [...(daemonSetsByOwner.get(key)?.values() ?? [])];
    if (!isOurs(deployment) && owned.length === 0) return;
    const ownedPods = owned.flatMap((ds) => [...(podsByDaemonSet.get(`${namespace}/${ds.metadata!.name}`)?.values() ?? [])]);
    const decision = reconcile(
      { deployment, daemonSets: owned, pods: ownedPods, nodes: nodes.list(), mayStart: order.mayStart(key), now: deps.now() },
      deps.config,
    );
    if (decision.actions.length > 0) {
      log.debug({ namespace, deployment: name, actions: decision.actions.map((a) => a.kind) }, "reconcile");
    }
    for (const action of decision.actions) await perform(deployment, action);
    if (decision.requeueAfterMs !== undefined) schedule(key, decision.requeueAfterMs);
  };

  const drain = async (): Promise<void> => {
    if (working || !running) return;
    if (!synced()) {
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
    let held = 0;
    for (const d of deployments.list()) {
      if (d.spec?.paused && d.metadata?.annotations?.[SYSTEM_ANNOTATIONS.heldBy] !== undefined) held++;
    }
    deps.metrics.activePrepulls.set(order.pulling().length);
    deps.metrics.heldDeployments.set(held);
    deps.metrics.queueDepth.set(order.queued().length);
  }, 5000);
  gauges.unref();

  for (const reflector of reflectors) reflector.start();
  return {
    hasSynced: synced,
    stop: () => {
      running = false;
      clearInterval(gauges);
      clearTimeout(nodesChanged);
      for (const { timer } of timers.values()) clearTimeout(timer);
      for (const timer of expiries.values()) clearTimeout(timer);
      for (const reflector of reflectors) reflector.stop();
    },
  };
}
