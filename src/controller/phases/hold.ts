// Phase "hold": the hold is released when its request is done, replaced, unwanted or gone; a
// user's own undoing of it (resume, partition or strategy change, unsuspend) is respected by only
// dropping the held-by marker (spec §4 "Hold", §3a).
import { isTerminal, type PrepullStatus } from "../../prepull/progress.js";
import type { Action, Observed, View } from "./types.js";

function releaseReason(view: View, current: PrepullStatus | undefined): string | undefined {
  if (!view.request || view.heldBy?.request !== view.request.id) return "the request that held it was replaced";
  if (!view.settings.hold) return "the hold annotation was removed";
  if (current && isTerminal(current.phase)) return `prepull ${current.phase.toLowerCase()}`;
  return undefined;
}

export function holdPhase({ workload, object }: Observed, view: View, current: PrepullStatus | undefined): Action[] {
  const { heldByText, heldBy } = view;
  if (heldByText === undefined || !heldBy) return [];
  if (!workload.isHeld(object, heldBy)) {
    return [
      { kind: "forget-hold", heldBy: heldByText, reason: "resumed by its user" },
      { kind: "event", type: "Normal", reason: "HoldReleased", message: "rollout was resumed by its user; kube-prepull no longer holds it" },
    ];
  }
  const reason = releaseReason(view, current);
  if (!reason) return [];
  return [
    { kind: "release-hold", heldBy: heldByText, release: workload.release(object, heldBy), reason },
    { kind: "event", type: "Normal", reason: "HoldReleased", message: `rollout released: ${reason}` },
  ];
}
