// `kube-prepull run` (spec §5): a one-shot prepull for CI pipelines, decided with the controller's
// own pieces — the DaemonSet renderer (daemonset.ts), the node planner and waves (targets.ts) and
// the progress tracker (progress.ts). Pure: the run's spec, nodes, pods and the time in; the
// DaemonSet, the next step and the summary out. Never calls the API or reads a clock.
import type * as k8s from "@kubernetes/client-node";
import { LABELS, PREFIX, type MaxParallel } from "./annotations.js";
import { renderDaemonSet, type PrepullPodConfig } from "./daemonset.js";
import { canonicalImage, parseImageReference } from "./image-reference.js";
import { nextWaveAffinity, outcomeOf, progressOf, type NodeFailure, type Progress } from "./progress.js";
import { nothingToPullMessage, parallelLimit, planNodes, type ImageToPull, type NodePlan, type Placement } from "./targets.js";

/** Annotation on a run's DaemonSet: when a crashed run's leftovers may be deleted by anyone (RFC 3339). */
export const EXPIRES_AT_ANNOTATION = `${PREFIX}expires-at`;
/** How long after its timeout a run's DaemonSet counts as left behind (the run deletes it well before). */
export const RUN_EXPIRY_GRACE_SECONDS = 60;

export type PullPolicy = "Always" | "IfNotPresent";

/** What one `kube-prepull run` pulls, where, and for how long (from its flags). */
export interface RunSpec {
  images: ImageToPull[];
  namespace: string;
  /** Where its pods may run: --node-selector and --toleration. */
  placement: Placement;
  pullSecrets: string[];
  maxParallel: MaxParallel;
  timeoutSeconds: number;
  pod: PrepullPodConfig;
}

/**
 * The pull policy a container naming this image gets when it sets none (Kubernetes
 * SetDefaults_Container): Always for the tag "latest" (or no tag and no digest), else IfNotPresent.
 * It decides whether a node reporting the tag already counts as having it (nodeHasImage).
 */
export function defaultPullPolicy(image: string): PullPolicy {
  const ref = parseImageReference(image);
  return (ref.tag ?? (ref.digest ? "" : "latest")) === "latest" ? "Always" : "IfNotPresent";
}

/**
 * The images to pull, verbatim, without duplicates by identity, each with its pull policy.
 * Throws InvalidImageReference for a reference that does not parse.
 */
export function runImages(images: string[], pullPolicy?: PullPolicy): ImageToPull[] {
  const seen = new Set<string>();
  const result: ImageToPull[] = [];
  for (const image of images) {
    const key = canonicalImage(parseImageReference(image));
    if (seen.has(key)) continue;
    seen.add(key);
    result.push({ image, pullPolicy: pullPolicy ?? defaultPullPolicy(image) });
  }
  return result;
}

export function runPlacement(nodeSelector: Record<string, string>, tolerations: k8s.V1Toleration[]): Placement {
  return {
    ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
    ...(tolerations.length > 0 ? { tolerations } : {}),
  };
}

/** prepull-run-<12 hex>: never the name of a Deployment's prepull, which ends in 10 hex digits. */
export function runDaemonSetName(id: string): string {
  return `prepull-run-${id}`;
}

export function renderRunDaemonSet(input: { id: string; spec: RunSpec; nodeNames: string[]; expiresAt: Date }): k8s.V1DaemonSet {
  const { id, spec } = input;
  return renderDaemonSet({
    subject: {
      name: runDaemonSetName(id),
      namespace: spec.namespace,
      labels: { [LABELS.run]: id },
      annotations: { [EXPIRES_AT_ANNOTATION]: input.expiresAt.toISOString() },
      images: spec.images,
      placement: spec.placement,
      ...(spec.pullSecrets.length > 0 ? { imagePullSecrets: spec.pullSecrets.map((name) => ({ name })) } : {}),
    },
    nodeNames: input.nodeNames,
    config: spec.pod,
  });
}

/** When a run's DaemonSet may be deleted as left behind (ms since the epoch); undefined for other DaemonSets. */
export function runExpiry(daemonSet: k8s.V1DaemonSet): number | undefined {
  if (daemonSet.metadata?.labels?.[LABELS.run] === undefined) return undefined;
  const at = Date.parse(daemonSet.metadata.annotations?.[EXPIRES_AT_ANNOTATION] ?? "");
  // Without a readable expiry, the creation time plus a day: nothing of a run lives that long.
  if (!Number.isNaN(at)) return at;
  const created = daemonSet.metadata.creationTimestamp ? new Date(daemonSet.metadata.creationTimestamp).getTime() : NaN;
  return Number.isNaN(created) ? undefined : created + 86_400_000;
}

/** Run DaemonSets a crashed run left behind, past their expiry. */
export function expiredRunDaemonSets(daemonSets: k8s.V1DaemonSet[], now: number): k8s.V1DaemonSet[] {
  return daemonSets.filter((ds) => {
    const expiry = runExpiry(ds);
    return expiry !== undefined && expiry <= now;
  });
}

