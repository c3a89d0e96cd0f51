// What the controller sees of a prepull DaemonSet and its pods now that it no longer watches the
// pods (src/prepull/progress.ts, src/prepull/pod-detail.ts): the DaemonSet's status counts, as the
// DaemonSet controller derives them from its pods, and the pods that are not Ready, as the
// pending-pod detail a stall lists. Unit tests describe a prepull by "a DaemonSet and its pods";
// this turns that into the controller's inputs.
import type * as k8s from "@kubernetes/client-node";
import { isReady } from "../../../src/prepull/progress.js";

export interface SeenDaemonSet {
  daemonSet: k8s.V1DaemonSet;
  /** The pending-pod detail (`undefined`: none fetched). */
  pendingPods: k8s.V1Pod[] | undefined;
}

/** The pods a pending-pod list would show: those not Ready (pulling, failing, unschedulable). */
export const pendingOf = (pods: k8s.V1Pod[]): k8s.V1Pod[] => pods.filter((pod) => !isReady(pod));

/**
 * The DaemonSet with status counts derived from its pods (current = pods, ready = Ready pods), and
 * those pods' pending ones as detail (`detail: false`: no detail yet). Which nodes the DaemonSet
 * controller wants (desiredNumberScheduled) and whether it has caught up (observedGeneration) are
 * the test's own: `options.desired`, else the DaemonSet's status, else one node per pod; its
 * observedGeneration, else its generation.
 */
export function withPods(daemonSet: k8s.V1DaemonSet, pods: k8s.V1Pod[], options: { desired?: number; detail?: boolean } = {}): SeenDaemonSet {
  const generation = daemonSet.metadata?.generation ?? 1;
  const status: k8s.V1DaemonSetStatus = {
    ...daemonSet.status,
    observedGeneration: daemonSet.status?.observedGeneration ?? generation,
    desiredNumberScheduled: options.desired ?? daemonSet.status?.desiredNumberScheduled ?? pods.length,
    currentNumberScheduled: pods.length,
    updatedNumberScheduled: pods.length,
    numberReady: pods.filter(isReady).length,
    numberMisscheduled: 0,
  };
  return {
    daemonSet: { ...daemonSet, metadata: { ...daemonSet.metadata, generation }, status },
    pendingPods: options.detail === false ? undefined : pendingOf(pods),
  };
}
