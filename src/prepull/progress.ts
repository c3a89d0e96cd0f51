// Per-node progress of a prepull, read from its DaemonSet and pods; and the status annotation
// (spec §3). Pure.
import type * as k8s from "@kubernetes/client-node";
import { listedNodes, listsEveryTarget, nextWave, prepullAffinity, type NodePlan, type Placement } from "./targets.js";

// A superseded prepull gets no phase of its own: the status follows the newest request (spec §4),
// and the supersede is told by an Event, the `superseded` field and the prepulls metric.
export type Phase = "Pulling" | "Succeeded" | "Failed" | "TimedOut";

/** How a prepull ended, as the prepulls metric counts it: its final phase, or superseded. */
export type PrepullResult = Exclude<Phase, "Pulling"> | "Superseded";

/** Failed nodes the status annotation names, at most, across reasons (the counts cover every node). */
export const STATUS_FAILED_NODES = 20;
/** A reason's message in the status annotation is cut to this many characters. */
const STATUS_MESSAGE_CHARS = 300;

/** The failed nodes of one reason: how many, the message of the first, and some of their names. */
export interface FailureCount {
  reason: string;
  count: number;
  message: string;
  /** Up to STATUS_FAILED_NODES names across all reasons, sorted; `count` says how many there are. */
  nodes: string[];
}

/** Prepulls of this workload superseded by a newer image change so far, and the last one. */
export interface Superseded {
  count: number;
  /** The last superseded request, its images and when the newer one replaced it. */
  request: string;
  images: string[];
  at: string;
}

export interface PrepullStatus {
  phase: Phase;
  images: string[];
  /**
   * desired: nodes the prepull targets; skipped: nodes that already had the images; unsupported
   * (only when some): nodes left out for their OS or architecture (targets.ts HELPER_PLATFORMS).
   */
  nodes: { desired: number; pulled: number; failed: number; skipped?: number; unsupported?: number };
  startedAt: string;
  finishedAt?: string;
  /** When the progress counts were last written. */
  updatedAt?: string;
  message?: string;
  /** The request this status belongs to. */
  request: string;
  daemonSet: string;
  /** Waiting for a free slot under the cluster-wide cap on concurrent prepulls. */
  queued?: boolean;
  /** Failed nodes by reason (absent in annotations written before it existed, and without failures). */
  failures?: FailureCount[];
  superseded?: Superseded;
}

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === "string");

function isFailureCount(value: unknown): value is FailureCount {
  const f = value as Partial<FailureCount> | null;
  return typeof f === "object" && f !== null && typeof f.reason === "string" && typeof f.count === "number" && typeof f.message === "string" && isStringArray(f.nodes);
}

function isSuperseded(value: unknown): value is Superseded {
  const s = value as Partial<Superseded> | null;
  return typeof s === "object" && s !== null && typeof s.count === "number" && typeof s.request === "string" && isStringArray(s.images) && typeof s.at === "string";
}

/** The status annotation's text: the one encoding the controller writes and compares its cache with. */
export function encodeStatus(status: PrepullStatus): string {
  return JSON.stringify(status);
}

/**
 * The status annotation, or undefined when it is absent or not kube-prepull's. Annotations of
 * every earlier version decode: fields added later are optional, and a malformed optional field is
 * dropped rather than failing the whole status.
 */
export function decodeStatus(text: string | undefined): PrepullStatus | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<PrepullStatus>;
    if (typeof value.phase === "string" && typeof value.request === "string" && typeof value.startedAt === "string") {
      const { failures, superseded, ...rest } = value as PrepullStatus;
      return {
        ...rest,
        images: isStringArray(rest.images) ? rest.images : [],
        nodes: { desired: 0, pulled: 0, failed: 0, ...(rest.nodes as Partial<PrepullStatus["nodes"]> | undefined) },
        ...(Array.isArray(failures) && failures.every(isFailureCount) ? { failures } : {}),
        ...(isSuperseded(superseded) ? { superseded } : {}),
      };
    }
  } catch {
    // not ours
  }
  return undefined;
}

