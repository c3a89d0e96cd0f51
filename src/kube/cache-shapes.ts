// What the controller's caches keep of nodes and prepull pods: only the fields its decisions read
// (targets.ts, progress.ts, keep-warm.ts). At 1000 nodes and 1000 prepull pods the full objects
// were most of serve's memory (docs/benchmarks.md); client-go's informers offer the same kind of
// transform for the same reason.
import type * as k8s from "@kubernetes/client-node";
import type { WorkloadObject } from "../workloads/workload.js";

const identity = (m: k8s.V1ObjectMeta | undefined): k8s.V1ObjectMeta => ({
  ...(m?.name !== undefined ? { name: m.name } : {}),
  ...(m?.namespace !== undefined ? { namespace: m.namespace } : {}),
  ...(m?.uid !== undefined ? { uid: m.uid } : {}),
  ...(m?.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
  ...(m?.labels !== undefined ? { labels: m.labels } : {}),
});

/** Placement (labels, taints, cordon), readiness and the images a node reports. */
export function nodeForCache(node: k8s.V1Node): k8s.V1Node {
  return {
    metadata: identity(node.metadata),
    spec: {
      ...(node.spec?.taints ? { taints: node.spec.taints } : {}),
      ...(node.spec?.unschedulable !== undefined ? { unschedulable: node.spec.unschedulable } : {}),
    },
    status: {
      conditions: (node.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status })),
      images: (node.status?.images ?? []).map((i) => ({ names: i.names ?? [] })),
    },
  };
}

// A container's state as decisions read it: why it waits, or only that it was created (running or
// terminated: its image is on the node, progress.ts).
const stateOnly = (state: k8s.V1ContainerState | undefined): k8s.V1ContainerState | undefined =>
  state?.waiting ? { waiting: state.waiting }
    : state?.running ? { running: {} }
    : state?.terminated ? { terminated: { exitCode: state.terminated.exitCode } }
    : undefined;

const statesOnly = (statuses: k8s.V1ContainerStatus[] | undefined): k8s.V1ContainerStatus[] | undefined =>
  statuses?.map((s) => {
    const state = stateOnly(s.state);
    return { name: s.name, image: s.image, imageID: "", ready: s.ready, restartCount: s.restartCount, ...(state ? { state } : {}) };
  });

/** Which node a prepull pod is for, whether it is Ready or unschedulable, and pull failures. */
export function podForCache(pod: k8s.V1Pod): k8s.V1Pod {
  const initContainerStatuses = statesOnly(pod.status?.initContainerStatuses);
  const containerStatuses = statesOnly(pod.status?.containerStatuses);
  return {
    metadata: identity(pod.metadata),
    spec: {
      containers: [],
      ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      ...(pod.spec?.affinity?.nodeAffinity ? { affinity: { nodeAffinity: pod.spec.affinity.nodeAffinity } } : {}),
    },
    status: {
      conditions: (pod.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, ...(c.reason ? { reason: c.reason } : {}) })),
      ...(initContainerStatuses ? { initContainerStatuses } : {}),
      ...(containerStatuses ? { containerStatuses } : {}),
    },
  };
}

/** kubectl's copy of the whole object as last applied: often the largest annotation, never read here. */
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** A container as the prepull reads it: which image, with which pull policy. */
const imageOnly = (c: k8s.V1Container): k8s.V1Container => ({
  name: c.name,
  ...(c.image !== undefined ? { image: c.image } : {}),
  ...(c.imagePullPolicy ? { imagePullPolicy: c.imagePullPolicy } : {}),
});

/** What the prepull copies from a pod template (daemonset.ts): images, pull policies, placement, identity. */
function podSpecForCache(spec: k8s.V1PodSpec = { containers: [] }): k8s.V1PodSpec {
  const slim: k8s.V1PodSpec = { containers: (spec.containers ?? []).map(imageOnly) };
  if (spec.initContainers) slim.initContainers = spec.initContainers.map(imageOnly);
  if (spec.affinity?.nodeAffinity) slim.affinity = { nodeAffinity: spec.affinity.nodeAffinity };
  for (const key of ["nodeSelector", "tolerations", "serviceAccountName", "imagePullSecrets"] as const) {
    if (spec[key] !== undefined) Object.assign(slim, { [key]: spec[key] });
  }
  return slim;
}

/**
 * A workload as the controller keeps it: its spec and status (holds, rollouts), its annotations but
 * kubectl's last-applied copy, and of its pod template only what the prepull copies. With 10,000
 * Deployments in a cluster the whole objects would be most of serve's memory; what a reconcile
 * reads stays (a unit test reconciles slimmed objects to the same decisions).
 */
export function workloadForCache<T extends WorkloadObject>(template: (object: T) => k8s.V1PodTemplateSpec | undefined): (object: T) => T {
  return (object) => {
    if (object.metadata?.managedFields) delete object.metadata.managedFields;
    if (object.metadata?.annotations?.[LAST_APPLIED] !== undefined) delete object.metadata.annotations[LAST_APPLIED];
    const podTemplate = template(object);
    if (podTemplate) {
      podTemplate.spec = podSpecForCache(podTemplate.spec);
      delete podTemplate.metadata;
    }
    return object;
  };
}
