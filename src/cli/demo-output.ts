// What `kube-prepull demo` shows of its Deployment: the live progress line, when the hold was
// released and the rollout completed, and the closing summary. All pure; demo-command.ts prints.
import type * as k8s from "@kubernetes/client-node";
import { isTerminal, type PrepullStatus } from "../prepull/progress.js";
import { progressBar } from "./run-output.js";

/** Replicas of the demo's Deployment. */
export const DEMO_REPLICAS = 3;

/** What the demo saw, in seconds after the Deployment was created. */
export interface RolloutTimeline {
  status?: PrepullStatus;
  releasedAt?: number;
  completedAt?: number;
  cleanedAt?: number;
}

/** "[####----] 4/8 nodes pulled  Pulling  rollout HELD  ready 0/3" */
export function rolloutLine(deployment: k8s.V1Deployment, status: PrepullStatus | undefined): string {
  const nodes = status?.nodes ?? { desired: 0, pulled: 0, failed: 0 };
  const hold = deployment.spec?.paused === true ? "rollout HELD" : "rollout running";
  const ready = deployment.status?.readyReplicas ?? 0;
  return `${progressBar(nodes.pulled, nodes.desired)} ${nodes.pulled}/${nodes.desired} nodes pulled  ${status?.phase ?? "Pending"}  ${hold}  ready ${ready}/${DEMO_REPLICAS}`;
}

/** The prepull's final phase once kube-prepull has unpaused the Deployment; undefined while held or pulling. */
export function releasedPhase(deployment: k8s.V1Deployment, status: PrepullStatus | undefined): string | undefined {
  if (deployment.spec?.paused === true || status === undefined || !isTerminal(status.phase)) return undefined;
  return status.phase;
}

/** Every replica runs the new template. */
export function isRolledOut(deployment: k8s.V1Deployment): boolean {
  return (deployment.status?.availableReplicas ?? 0) >= DEMO_REPLICAS && (deployment.status?.updatedReplicas ?? 0) >= DEMO_REPLICAS;
}

/** "created …" and "admitted …": what admission did to the new Deployment. */
export function createdLines(created: k8s.V1Deployment, images: string[], heldByAnnotation: string): string[] {
  const heldBy = created.metadata?.annotations?.[heldByAnnotation] ?? "-";
  return [
    `created deployment/shop (${DEMO_REPLICAS} replicas, kube-prepull.io/hold: "true") with ${images.join(", ")}`,
    `admitted with spec.paused=${String(created.spec?.paused)} and held-by=${heldBy}: the rollout waits`,
  ];
}

const secondsOr = (seconds: number | undefined, after: string, otherwise: string): string =>
  seconds !== undefined ? `${seconds.toFixed(1)} s${after}` : otherwise;

/** kube-prepull's own events, oldest first. */
function ownEvents(events: k8s.CoreV1Event[]): k8s.CoreV1Event[] {
  const ours = events.filter((e) => e.source?.component === "kube-prepull");
  return ours.sort((a, b) => new Date(a.firstTimestamp ?? 0).getTime() - new Date(b.firstTimestamp ?? 0).getTime());
}

/** The closing summary (after a blank line): the timeline, then kube-prepull's events on the Deployment. */
export function demoSummaryLines(timeline: RolloutTimeline, events: k8s.CoreV1Event[]): string[] {
  return [
    "",
    "summary",
    `  prepull:        ${timeline.status?.phase ?? "?"} — ${timeline.status?.message ?? ""}`,
    `  rollout held:   ${secondsOr(timeline.releasedAt, " (until every node had the images)", "not released")}`,
    `  rollout done:   ${secondsOr(timeline.completedAt, " after create, its pods started on nodes that already had the images", "not completed")}`,
    `  DaemonSet gone: ${secondsOr(timeline.cleanedAt, " after create", "not yet")}`,
    "  events:",
    ...ownEvents(events).map((e) => `    ${(e.type ?? "").padEnd(7)} ${(e.reason ?? "").padEnd(17)} ${e.message ?? ""}`),
  ];
}
