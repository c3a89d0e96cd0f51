// The controller's list+watch caches and what their events ask the queue for: one reflector per
// workload kind (every object but kube-prepull's own), nodes (slimmed) and prepull DaemonSets
// indexed by owning workload, so a reconcile reads only its own objects whatever the cluster size.
// Prepull pods are not watched: progress comes from the DaemonSets' status, and their pending pods
// are listed only on a stall (pending-pods.ts, spec §4 "Scale").
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { createKeepWarmLists, type KeepWarmLists } from "../keepwarm/keep-warm-loop.js";
import type { ClusterActions } from "../kube/cluster-actions.js";
import { nodeForCache, workloadForCache } from "../kube/cache-shapes.js";
import { PendingPods, type PendingPodsRead } from "../kube/pending-pods.js";
import { Reflector } from "../kube/reflector.js";
import type { Metrics } from "../observability/metrics.js";
import { LABELS, MANAGED_BY, SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { ownerWorkload, WORKLOADS } from "../workloads/kinds.js";
import { workloadKey, type Workload, type WorkloadClients, type WorkloadKindName, type WorkloadObject } from "../workloads/workload.js";
import { createRunExpiry, type RunExpiry } from "./run-expiry.js";
import { clockOf } from "./work-queue.js";
import type { ControllerConfig } from "./reconcile.js";

/** Queue keys of keep-warm lists (workloads are "<Kind>/<namespace>/<name>"; a list name has no "/"). */
export const KEEP_WARM_KEY = "keep-warm:";
/** DaemonSet status changes of one prepull within this window are handled by one reconcile. */
const DAEMONSET_EVENT_BATCH_MS = 200;
/** Node heartbeats of many nodes come in bursts: folded into one pass over the pulling prepulls. */
const NODE_EVENT_BATCH_MS = 1000;

const MANAGED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY}`;
// The webhooks' objectSelector excludes the same objects: our own DaemonSets and our own install.
const NOT_MANAGED_SELECTOR = `${LABELS.managedBy}!=${MANAGED_BY}`;

export interface CacheDeps {
  kubeConfig: k8s.KubeConfig;
  actions: ClusterActions;
  config: ControllerConfig;
  log: Logger;
  metrics: Metrics;
  now: () => Date;
}

export interface CacheEvents {
  /** A workload was added, changed (object) or deleted (undefined). */
  workloadChanged: (key: string, object: WorkloadObject | undefined) => void;
  enqueue: (key: string, afterMs: number) => void;
  /** Keys of the prepulls pulling now (node changes matter to them). */
  pullingKeys: () => string[];
  /** A cache lists or watches again after failing: the apiserver is back. */
  apiserverBack: () => void;
}

export interface Caches {
  workload(kind: WorkloadKindName, namespace: string, name: string): { workload: Workload; object: WorkloadObject } | undefined;
  workloads(kind: WorkloadKindName): WorkloadObject[];
  daemonSetsOf(workloadKey: string): k8s.V1DaemonSet[];
  /** The pending pods of a prepull DaemonSet, when a stall made them worth listing (pod-detail.ts). */
  pendingPodsOf(daemonSet: k8s.V1DaemonSet): PendingPodsRead;
  nodes(): k8s.V1Node[];
  /** The workload has a request or a hold of kube-prepull's. */
  isOurs(object: WorkloadObject): boolean;
  keepWarm: KeepWarmLists | undefined;
  hasSynced: () => boolean;
  start: () => void;
  stop: () => void;
}

const ownerKey = (ds: k8s.V1DaemonSet): string | undefined => {
  const owner = ownerWorkload(ds);
  return owner ? workloadKey(owner.workload.kind, ds.metadata!.namespace!, owner.name) : undefined;
};

const isOurs = (object: WorkloadObject): boolean => {
  const a = object.metadata?.annotations ?? {};
  return a[SYSTEM_ANNOTATIONS.request] !== undefined || a[SYSTEM_ANNOTATIONS.heldBy] !== undefined;
};

function workloadReflector(deps: CacheDeps, events: CacheEvents, clients: WorkloadClients, workload: Workload): Reflector<WorkloadObject> {
  return new Reflector<WorkloadObject>({
    name: workload.resource,
    kubeConfig: deps.kubeConfig,
    path: `/apis/${workload.group}/${workload.version}/${workload.resource}`,
    labelSelector: NOT_MANAGED_SELECTOR,
    list: (p) => workload.api.list(clients, p),
    transform: workloadForCache((object) => workload.template(object)),
    log: deps.log,
    onRecovered: events.apiserverBack,
    onEvent: (type, object) => {
      const key = workloadKey(workload.kind, object.metadata!.namespace!, object.metadata!.name!);
      events.workloadChanged(key, type === "DELETED" ? undefined : object);
      if (type !== "DELETED" && isOurs(object)) events.enqueue(key, 0);
    },
  });
}

/** Nodes, slimmed; their changes (Ready, cordon, images, new nodes) matter to prepulls in flight. */
function nodeReflector(deps: CacheDeps, events: CacheEvents): { reflector: Reflector<k8s.V1Node>; stop: () => void } {
  const core = deps.kubeConfig.makeApiClient(k8s.CoreV1Api);
  let nodesChanged: NodeJS.Timeout | undefined;
  const reflector = new Reflector<k8s.V1Node>({
    name: "nodes",
    kubeConfig: deps.kubeConfig,
    path: "/api/v1/nodes",
    list: (p) => core.listNode(p),
    transform: nodeForCache,
    log: deps.log,
    onRecovered: events.apiserverBack,
    onEvent: () => {
      nodesChanged ??= setTimeout(() => {
        nodesChanged = undefined;
        for (const key of events.pullingKeys()) events.enqueue(key, 0);
      }, NODE_EVENT_BATCH_MS);
    },
  });
  return { reflector, stop: () => clearTimeout(nodesChanged) };
}

/** The keep-warm list a DaemonSet or pod belongs to, if any. */
type KeepWarmListOf = (object: k8s.KubernetesObject) => string | undefined;

/** Our DaemonSets, indexed by owning workload; a change wakes its owner or keep-warm list and re-arms its run expiry. */
function daemonSetReflector(deps: CacheDeps, events: CacheEvents, apps: k8s.AppsV1Api, expiry: RunExpiry, keepWarmListOf: KeepWarmListOf, pending: PendingPods): Reflector<k8s.V1DaemonSet> {
  return new Reflector<k8s.V1DaemonSet>({
    name: "daemonsets",
    kubeConfig: deps.kubeConfig,
    path: "/apis/apps/v1/daemonsets",
    labelSelector: MANAGED_SELECTOR,
    list: (p) => apps.listDaemonSetForAllNamespaces(p),
    indexers: {
      owner: (ds) => {
        const key = ownerKey(ds);
        return key ? [key] : [];
      },
    },
    log: deps.log,
    onRecovered: events.apiserverBack,
    onEvent: (type, ds) => {
      if (type === "DELETED") pending.forget(ds.metadata!.namespace!, ds.metadata!.name!);
      // Status changes of one prepull come in bursts (its pods start on hundreds of nodes at once):
      // fold each burst into one reconcile.
      const list = keepWarmListOf(ds);
      if (list) events.enqueue(KEEP_WARM_KEY + list, DAEMONSET_EVENT_BATCH_MS);
      expiry.observe(ds, type === "DELETED");
      const key = ownerKey(ds);
      if (key) events.enqueue(key, DAEMONSET_EVENT_BATCH_MS);
    },
  });
}

export function createCaches(deps: CacheDeps, events: CacheEvents): Caches {
  const { kubeConfig, log } = deps;
  const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
  const clients: WorkloadClients = { apps, batch: kubeConfig.makeApiClient(k8s.BatchV1Api) };
  const workloads = new Map(WORKLOADS.map((w) => [w.kind, { workload: w, reflector: workloadReflector(deps, events, clients, w) }]));
  const expiry = createRunExpiry({ actions: deps.actions, log, clock: clockOf(() => deps.now().getTime()) });

  // Read at event time: the keep-warm lists need the DaemonSet and pod caches, so come after them.
  const keepWarmListOf: KeepWarmListOf = (object) => keepWarm?.listOf(object);
  const { reflector: nodes, stop: stopNodes } = nodeReflector(deps, events);
  const pending: PendingPods = new PendingPods({
    core: kubeConfig.makeApiClient(k8s.CoreV1Api),
    now: () => deps.now().getTime(),
    log,
    fetched: (namespace, name) => {
      const ds = daemonSets.get(namespace, name);
      const list = ds ? keepWarmListOf(ds) : undefined;
      if (list) events.enqueue(KEEP_WARM_KEY + list, 0);
      const key = ds ? ownerKey(ds) : undefined;
      if (key) events.enqueue(key, 0);
    },
  });
  const daemonSets = daemonSetReflector(deps, events, apps, expiry, keepWarmListOf, pending);
  const pendingPodsOf = (daemonSet: k8s.V1DaemonSet): PendingPodsRead => pending.read(daemonSet);
  const keepWarm = deps.config.keepWarm
    ? createKeepWarmLists({
        ...deps,
        namespace: deps.config.keepWarm.namespace,
        podConfig: deps.config.pod,
        daemonSet: (namespace, name) => daemonSets.get(namespace, name),
        pendingPodsOf,
        changed: (list) => events.enqueue(KEEP_WARM_KEY + list, 0),
      })
    : undefined;
  const reflectors = [...[...workloads.values()].map((w) => w.reflector), nodes, daemonSets, ...(keepWarm ? [keepWarm.reflector] : [])];

  return {
    workload: (kind, namespace, name) => {
      const entry = workloads.get(kind);
      const object = entry?.reflector.get(namespace, name);
      return entry && object ? { workload: entry.workload, object } : undefined;
    },
    workloads: (kind) => workloads.get(kind)?.reflector.list() ?? [],
    daemonSetsOf: (key) => daemonSets.byIndex("owner", key),
    pendingPodsOf,
    nodes: () => nodes.list(),
    isOurs,
    keepWarm,
    hasSynced: () => reflectors.every((r) => r.hasSynced()),
    start: () => reflectors.forEach((r) => r.start()),
    stop: () => {
      stopNodes();
      expiry.stop();
      reflectors.forEach((r) => r.stop());
    },
  };
}
