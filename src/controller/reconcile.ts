// The controller's decision for one workload: from what the cluster shows (the workload, its
// prepull DaemonSets and their pods), the API server's last refusal of its DaemonSet and the time,
// the actions that move it towards the spec's behaviour (§4). Pure and level-triggered: run it again with the same inputs and it asks for the
// same idempotent actions, so a restart or a second replica loses and breaks nothing. The phases
// (start, pulling, hold, cleanup) are in ./phases; the workload's kind speaks through its adapter.
import { imagesToPull, placementOf } from "../prepull/daemonset.js";
import type { PrepullStatus } from "../prepull/progress.js";
import { planNodes, type NodePlan } from "../prepull/targets.js";
import { cleanupPhase, supersededDaemonSets } from "./phases/cleanup.js";
import { holdPhase } from "./phases/hold.js";
import { pullingPhase } from "./phases/pulling.js";
import { startPhase } from "./phases/start.js";
import type { ControllerConfig, Decision, Observed, PhaseResult, View } from "./phases/types.js";
import { viewOf } from "./phases/view.js";

export type { Action, ControllerConfig, Decision, Observed } from "./phases/types.js";
export { PROGRESS_INTERVAL_MS } from "./phases/pulling.js";

/** Default of serve's --scheduling-grace, and the grace `run` gives unschedulable pods. */
export const SCHEDULING_GRACE_DEFAULT_SECONDS = 30;

/** The start or pulling phase of the current request, if there is one to move. */
function requestPhase(observed: Observed, view: View, config: ControllerConfig): PhaseResult {
  const { request, currentName } = view;
  // The status is the current request's only if it says so; another one's is a superseded prepull.
  const current: PrepullStatus | undefined = view.status?.request === request?.id ? view.status : undefined;
  if (!request || !currentName) return { actions: [], requeue: [], current };
  const started = { ...view, request, currentName };
  // Where the pods can run and which nodes still miss the images: only needed while a prepull
  // starts or pulls, not for the many reconciles of finished ones.
  const plan = (): NodePlan => planNodes(placementOf(view.template, view.settings.nodes), observed.nodes, imagesToPull(view.template, request.images));
  if (!current || (current.queued && current.phase === "Pulling")) return startPhase(observed, started, current, plan(), config);
  if (current.phase === "Pulling") return pullingPhase(observed, started, current, plan(), config);
  return { actions: [], requeue: [], current };
}

/** `view`: the workload's decoded annotations, when the caller has decoded them already. */
export function reconcile(observed: Observed, config: ControllerConfig, view: View = viewOf(observed)): Decision {
  const superseded = supersededDaemonSets(observed, view);
  const { actions, requeue, current } = requestPhase(observed, view, config);
  const cleanup = cleanupPhase(observed, view, current, config);
  // Deletes last: a hold due is released before the DaemonSets of superseded prepulls go (after a
  // leader change on a loaded apiserver, each call of a long backlog counts).
  const all = [...actions, ...holdPhase(observed, view, current), ...superseded, ...cleanup.actions];
  const positive = [...requeue, ...cleanup.requeue].filter((ms) => ms > 0);
  return { actions: all, ...(positive.length > 0 ? { requeueAfterMs: Math.min(...positive) } : {}) };
}
