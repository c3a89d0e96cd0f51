// What the controller's caches keep of nodes and prepull pods: only the fields its decisions read
// (targets.ts, progress.ts, keep-warm.ts). At 1000 nodes and 1000 prepull pods the full objects
// were most of serve's memory (docs/benchmarks.md); client-go's informers offer the same kind of
// transform for the same reason.
import type * as k8s from "@kubernetes/client-node";

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
