// Phase "pulling": a started prepull — its progress from the DaemonSet's pods, the end
// (succeeded, failed, timed out), the next wave, and progress writes on milestones (spec §4).
import type * as k8s from "@kubernetes/client-node";
import { imageVolumesDropped, placementOf, renderPrepullDaemonSet } from "../../prepull/daemonset.js";
import { failureCounts, nextWaveAffinity, outcomeOf, progressOf, statusNodes, type PrepullStatus, type Progress } from "../../prepull/progress.js";
import type { PrepullRequest } from "../../prepull/request.js";
import { firstNodeList, parallelLimit, type NodePlan } from "../../prepull/targets.js";
import { secondsSince, type Action, type ControllerConfig, type Observed, type PhaseResult, type View } from "./types.js";

/** Shortest time between two progress updates of the status annotation. */
export const PROGRESS_INTERVAL_MS = 2000;

type Started = View & { request: PrepullRequest; currentName: string };
type Nodes = PrepullStatus["nodes"];

/** Which quarter of its nodes a prepull has pulled: 0…4, the milestones progress is written at. */
const quarter = (n: Nodes): number => (n.desired > 0 ? Math.floor((4 * n.pulled) / n.desired) : 0);

const IMAGE_VOLUMES_DROPPED =
  "the API server dropped the image volumes of the prepull pods (ImageVolume feature gate off: Kubernetes < 1.35); use the init-containers pull strategy";

/** The end of a prepull, if it has ended: its phase, message and Event. */
function endOf(observed: Observed, view: Started, daemonSet: k8s.V1DaemonSet | undefined, progress: Progress | undefined, nodes: Nodes, elapsed: number):
  { phase: Exclude<PrepullStatus["phase"], "Pulling">; message: string; event: { type: "Normal" | "Warning"; reason: string; message: string } } | undefined {
  const outcome = progress ? outcomeOf(progress) : { kind: "pulling" as const };
  if (daemonSet && imageVolumesDropped(daemonSet)) {
    return { phase: "Failed", message: IMAGE_VOLUMES_DROPPED, event: { type: "Warning", reason: "PrepullFailed", message: IMAGE_VOLUMES_DROPPED } };
  }
  if (outcome.kind === "succeeded") {
    const message = `pulled on ${nodes.pulled} node${nodes.pulled === 1 ? "" : "s"} in ${elapsed.toFixed(1)}s`;
    return { phase: "Succeeded", message, event: { type: "Normal", reason: "PrepullSucceeded", message: `${message}: ${view.request.images.join(", ")}` } };
  }
  if (outcome.kind === "failed") {
    return { phase: "Failed", message: outcome.message, event: { type: "Warning", reason: "PrepullFailed", message: outcome.message } };
  }
  if (observed.now.getTime() >= view.deadline) {
    const message = `not pulled on every node within ${view.settings.holdTimeoutSeconds}s (${nodes.pulled}/${nodes.desired} pulled)`;
    return { phase: "TimedOut", message, event: { type: "Warning", reason: "PrepullTimedOut", message } };
  }
  return undefined;
}

/**
 * Progress is written on fixed milestones — another quarter of the nodes pulled, the node count
 * changed, more nodes failed — at most every PROGRESS_INTERVAL_MS, and never while the DaemonSet
 * controller has not reported: a write per pod, or per few seconds of a long pull, would make the
 * API cost of a prepull follow the number of nodes or the pull's duration (spec §4 "Scale";
 * docs/benchmarks.md). The final status is written by the end, not here.
 */
function progressWrite(current: PrepullStatus, progress: Progress | undefined, nodes: Nodes, now: Date): { status?: PrepullStatus; requeue?: number } {
  const known = current.nodes;
  if (!progress || progress.settling) return {};
  const due = nodes.desired !== known.desired || nodes.skipped !== known.skipped || nodes.unsupported !== known.unsupported || nodes.failed > known.failed || quarter(nodes) !== quarter(known);
  if (!due) return {};
  const nextWrite = Date.parse(current.updatedAt ?? current.startedAt) + PROGRESS_INTERVAL_MS;
  if (now.getTime() >= nextWrite) return { status: withFailures({ ...current, nodes, updatedAt: now.toISOString() }, progress) };
  return { requeue: nextWrite - now.getTime() };
}

/** The status with the progress's failed nodes by reason (kept as they were without a progress). */
function withFailures(status: PrepullStatus, progress: Progress | undefined): PrepullStatus {
  if (!progress) return status;
  const next: PrepullStatus = { ...status, failures: failureCounts(progress.failures) };
  if (progress.failures.length === 0) delete next.failures;
  return next;
}

/** Where the prepull stands: its DaemonSet, the progress of its pods, the node counts, the grace. */
function observe(observed: Observed, view: Started, current: PrepullStatus, plan: NodePlan, config: ControllerConfig) {
  const now = observed.now.getTime();
  const daemonSet = observed.daemonSets.find((ds) => ds.metadata?.name === view.currentName);
  const createdAt = daemonSet?.metadata?.creationTimestamp ? new Date(daemonSet.metadata.creationTimestamp).getTime() : now;
  const graceEnds = createdAt + config.schedulingGraceSeconds * 1000;
  const pendingPods = observed.pendingPods.get(view.currentName);
  const progress = daemonSet ? progressOf({ daemonSet, pendingPods, plan, graceOver: now >= graceEnds }) : undefined;
  const nodes = progress ? statusNodes(progress) : current.nodes;
  return { daemonSet, graceEnds, progress, nodes };
}

export function pullingPhase(observed: Observed, view: Started, current: PrepullStatus, plan: NodePlan, config: ControllerConfig): PhaseResult {
  const { now, workload, object } = observed;
  const { request, currentName, settings } = view;
  const actions: Action[] = [];
  const { daemonSet, graceEnds, progress, nodes } = observe(observed, view, current, plan, config);
  const limit = parallelLimit(settings.maxParallel, plan.targets.length);
  const elapsed = secondsSince(current.startedAt, now);
  const end = endOf(observed, view, daemonSet, progress, nodes, elapsed);
  if (end) {
    const status = withFailures({ ...current, phase: end.phase, nodes, finishedAt: now.toISOString(), message: end.message }, progress);
    actions.push({ kind: "write-status", status }, { kind: "count", result: end.phase, seconds: elapsed, pulled: nodes.pulled, failed: nodes.failed }, { kind: "event", ...end.event });
    return { actions, requeue: [], current: status };
  }
  // Not after the end: a DaemonSet created for a prepull that just ended would pull for nothing.
  if (!daemonSet && plan.targets.length > 0) {
    // Created but not yet seen, or deleted by someone: creating again is idempotent (409 = fine).
    const nodeNames = firstNodeList(plan, limit);
    actions.push({ kind: "create-daemonset", daemonSet: renderPrepullDaemonSet({ workload, object, request, nodes: settings.nodes, nodeNames, config: config.pod }) });
  }
  const wave = daemonSet && progress ? nextWaveAffinity({ daemonSet, progress, placement: placementOf(view.template, settings.nodes), limit }) : undefined;
  if (wave) actions.push({ kind: "set-daemonset-nodes", name: currentName, ...wave });
  const write = progressWrite(current, progress, nodes, now);
  if (write.status) actions.push({ kind: "write-status", status: write.status });
  const requeue = [view.deadline - now.getTime(), ...(write.requeue !== undefined ? [write.requeue] : [])];
  if (now.getTime() < graceEnds) requeue.push(graceEnds - now.getTime());
  return { actions, requeue, current: write.status ?? current };
}
