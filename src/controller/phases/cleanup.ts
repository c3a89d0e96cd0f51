// Phase "cleanup": the DaemonSets of older requests go at once (superseded); the current one stays
// until the rollout completed (deleting it at "pulled" would let image garbage collection remove
// the images first), or until the TTL (spec §4 "Cleanup").
import { isTerminal, type PrepullStatus } from "../../prepull/progress.js";
import type { Action, ControllerConfig, Observed, View } from "./types.js";

export function supersededDaemonSets(observed: Observed, view: View): Action[] {
  return observed.daemonSets
    .filter((ds) => ds.metadata?.name !== view.currentName)
    .map((ds) => ({ kind: "delete-daemonset", name: ds.metadata!.name!, reason: "superseded by a newer image change" }));
}

export function cleanupPhase(observed: Observed, view: View, current: PrepullStatus | undefined, config: ControllerConfig): { actions: Action[]; requeue: number[] } {
  const { currentName } = view;
  if (!current || !isTerminal(current.phase) || !currentName) return { actions: [], requeue: [] };
  if (!observed.daemonSets.some((ds) => ds.metadata?.name === currentName)) return { actions: [], requeue: [] };
  const now = observed.now.getTime();
  const ttlEnds = Date.parse(current.finishedAt ?? current.startedAt) + config.cleanupTtlSeconds * 1000;
  // Still held (the release is on its way): the workload's status cannot say the rollout is done.
  // Held-by alone, the mechanism undone by its user, is no hold: the status can.
  const held = view.heldBy !== undefined && observed.workload.isHeld(observed.object, view.heldBy);
  if (!held && observed.workload.rolloutComplete(observed.object)) {
    return { actions: [{ kind: "delete-daemonset", name: currentName, reason: "rollout complete" }], requeue: [] };
  }
  if (now >= ttlEnds) return { actions: [{ kind: "delete-daemonset", name: currentName, reason: "cleanup TTL passed" }], requeue: [] };
  return { actions: [], requeue: [ttlEnds - now] };
}