/**
 * Failed nodes by reason for the status annotation: every failure counted, up to `limit` nodes
 * named — in turns across reasons, so each reason names some — and one message per reason. Sorted,
 * so the same failures always give the same annotation (no write for nothing).
 */
export function failureCounts(failures: NodeFailure[], limit = STATUS_FAILED_NODES): FailureCount[] {
  const byReason = new Map<string, NodeFailure[]>();
  for (const f of [...failures].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))) {
    byReason.set(f.reason, [...(byReason.get(f.reason) ?? []), f]);
  }
  const groups = [...byReason].sort(([ra, a], [rb, b]) => b.length - a.length || (ra < rb ? -1 : 1));
  const named = groups.map((): string[] => []);
  let budget = limit;
  for (let i = 0; budget > 0 && groups.some(([, list]) => list.length > i); i++) {
    groups.forEach(([, list], g) => {
      if (budget > 0 && list[i]) {
        named[g]!.push(list[i]!.node);
        budget--;
      }
    });
  }
  return groups.map(([reason, list], g) => ({
    reason,
    count: list.length,
    message: list[0]!.message.slice(0, STATUS_MESSAGE_CHARS),
    nodes: named[g]!,
  }));
}

export const isTerminal = (phase: Phase): boolean => phase !== "Pulling";

// Waiting reasons that mean "this node's pull failed" (kubelet images.go / pkg/kubelet/images).
const PULL_FAILURES = new Set(["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable", "SignatureValidationFailed"]);
// Failures that will not heal by retrying on this or any other node: end the prepull at once.
const PERMANENT_REASONS = new Set(["InvalidImageName", "ErrImageNeverPull", "ImageVolumesUnsupported"]);
// A runtime without image volumes (containerd < 2.1) receives the mount without a source and fails
// to create the container with this message (seen with containerd 1.6 on the local real node).
const IMAGE_VOLUME_UNSUPPORTED = /failed to mkdir ""/;
const PERMANENT_MESSAGE = /not found|manifest unknown|unauthorized|denied|no such host|invalid reference/i;

export interface NodeFailure {
  node: string;
  reason: string;
  message: string;
}

export interface Progress {
  /** Nodes the prepull targets: pulled, failed, pulling now and waiting for their wave. */
  desired: number;
  pulled: number;
  failures: NodeFailure[];
  /** True when a failure is permanent (the image cannot be pulled anywhere). */
  permanentFailure: boolean;
  /** The DaemonSet controller has not reported on the current generation yet. */
  settling: boolean;
  /** Listed nodes still pulling (or whose pod is not there yet). */
  inFlight: number;
  /** Targets not listed yet: the next waves, in order. */
  waiting: string[];
  skipped: number;
  /** Nodes left out for their OS or architecture (the plan's). */
  unsupported: number;
}

export function isReady(pod: k8s.V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/**
 * Every image of the pod is on its node: each `pull-N` init container has been created (it is
 * running or has run), which the kubelet does only once its image is there. Earlier than Ready by
 * the pull containers' and the pause container's start (about a second each on a real node).
 */
function pulledAllImages(pod: k8s.V1Pod): boolean {
  const pulls = (pod.status?.initContainerStatuses ?? []).filter((s) => /^pull-\d+$/.test(s.name));
  return pulls.length > 0 && pulls.every((s) => s.state?.running !== undefined || s.state?.terminated !== undefined);
}

function isUnschedulable(pod: k8s.V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "PodScheduled" && c.status === "False") ?? false;
}

/** The node a DaemonSet pod is for: its nodeName once bound, before that the node its affinity names. */
function nodeOfPod(pod: k8s.V1Pod): string | undefined {
  if (pod.spec?.nodeName) return pod.spec.nodeName;
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  return terms[0]?.matchFields?.find((r) => r.key === "metadata.name")?.values?.[0];
}

/** A failure that will not heal by retrying, on this node or another. */
function isPermanent(failure: NodeFailure): boolean {
  return PERMANENT_REASONS.has(failure.reason) || PERMANENT_MESSAGE.test(failure.message);
}

