// Phase "start": a request the controller has not started yet (or that waits for the cluster-wide
// cap) — done at once when nothing needs pulling, timed out while queued, queued, or started
// with its DaemonSet's first wave (spec §4).
import { renderPrepullDaemonSet } from "../../prepull/daemonset.js";
import type { PrepullResult, PrepullStatus, Superseded } from "../../prepull/progress.js";
import type { CreateFailure } from "../api-errors.js";
import type { PrepullRequest } from "../../prepull/request.js";
import { firstNodeList, nothingToPullMessage, parallelLimit, unsupportedNote, type NodePlan } from "../../prepull/targets.js";
import { secondsSince, type Action, type ControllerConfig, type Observed, type PhaseResult, type View } from "./types.js";

type Started = View & { request: PrepullRequest; currentName: string };

/**
 * The status still on the workload belongs to an older request: if that prepull was still pulling
 * (or queued), the new request supersedes it (spec §4).
 */
const supersedes = (previous: PrepullStatus | undefined): boolean => previous?.phase === "Pulling";

/**
 * What the new status says about superseded prepulls: the count so far and the last one, carried
 * from status to status (the status follows the newest request; spec §4).
 */
function supersededField(previous: PrepullStatus | undefined, now: Date): Superseded | undefined {
  if (!previous || !supersedes(previous)) return previous?.superseded;
  return { count: (previous.superseded?.count ?? 0) + 1, request: previous.request, images: previous.images, at: now.toISOString() };
}

/** The Event and count of a superseded prepull, and the Warnings for invalid annotations, once per request. */
function announce(view: Started, now: Date): Action[] {
  const actions: Action[] = [];
  const status = view.status;
  if (status && supersedes(status)) {
    const { pulled, desired, failed } = status.nodes;
    actions.push({ kind: "count", result: "Superseded", seconds: secondsSince(status.startedAt, now), pulled, failed });
    actions.push({
      kind: "event",
      type: "Normal",
      reason: "PrepullSuperseded",
      message: `prepull of ${status.images.join(", ")} (${status.queued ? "queued" : `${pulled}/${desired} nodes pulled`}) superseded by a newer image change: ${view.request.images.join(", ")}`,
    });
  }
  for (const problem of view.problems) {
    actions.push({ kind: "event", type: "Warning", reason: "InvalidAnnotation", message: `${problem.message}; using the default` });
  }
  return actions;
}

function finished(status: PrepullStatus & { phase: PrepullResult }, now: Date, event: Action): Action[] {
  return [
    { kind: "write-status", status },
    { kind: "count", result: status.phase, seconds: secondsSince(status.startedAt, now), pulled: 0, failed: 0 },
    event,
  ];
}

function startedEvent(view: Started, plan: NodePlan, first: string[] | undefined): Action {
  const targets = plan.targets.length;
  const waves = first && first.length < targets ? `, ${first.length} at a time` : "";
  const skipped = plan.skipped.length > 0 ? ` (${plan.skipped.length} already have them)` : "";
  const unsupported = unsupportedNote(plan.unsupported);
  return {
    kind: "event",
    type: "Normal",
    reason: "PrepullStarted",
    message: `pulling ${view.request.images.join(", ")} on ${targets} node${targets === 1 ? "" : "s"}${skipped}${waves} with daemonset/${view.currentName}${view.request.hold ? " (rollout held)" : ""}${unsupported}`,
  };
}

/**
 * The API server refused the DaemonSet: the prepull fails at once when it would be refused again,
 * at the deadline otherwise (api-errors.ts), with its message in the status and one Warning Event.
 */
function failedToCreate(view: Started, failure: CreateFailure | undefined, now: Date): string | undefined {
  if (!failure || failure.request !== view.request.id) return undefined;
  if (failure.permanent) return `could not create daemonset/${view.currentName}: ${failure.message}`;
  if (now.getTime() < view.deadline) return undefined;
  return `could not create daemonset/${view.currentName} within ${view.settings.holdTimeoutSeconds}s: ${failure.message}`;
}

export function startPhase(observed: Observed, view: Started, current: PrepullStatus | undefined, plan: NodePlan, config: ControllerConfig): PhaseResult {
  const { now } = observed;
  const { request, currentName, settings } = view;
  const announced = current ? [] : announce(view, now);
  const superseded = current ? current.superseded : supersededField(view.status, now);
  const base = { images: request.images, startedAt: current?.startedAt ?? now.toISOString(), request: request.id, daemonSet: currentName, ...(superseded ? { superseded } : {}) };
  const nodes = { desired: plan.targets.length, pulled: 0, failed: 0, skipped: plan.skipped.length, ...(plan.unsupported > 0 ? { unsupported: plan.unsupported } : {}) };
  const end = (phase: PrepullResult & ("Succeeded" | "Failed" | "TimedOut"), message: string, event: Action): PhaseResult => {
    const status = { ...base, phase, nodes, finishedAt: now.toISOString(), message };
    return { actions: [...announced, ...finished(status, now, event)], requeue: [], current: status };
  };
  if (plan.targets.length === 0) {
    // Nothing to pull anywhere: done without a DaemonSet.
    const message = nothingToPullMessage(plan);
    return end("Succeeded", message, { kind: "event", type: "Normal", reason: "PrepullSucceeded", message: `${message}: ${request.images.join(", ")}` });
  }
  const refused = failedToCreate(view, observed.createFailure, now);
  if (refused) return end("Failed", refused, { kind: "event", type: "Warning", reason: "PrepullFailed", message: refused });
  if (now.getTime() >= view.deadline) {
    const message = `still queued after ${settings.holdTimeoutSeconds}s: the cluster-wide cap on concurrent prepulls was reached`;
    return end("TimedOut", message, { kind: "event", type: "Warning", reason: "PrepullTimedOut", message });
  }
  if (!observed.mayStart) {
    if (current) return { actions: announced, requeue: [view.deadline - now.getTime()], current };
    const status: PrepullStatus = { ...base, phase: "Pulling", nodes, queued: true, message: "queued: the cluster-wide cap on concurrent prepulls is reached" };
    return { actions: [...announced, { kind: "write-status", status }], requeue: [view.deadline - now.getTime()], current: status };
  }
  const first = firstNodeList(plan, parallelLimit(settings.maxParallel, plan.targets.length));
  const daemonSet = renderPrepullDaemonSet({ workload: observed.workload, object: observed.object, request, nodes: settings.nodes, nodeNames: first, config: config.pod });
  const status: PrepullStatus = { ...base, phase: "Pulling", nodes, startedAt: now.toISOString() };
  // The create first: when it is refused, nothing else of this start happened, so a retry announces
  // nothing twice. A refused create is retried with backoff, and looked at again at the deadline.
  const retrying = observed.createFailure?.request === request.id;
  return {
    actions: [{ kind: "create-daemonset", daemonSet }, ...announced, { kind: "write-status", status }, startedEvent(view, plan, first)],
    requeue: retrying ? [view.deadline - now.getTime()] : [],
    current: status,
  };
}
