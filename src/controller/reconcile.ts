// The controller's decision for one Deployment: from what the cluster shows (the Deployment, its
// prepull DaemonSets and their pods) and the time, the actions that move it towards the spec's
// behaviour (§4). Pure and level-triggered: run it again with the same inputs and it asks for the
// same idempotent actions, so a restart or a second replica loses and breaks nothing.
import type * as k8s from "@kubernetes/client-node";
import { readSettings, SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { imageVolumesDropped, imagesToPull, placementOf, prepullDaemonSetName, renderPrepullDaemonSet, type PrepullPodConfig } from "../prepull/daemonset.js";
import { decodeStatus, isTerminal, nextWaveAffinity, outcomeOf, progressOf, type PrepullStatus } from "../prepull/progress.js";
import { decodeRequest } from "../prepull/request.js";
import { LABELS } from "../prepull/annotations.js";
import { firstNodeList, nothingToPullMessage, parallelLimit, planNodes, type NodePlan } from "../prepull/targets.js";

export interface ControllerConfig {
  /** Keep-warm lists: ConfigMaps in this namespace (kube-prepull's own); absent: off. */
  keepWarm?: { namespace: string };
  pod: PrepullPodConfig;
  /** Time after a prepull ends before its DaemonSet is deleted even if the rollout has not completed. */
  cleanupTtlSeconds: number;
  /** Time after a DaemonSet's creation before pods the scheduler cannot place stop counting. */
  schedulingGraceSeconds: number;
  /** Cluster-wide cap on prepulls pulling at once; more wait in a queue. */
  maxConcurrentPrepulls: number;
}

export type Action =
  | { kind: "create-daemonset"; daemonSet: k8s.V1DaemonSet }
  | { kind: "delete-daemonset"; name: string; reason: string }
  | { kind: "set-daemonset-nodes"; name: string; affinity: k8s.V1Affinity; added: number }
  | { kind: "write-status"; status: PrepullStatus }
  | { kind: "release-hold"; heldBy: string; reason: string }
  | { kind: "forget-hold"; heldBy: string; reason: string }
  | { kind: "event"; type: "Normal" | "Warning"; reason: string; message: string }
  | { kind: "count"; result: PrepullStatus["phase"]; seconds: number; pulled: number; failed: number };

export interface Decision {
  actions: Action[];
  /** Run again after this many ms (a deadline is coming), if nothing else happens first. */
  requeueAfterMs?: number;
}

export interface Observed {
  deployment: k8s.V1Deployment;
  /** Prepull DaemonSets of this Deployment (by label). */
  daemonSets: k8s.V1DaemonSet[];
  /** Pods of this Deployment's prepull DaemonSets. */
  pods: k8s.V1Pod[];
  /** Every node of the cluster. */
  nodes: k8s.V1Node[];
  /** Whether a new prepull may start now under the cluster-wide cap (spec §4 "Scale"). */
  mayStart: boolean;
  now: Date;
}

/** kubectl rollout status: the new ReplicaSet has every replica updated and available, old ones gone. */
export function rolloutComplete(deployment: k8s.V1Deployment): boolean {
  const status = deployment.status;
  const replicas = deployment.spec?.replicas ?? 1;
  return (
    deployment.spec?.paused !== true &&
    (status?.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0) &&
    (status?.updatedReplicas ?? 0) >= replicas &&
    (status?.replicas ?? 0) <= (status?.updatedReplicas ?? 0) &&
    (status?.availableReplicas ?? 0) >= (status?.updatedReplicas ?? 0)
  );
}

/** Default of serve's --scheduling-grace, and the grace `run` gives unschedulable pods. */
export const SCHEDULING_GRACE_DEFAULT_SECONDS = 30;

/** Shortest time between two progress updates of the status annotation. */
export const PROGRESS_INTERVAL_MS = 2000;
/** Progress within the same tenth of the nodes is written at most this often. */
export const PROGRESS_HEARTBEAT_MS = 30_000;

/** Which tenth of its nodes a prepull has pulled: 0…10. */
const tenth = (n: { desired: number; pulled: number }): number => (n.desired > 0 ? Math.floor((10 * n.pulled) / n.desired) : 0);

const seconds = (from: string, to: Date): number => Math.max(0, (to.getTime() - Date.parse(from)) / 1000);

export function reconcile(observed: Observed, config: ControllerConfig): Decision {
  const { deployment, now } = observed;
  const annotations = deployment.metadata?.annotations ?? {};
  const request = decodeRequest(annotations[SYSTEM_ANNOTATIONS.request]);
  const heldBy = annotations[SYSTEM_ANNOTATIONS.heldBy];
  const status = decodeStatus(annotations[SYSTEM_ANNOTATIONS.status]);
  const { settings, problems } = readSettings(annotations);
  const actions: Action[] = [];
  const requeue: number[] = [];

  const currentName = request ? prepullDaemonSetName(deployment.metadata!.name!, request.images) : undefined;
  // Any other prepull DaemonSet of this Deployment belongs to an older request: superseded.
  for (const ds of observed.daemonSets) {
    if (ds.metadata?.name !== currentName) {
      actions.push({ kind: "delete-daemonset", name: ds.metadata!.name!, reason: "superseded by a newer image change" });
    }
  }

  // Where the pods can run and which nodes still miss the images: only needed while a prepull
  // starts or pulls, not for the many reconciles of finished ones.
  const template = deployment.spec?.template?.spec;
  const placement = placementOf(template, settings.nodes);
  const nodePlan = (images: string[]): NodePlan => planNodes(placement, observed.nodes, imagesToPull(template, images));

  let current: PrepullStatus | undefined = status?.request === request?.id ? status : undefined;
  if (request && currentName && (!current || (current.queued && current.phase === "Pulling"))) {
    // A request the controller has not started yet.
    const deadline = Date.parse(request.requestedAt) + settings.holdTimeoutSeconds * 1000;
    if (!current) {
      if (status && status.phase === "Pulling") {
        actions.push({ kind: "count", result: "Superseded", seconds: seconds(status.startedAt, now), pulled: status.nodes.pulled, failed: status.nodes.failed });
        actions.push({ kind: "event", type: "Normal", reason: "PrepullSuperseded", message: `prepull of ${status.images.join(", ")} superseded by a newer image change` });
      }
      for (const problem of problems) {
        actions.push({ kind: "event", type: "Warning", reason: "InvalidAnnotation", message: `${problem.message}; using the default` });
      }
    }
    const plan = nodePlan(request.images);
    const base = { images: request.images, startedAt: current?.startedAt ?? now.toISOString(), request: request.id, daemonSet: currentName };
    const nodes = { desired: plan.targets.length, pulled: 0, failed: 0, skipped: plan.skipped.length };
    if (plan.targets.length === 0) {
      // Nothing to pull anywhere: done without a DaemonSet.
      const message = nothingToPullMessage(plan);
      current = { ...base, phase: "Succeeded", nodes, finishedAt: now.toISOString(), message };
      actions.push({ kind: "write-status", status: current });
      actions.push({ kind: "count", result: "Succeeded", seconds: seconds(current.startedAt, now), pulled: 0, failed: 0 });
      actions.push({ kind: "event", type: "Normal", reason: "PrepullSucceeded", message: `${message}: ${request.images.join(", ")}` });
    } else if (now.getTime() >= deadline) {
      current = { ...base, phase: "TimedOut", nodes, finishedAt: now.toISOString(), message: `still queued after ${settings.holdTimeoutSeconds}s: the cluster-wide cap on concurrent prepulls was reached` };
      actions.push({ kind: "write-status", status: current });
      actions.push({ kind: "count", result: "TimedOut", seconds: seconds(current.startedAt, now), pulled: 0, failed: 0 });
      actions.push({ kind: "event", type: "Warning", reason: "PrepullTimedOut", message: current.message! });
    } else if (!observed.mayStart) {
      if (!current) {
        current = { ...base, phase: "Pulling", nodes, queued: true, message: "queued: the cluster-wide cap on concurrent prepulls is reached" };
        actions.push({ kind: "write-status", status: current });
      }
      requeue.push(deadline - now.getTime());
    } else {
      const first = firstNodeList(plan, parallelLimit(settings.maxParallel, plan.targets.length));
      const daemonSet = renderPrepullDaemonSet({ deployment, request, nodes: settings.nodes, nodeNames: first, config: config.pod });
      actions.push({ kind: "create-daemonset", daemonSet });
      current = { ...base, phase: "Pulling", nodes, startedAt: now.toISOString() };
      actions.push({ kind: "write-status", status: current });
      const waves = first && first.length < plan.targets.length ? `, ${first.length} at a time` : "";
      const skipped = plan.skipped.length > 0 ? ` (${plan.skipped.length} already have them)` : "";
      actions.push({
        kind: "event",
        type: "Normal",
        reason: "PrepullStarted",
        message: `pulling ${request.images.join(", ")} on ${plan.targets.length} node${plan.targets.length === 1 ? "" : "s"}${skipped}${waves} with daemonset/${currentName}${request.hold ? " (rollout held)" : ""}`,
      });
    }
  } else if (request && currentName && current && current.phase === "Pulling") {
    const daemonSet = observed.daemonSets.find((ds) => ds.metadata?.name === currentName);
    const deadline = Date.parse(request.requestedAt) + settings.holdTimeoutSeconds * 1000;
    const plan = nodePlan(request.images);
    const limit = parallelLimit(settings.maxParallel, plan.targets.length);
    if (!daemonSet && plan.targets.length > 0) {
      // Created but not yet seen, or deleted by someone: creating again is idempotent (409 = fine).
      const daemonSet = renderPrepullDaemonSet({ deployment, request, nodes: settings.nodes, nodeNames: firstNodeList(plan, limit), config: config.pod });
      actions.push({ kind: "create-daemonset", daemonSet });
    }
    const createdAt = daemonSet?.metadata?.creationTimestamp ? new Date(daemonSet.metadata.creationTimestamp).getTime() : now.getTime();
    const graceEnds = createdAt + config.schedulingGraceSeconds * 1000;
    const pods = observed.pods.filter((pod) => pod.metadata?.labels?.[LABELS.prepull] === currentName);
    const progress = daemonSet ? progressOf({ daemonSet, pods, plan, graceOver: now.getTime() >= graceEnds }) : undefined;
    const outcome = progress ? outcomeOf(progress) : { kind: "pulling" as const };
    const nodes = progress
      ? { desired: progress.desired, pulled: progress.pulled, failed: progress.failures.length, skipped: progress.skipped }
      : current.nodes;
    const elapsed = seconds(current.startedAt, now);
    const finish = (phase: PrepullStatus["phase"], message: string): void => {
      current = { ...current!, phase, nodes, finishedAt: now.toISOString(), message };
      actions.push({ kind: "write-status", status: current });
      actions.push({ kind: "count", result: phase, seconds: elapsed, pulled: nodes.pulled, failed: nodes.failed });
    };
    if (daemonSet && imageVolumesDropped(daemonSet)) {
      const message = "the API server dropped the image volumes of the prepull pods (ImageVolume feature gate off: Kubernetes < 1.35); use the init-containers pull strategy";
      finish("Failed", message);
      actions.push({ kind: "event", type: "Warning", reason: "PrepullFailed", message });
    } else if (outcome.kind === "succeeded") {
      finish("Succeeded", `pulled on ${nodes.pulled} node${nodes.pulled === 1 ? "" : "s"} in ${elapsed.toFixed(1)}s`);
      actions.push({ kind: "event", type: "Normal", reason: "PrepullSucceeded", message: `${current.message}: ${request.images.join(", ")}` });
    } else if (outcome.kind === "failed") {
      finish("Failed", outcome.message);
      actions.push({ kind: "event", type: "Warning", reason: "PrepullFailed", message: outcome.message });
    } else if (now.getTime() >= deadline) {
      finish("TimedOut", `not pulled on every node within ${settings.holdTimeoutSeconds}s (${nodes.pulled}/${nodes.desired} pulled)`);
      actions.push({ kind: "event", type: "Warning", reason: "PrepullTimedOut", message: current.message! });
    } else {
      const wave = daemonSet && progress ? nextWaveAffinity({ daemonSet, progress, placement, limit }) : undefined;
      if (wave) actions.push({ kind: "set-daemonset-nodes", name: currentName, ...wave });
      // Progress is written when another tenth of the nodes pulled, a node failed or the node
      // count changed — at most every PROGRESS_INTERVAL_MS — and otherwise every
      // PROGRESS_HEARTBEAT_MS: one write per pod, or per 2 s of a long prepull, would make the API
      // cost of a prepull grow with the number of nodes (spec §4 "Scale"; docs/benchmarks.md).
      const known = current.nodes;
      const changed = nodes.desired !== known.desired || nodes.pulled !== known.pulled || nodes.failed !== known.failed || nodes.skipped !== known.skipped;
      const significant = nodes.desired !== known.desired || nodes.failed !== known.failed || nodes.skipped !== known.skipped || tenth(nodes) !== tenth(known);
      const nextWrite = Date.parse(current.updatedAt ?? current.startedAt) + (significant ? PROGRESS_INTERVAL_MS : PROGRESS_HEARTBEAT_MS);
      if (changed && now.getTime() >= nextWrite) {
        current = { ...current, nodes, updatedAt: now.toISOString() };
        actions.push({ kind: "write-status", status: current });
      } else if (changed) {
        requeue.push(nextWrite - now.getTime());
      }
      requeue.push(deadline - now.getTime());
      if (now.getTime() < graceEnds) requeue.push(graceEnds - now.getTime());
    }
  }

  // The hold: released when its request is done, replaced, unwanted or gone; a user's own resume
  // (spec.paused false while held-by is set) is respected by only dropping the marker.
  if (heldBy !== undefined) {
    const paused = deployment.spec?.paused === true;
    const releaseReason =
      !request || heldBy !== request.id ? "the request that held it was replaced"
      : !settings.hold ? "the hold annotation was removed"
      : current && isTerminal(current.phase) ? `prepull ${current.phase.toLowerCase()}`
      : undefined;
    if (!paused) {
      actions.push({ kind: "forget-hold", heldBy, reason: "resumed by its user" });
      actions.push({ kind: "event", type: "Normal", reason: "HoldReleased", message: "rollout was resumed by its user; kube-prepull no longer holds it" });
    } else if (releaseReason) {
      actions.push({ kind: "release-hold", heldBy, reason: releaseReason });
      actions.push({ kind: "event", type: "Normal", reason: "HoldReleased", message: `rollout released: ${releaseReason}` });
    }
  }

  // Cleanup: keep the DaemonSet until the rollout completed (deleting it at "pulled" would let
  // image garbage collection remove the images first), or until the TTL.
  if (current && isTerminal(current.phase) && currentName) {
    const daemonSet = observed.daemonSets.find((ds) => ds.metadata?.name === currentName);
    const ttlEnds = Date.parse(current.finishedAt ?? current.startedAt) + config.cleanupTtlSeconds * 1000;
    if (daemonSet) {
      if (rolloutComplete(deployment)) {
        actions.push({ kind: "delete-daemonset", name: currentName, reason: "rollout complete" });
      } else if (now.getTime() >= ttlEnds) {
        actions.push({ kind: "delete-daemonset", name: currentName, reason: "cleanup TTL passed" });
      } else {
        requeue.push(ttlEnds - now.getTime());
      }
    }
  }

  const positive = requeue.filter((ms) => ms > 0);
  return { actions, ...(positive.length > 0 ? { requeueAfterMs: Math.min(...positive) } : {}) };
}
