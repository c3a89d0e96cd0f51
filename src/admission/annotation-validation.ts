// The validating webhook's decision: a Deployment write that introduces an unknown
// kube-prepull.io/ annotation or a malformed value is denied with a message naming the key and the
// allowed values (spec §3). Problems already present before this write do not block it, so
// kube-prepull's own status writes and unrelated edits always go through.
import type { V1Deployment } from "@kubernetes/client-node";
import { readSettings } from "../prepull/annotations.js";
import type { AdmissionRequest } from "./review.js";

export type ValidationDecision = { allowed: true } | { allowed: false; message: string };

export function validateDeploymentAnnotations(request: AdmissionRequest): ValidationDecision {
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") return { allowed: true };
  const annotations = (request.object as V1Deployment | undefined)?.metadata?.annotations;
  const before = (request.oldObject as V1Deployment | undefined)?.metadata?.annotations ?? {};
  const introduced = readSettings(annotations).problems.filter(
    (problem) => annotations?.[problem.key] !== before[problem.key],
  );
  if (introduced.length === 0) return { allowed: true };
  return { allowed: false, message: introduced.map((p) => p.message).join("; ") };
}