/** The pull failure a prepull pod's containers report, if any. */
export function pullFailureOf(pod: k8s.V1Pod, node: string): NodeFailure | undefined {
  for (const status of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = status.state?.waiting;
    if (waiting?.reason && PULL_FAILURES.has(waiting.reason)) {
      return { node, reason: waiting.reason, message: waiting.message ?? "" };
    }
    if (waiting?.reason === "CreateContainerError" && IMAGE_VOLUME_UNSUPPORTED.test(waiting.message ?? "")) {
      return {
        node,
        reason: "ImageVolumesUnsupported",
        message: `the node's container runtime cannot mount image volumes (containerd >= 2.1 or CRI-O >= 1.31 is needed; or use --pull-strategy init-containers): ${waiting.message}`,
      };
    }
  }
  return undefined;
}

/** The DaemonSet controller has not reported on the current generation yet. */
export function isSettling(daemonSet: k8s.V1DaemonSet): boolean {
  return (daemonSet.status?.observedGeneration ?? 0) < (daemonSet.metadata?.generation ?? 1);
}

/** The prepull's pods by the hostname of their node. */
function podsByNode(pods: k8s.V1Pod[], plan: NodePlan): Map<string, k8s.V1Pod> {
  const podByNode = new Map<string, k8s.V1Pod>();
  for (const pod of pods) {
    const name = nodeOfPod(pod);
    if (name) podByNode.set(plan.hostnames.get(name) ?? name, pod);
  }
  return podByNode;
}

/** What a pending pod's node counts as in the progress; "uncounted" nodes count nowhere. */
type NodeState = { kind: "pulled" } | { kind: "failed"; failure: NodeFailure } | { kind: "inFlight" } | { kind: "uncounted" };

interface NodeContext {
  targets: Set<string>;
  /** Nodes that report every image. */
  present: Set<string>;
  graceOver: boolean;
}

/** The pod's pull containers were all created, or its node reports every image by now. */
function hasPulled(pod: k8s.V1Pod, node: string, failure: NodeFailure | undefined, present: Set<string>): boolean {
  const permanent = failure !== undefined && isPermanent(failure);
  return !permanent && (isReady(pod) || pulledAllImages(pod) || present.has(node));
}

/**
 * A pending pod's node: pulled already (early signal), failed, not counted (the node stopped being
 * a target: NotReady, cordoned; or, once the grace is over, the scheduler cannot place the pod), or
 * still pulling.
 */
function stateOfPendingPod(node: string, pod: k8s.V1Pod, context: NodeContext): NodeState {
  const failure = pullFailureOf(pod, node);
  if (hasPulled(pod, node, failure, context.present)) return { kind: "pulled" };
  if (!context.targets.has(node)) return failure && context.present.has(node) ? { kind: "failed", failure } : { kind: "uncounted" };
  if (failure) return { kind: "failed", failure };
  if (context.graceOver && isUnschedulable(pod)) return { kind: "uncounted" };
  return { kind: "inFlight" };
}

/** The DaemonSet controller's counts (spec §4: it already aggregates its pods; we do not watch them). */
function daemonSetCounts(daemonSet: k8s.V1DaemonSet) {
  const s = daemonSet.status;
  return { desired: s?.desiredNumberScheduled ?? 0, current: s?.currentNumberScheduled ?? 0, ready: s?.numberReady ?? 0, misscheduled: s?.numberMisscheduled ?? 0 };
}

/** Per-node states of the pending pods the detail shows (none without detail). */
function pendingStates(pendingPods: k8s.V1Pod[], plan: NodePlan, graceOver: boolean) {
  const context: NodeContext = { targets: new Set(plan.targets), present: new Set(plan.skipped), graceOver };
  let pulled = 0;
  let inFlight = 0;
  const failures: NodeFailure[] = [];
  for (const [node, pod] of podsByNode(pendingPods, plan)) {
    const state = stateOfPendingPod(node, pod, context);
    if (state.kind === "pulled") pulled++;
    else if (state.kind === "failed") failures.push(state.failure);
    else if (state.kind === "inFlight") inFlight++;
  }
  return { pulled, inFlight, failures, seen: pendingPods.length };
}

