// The validating webhook's decision: a workload write that introduces an unknown kube-prepull.io/
// annotation, a malformed value, or `hold: "true"` on a kind that cannot be held is denied with a
// message naming the key and what is allowed (spec §3, §3a). Problems already present before this
// write do not block it, so kube-prepull's own status writes and unrelated edits always go through.
import { readSettings, USER_ANNOTATIONS } from "../prepull/annotations.js";
import { workloadOfKind } from "../workloads/kinds.js";
import type { WorkloadObject } from "../workloads/workload.js";
import type { AdmissionRequest } from "./review.js";

export type ValidationDecision = { allowed: true } | { allowed: false; message: string };

export function validateAnnotations(request: AdmissionRequest): ValidationDecision {
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") return { allowed: true };
  const annotations = (request.object as WorkloadObject | undefined)?.metadata?.annotations;
  const before = (request.oldObject as WorkloadObject | undefined)?.metadata?.annotations ?? {};
  const introduced = readSettings(annotations).problems.filter((problem) => annotations?.[problem.key] !== before[problem.key]).map((p) => p.message);
  const noHold = workloadOfKind(request.kind.group, request.kind.kind)?.holdUnsupported;
  const hold = USER_ANNOTATIONS.hold;
  if (noHold && annotations?.[hold] === "true" && before[hold] !== "true") introduced.push(`${hold}: ${noHold}`);
  if (introduced.length === 0) return { allowed: true };
  return { allowed: false, message: introduced.join("; ") };
}