export type RunStart =
  | { kind: "nothing-to-pull"; plan: NodePlan; message: string }
  | { kind: "create"; plan: NodePlan; daemonSet: k8s.V1DaemonSet; limit: number };

/** The first move of a run: nothing to do, or the DaemonSet with the first wave of target nodes. */
export function runStart(input: { id: string; spec: RunSpec; nodes: k8s.V1Node[]; expiresAt: Date }): RunStart {
  const plan = planNodes(input.spec.placement, input.nodes, input.spec.images);
  if (plan.targets.length === 0) return { kind: "nothing-to-pull", plan, message: nothingToPullMessage(plan) };
  const limit = parallelLimit(input.spec.maxParallel, plan.targets.length);
  const daemonSet = renderRunDaemonSet({ id: input.id, spec: input.spec, nodeNames: plan.targets.slice(0, limit), expiresAt: input.expiresAt });
  return { kind: "create", plan, daemonSet, limit };
}

export type FinishedResult = "succeeded" | "failed" | "timed-out";

export type RunStep =
  | { kind: "pulling"; progress: Progress; wave?: { affinity: k8s.V1Affinity; added: number } }
  | { kind: "finished"; result: FinishedResult; progress: Progress; message: string };

const nodesText = (n: number): string => `${n} node${n === 1 ? "" : "s"}`;

/**
 * Where a run stands: finished (every targeted node pulled; a permanent failure, or every node has
 * an outcome and some failed; the deadline passed), or still pulling, with the next wave when
 * slots are free. The same completion rules as the controller's (spec §4 "Completion").
 */
export function runStep(input: {
  spec: RunSpec;
  /** The run's DaemonSet as last seen (or as created, before the watch shows it). */
  daemonSet: k8s.V1DaemonSet;
  /** Its pending pods, when a stall made them worth listing (pod-detail.ts). */
  pendingPods: k8s.V1Pod[] | undefined;
  nodes: k8s.V1Node[];
  now: number;
  deadline: number;
  /** Until then, pods the scheduler cannot place still count. */
  graceEnds: number;
}): RunStep {
  const { spec, daemonSet } = input;
  const plan = planNodes(spec.placement, input.nodes, spec.images);
  const progress = progressOf({ daemonSet, pendingPods: input.pendingPods, plan, graceOver: input.now >= input.graceEnds });
  const outcome = outcomeOf(progress);
  if (outcome.kind === "succeeded") {
    return { kind: "finished", result: "succeeded", progress, message: `pulled on ${nodesText(progress.pulled)}` };
  }
  if (outcome.kind === "failed") return { kind: "finished", result: "failed", progress, message: outcome.message };
  if (input.now >= input.deadline) {
    const message = `not pulled on every node within ${spec.timeoutSeconds}s (${progress.pulled}/${progress.desired} pulled)`;
    return { kind: "finished", result: "timed-out", progress, message };
  }
  const wave = nextWaveAffinity({ daemonSet, progress, placement: spec.placement, limit: parallelLimit(spec.maxParallel, plan.targets.length) });
  return { kind: "pulling", progress, ...(wave ? { wave } : {}) };
}

/** How a run ended: the four outcomes of spec §5, plus "error" when the cluster could not be used. */
export type RunResult = FinishedResult | "interrupted" | "error";

/** The one object `run --output json` prints. */
export interface RunSummary {
  result: RunResult;
  message: string;
  images: string[];
  namespace: string;
  /** Its DaemonSet (deleted by now); null when none was needed or it could not be created. */
  daemonSet: string | null;
  /**
   * targeted: nodes the run waited for (pulled, failed, still pulling or waiting); skipped: nodes
   * that already had the images; unsupported: nodes left out for their OS or architecture
   * (targets.ts HELPER_PLATFORMS).
   */
  nodes: { targeted: number; pulled: number; failed: number; skipped: number; unsupported: number };
  failures: NodeFailure[];
  durationSeconds: number;
}

export function runSummary(input: {
  result: RunResult;
  message: string;
  spec: Pick<RunSpec, "images" | "namespace">;
  daemonSet?: string;
  progress?: Progress;
  /** Nodes that had the images when nothing needed pulling (no progress then). */
  skipped?: number;
  /** Nodes left out for their platform when nothing needed pulling. */
  unsupported?: number;
  startedAt: number;
  now: number;
}): RunSummary {
  const { progress } = input;
  return {
    result: input.result,
    message: input.message,
    images: input.spec.images.map((i) => i.image),
    namespace: input.spec.namespace,
    daemonSet: input.daemonSet ?? null,
    nodes: progress
      ? { targeted: progress.desired, pulled: progress.pulled, failed: progress.failures.length, skipped: progress.skipped, unsupported: progress.unsupported }
      : { targeted: 0, pulled: 0, failed: 0, skipped: input.skipped ?? 0, unsupported: input.unsupported ?? 0 },
    failures: progress?.failures ?? [],
    durationSeconds: Math.round(Math.max(0, input.now - input.startedAt) / 100) / 10,
  };
}