/** The status's node counts from a progress: `unsupported` only when some nodes were left out. */
export function statusNodes(progress: Progress): PrepullStatus["nodes"] {
  return {
    desired: progress.desired,
    pulled: progress.pulled,
    failed: progress.failures.length,
    skipped: progress.skipped,
    ...(progress.unsupported > 0 ? { unsupported: progress.unsupported } : {}),
  };
}

/**
 * Progress of a prepull from its DaemonSet's status counts (pods Ready = nodes pulled; pods not
 * created yet or not Ready = in flight) and, when there is one, a list of its pending pods
 * (`pendingPods`: per-node detail, fetched on a stall, pod-detail.ts) that names failures,
 * unschedulable pods and nodes that stopped being targets. Without the detail nothing can be
 * known to have failed, so a prepull never fails or stops counting a node on counts alone; it can
 * only succeed, once every wanted pod is Ready. Listed targets the DaemonSet controller does not
 * want (taints) never count: desiredNumberScheduled leaves them out. Targets not listed yet wait
 * for their wave. Nodes that report the images without a pod of ours are `skipped`. While the
 * DaemonSet controller has not reported on the current generation, the listed targets count as
 * wanted.
 */
export function progressOf(input: { daemonSet: k8s.V1DaemonSet; pendingPods: k8s.V1Pod[] | undefined; plan: NodePlan; graceOver: boolean }): Progress {
  const { daemonSet, plan } = input;
  const settling = isSettling(daemonSet);
  const counts = daemonSetCounts(daemonSet);
  const detail = pendingStates(input.pendingPods ?? [], plan, input.graceOver);
  const everyTarget = listsEveryTarget(daemonSet);
  const listed = new Set(everyTarget ? plan.targets : listedNodes(daemonSet));
  const waiting = everyTarget ? [] : plan.targets.filter((node) => !listed.has(node));
  // Until the DaemonSet controller reports on this generation (just created, or a wave added
  // nodes), the listed targets are what it is about to want.
  const wanted = settling ? Math.max(counts.desired, plan.targets.filter((node) => listed.has(node)).length) : counts.desired;
  // Pods created but neither Ready nor in the detail.
  const notCreated = Math.max(0, wanted - counts.current);
  const unlisted = Math.max(0, counts.current - counts.ready - detail.seen);
  // With the detail, the pods neither Ready nor pending are Running: every init container (each
  // pull) has run, or the image volumes are mounted; pulled, though not Ready (a node gone NotReady
  // after its pull, a pause container restarting). Without it they may be pending: in flight.
  const known = input.pendingPods !== undefined;
  // The two sources are two watches apart: never report more pulled nodes than there are pods.
  const pulled = Math.min(counts.ready + detail.pulled + (known ? unlisted : 0), counts.current + counts.misscheduled);
  const inFlight = detail.inFlight + notCreated + (known ? 0 : unlisted);
  return {
    desired: pulled + detail.failures.length + inFlight + waiting.length,
    pulled,
    failures: detail.failures,
    permanentFailure: detail.failures.some(isPermanent),
    settling,
    inFlight,
    waiting,
    skipped: everyTarget ? 0 : plan.skipped.filter((node) => !listed.has(node)).length,
    unsupported: plan.unsupported,
  };
}

/**
 * The DaemonSet's next node list (the next wave), as the pod affinity to patch in, when slots are
 * free and nodes wait; undefined while the list stays as it is or the DaemonSet controller has
 * not caught up with the last change.
 */
export function nextWaveAffinity(input: { daemonSet: k8s.V1DaemonSet; progress: Progress; placement: Placement; limit: number }): { affinity: k8s.V1Affinity; added: number } | undefined {
  const { daemonSet, progress } = input;
  if (progress.settling || listsEveryTarget(daemonSet)) return undefined;
  const before = listedNodes(daemonSet);
  const listed = nextWave({ listed: before, waiting: progress.waiting, inFlight: progress.inFlight, limit: input.limit });
  return listed ? { affinity: prepullAffinity(input.placement, listed), added: listed.length - before.length } : undefined;
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
