// Per-node progress of a prepull, read from its DaemonSet and pods; and the status annotation
// (spec §3). Pure.
import type * as k8s from "@kubernetes/client-node";

export type Phase = "Pulling" | "Succeeded" | "Failed" | "TimedOut" | "Superseded";

export interface PrepullStatus {
  phase: Phase;
  images: string[];
  nodes: { desired: number; pulled: number; failed: number };
  startedAt: string;
  finishedAt?: string;
  message?: string;
  /** The request this status belongs to. */
  request: string;
  daemonSet: string;
}

export function decodeStatus(text: string | undefined): PrepullStatus | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<PrepullStatus>;
    if (typeof value.phase === "string" && typeof value.request === "string" && typeof value.startedAt === "string") {
      return value as PrepullStatus;
    }
  } catch {
    // not ours
  }
  return undefined;
}

export const isTerminal = (phase: Phase): boolean => phase !== "Pulling";

// Waiting reasons that mean "this node's pull failed" (kubelet images.go / pkg/kubelet/images).
const PULL_FAILURES = new Set(["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable", "SignatureValidationFailed"]);
// Failures that will not heal by retrying on this or any other node: end the prepull at once.
const PERMANENT_REASONS = new Set(["InvalidImageName", "ErrImageNeverPull"]);
const PERMANENT_MESSAGE = /not found|manifest unknown|unauthorized|denied|no such host|invalid reference/i;

export interface NodeFailure {
  node: string;
  reason: string;
  message: string;
}

export interface Progress {
  /** Nodes the prepull targets (pods the DaemonSet runs, less those that could not be scheduled). */
  desired: number;
  pulled: number;
  failures: NodeFailure[];
  /** True when a failure is permanent (the image cannot be pulled anywhere). */
  permanentFailure: boolean;
  /** The DaemonSet controller has not reported on the current generation yet. */
  settling: boolean;
}

function isReady(pod: k8s.V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

function isUnschedulable(pod: k8s.V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "PodScheduled" && c.status === "False") ?? false;
}

function failureOf(pod: k8s.V1Pod): NodeFailure | undefined {
  for (const status of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = status.state?.waiting;
    if (waiting?.reason && PULL_FAILURES.has(waiting.reason)) {
      return { node: pod.spec?.nodeName ?? pod.metadata?.name ?? "?", reason: waiting.reason, message: waiting.message ?? "" };
    }
  }
  return undefined;
}

/**
 * Progress of a prepull. Pods the scheduler cannot place (a full node) count as not targeted once
 * `graceOver`; nodes that never run the pod therefore do not block completion forever.
 */
export function progressOf(daemonSet: k8s.V1DaemonSet, pods: k8s.V1Pod[], graceOver: boolean): Progress {
  const settling = (daemonSet.status?.observedGeneration ?? 0) < (daemonSet.metadata?.generation ?? 1);
  const desiredByController = daemonSet.status?.desiredNumberScheduled ?? 0;
  const unschedulable = graceOver ? pods.filter(isUnschedulable).length : 0;
  const failures = pods.map(failureOf).filter((f): f is NodeFailure => f !== undefined);
  return {
    desired: Math.max(0, desiredByController - unschedulable),
    pulled: pods.filter(isReady).length,
    failures,
    permanentFailure: failures.some((f) => PERMANENT_REASONS.has(f.reason) || PERMANENT_MESSAGE.test(f.message)),
    settling,
  };
}

export type Outcome = { kind: "pulling" } | { kind: "succeeded" } | { kind: "failed"; message: string };

export function outcomeOf(progress: Progress): Outcome {
  if (progress.settling) return { kind: "pulling" };
  if (progress.permanentFailure || (progress.failures.length > 0 && progress.pulled + progress.failures.length >= progress.desired)) {
    return { kind: "failed", message: summariseFailures(progress.failures) };
  }
  if (progress.pulled >= progress.desired) return { kind: "succeeded" };
  return { kind: "pulling" };
}

/** "ImagePullBackOff on 3 nodes (node-a, node-b, …): Back-off pulling image …". */
export function summariseFailures(failures: NodeFailure[]): string {
  const byReason = new Map<string, NodeFailure[]>();
  for (const f of failures) byReason.set(f.reason, [...(byReason.get(f.reason) ?? []), f]);
  return [...byReason]
    .map(([reason, list]) => {
      const nodes = list.slice(0, 5).map((f) => f.node).join(", ") + (list.length > 5 ? ", …" : "");
      const message = list[0]?.message ? `: ${list[0].message}` : "";
      return `${reason} on ${list.length} node${list.length === 1 ? "" : "s"} (${nodes})${message}`;
    })
    .join("; ");
}
