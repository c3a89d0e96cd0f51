// The mutating webhook's decision for a Deployment CREATE/UPDATE (spec §4). Pure: the request
// and the clock in, a decision and JSON patch out. No Kubernetes API call is made on this path;
// the controller acts once the object is persisted. Dry-run requests get the same decision (GitOps
// drift checks must see the same object), and cause nothing because nothing acts on them.
import type { V1Deployment } from "@kubernetes/client-node";
import { readSettings, SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { decodeRequest, encodeRequest, newImages, newRequest, type PrepullRequest } from "../prepull/request.js";
import { pointerSegment, type AdmissionRequest, type JsonPatchOperation } from "./review.js";

export type MutationDecision =
  | { kind: "skip"; reason: string; warnings: string[] }
  | { kind: "prepull"; request: PrepullRequest; hold: boolean; patch: JsonPatchOperation[]; warnings: string[] };

const skip = (reason: string, warnings: string[] = []): MutationDecision => ({ kind: "skip", reason, warnings });

export function decideDeploymentMutation(request: AdmissionRequest, now: Date): MutationDecision {
  if (request.kind.kind !== "Deployment" || request.kind.group !== "apps") return skip("not an apps Deployment");
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") return skip(`operation ${request.operation}`);
  const deployment = request.object as V1Deployment | undefined;
  if (!deployment?.spec) return skip("no Deployment in the request");
  const old = request.operation === "UPDATE" ? (request.oldObject as V1Deployment | undefined) : undefined;

  const annotations = deployment.metadata?.annotations ?? {};
  const { settings, problems } = readSettings(annotations);
  const warnings = problems.map((p) => `kube-prepull: ${p.message}; using the default`);
  if (!settings.prepull) return skip("prepull disabled by annotation", warnings);
  if (deployment.spec.replicas === 0) return skip("replicas is 0", warnings);

  const images = newImages(old?.spec?.template?.spec, deployment.spec.template?.spec);
  if (images.length === 0) return skip("no new images", warnings);

  // Re-invocation (reinvocationPolicy: IfNeeded) sees our own patch already applied: keep it.
  const recorded = decodeRequest(annotations[SYSTEM_ANNOTATIONS.request]);
  const previous = decodeRequest(old?.metadata?.annotations?.[SYSTEM_ANNOTATIONS.request]);
  if (recorded && recorded.id !== previous?.id && sameImages(recorded.images, images)) {
    return skip("already recorded in this write", warnings);
  }

  // Never claim a pause that is not ours: a Deployment its user paused is neither held nor resumed.
  const pausedByUser = deployment.spec.paused === true && !isHeldByUs(old);
  const hold = settings.hold && !pausedByUser;
  if (settings.hold && pausedByUser) {
    warnings.push("kube-prepull: the Deployment is paused by its user; prepulling without holding (it will not be resumed)");
  }
  const prepull = newRequest(images, hold, now);
  const patch: JsonPatchOperation[] = [];
  if (!deployment.metadata?.annotations) patch.push({ op: "add", path: "/metadata/annotations", value: {} });
  const annotationPath = (key: string): string => `/metadata/annotations/${pointerSegment(key)}`;
  patch.push({ op: "add", path: annotationPath(SYSTEM_ANNOTATIONS.request), value: encodeRequest(prepull) });
  if (hold) {
    patch.push({ op: "add", path: annotationPath(SYSTEM_ANNOTATIONS.heldBy), value: prepull.id });
    if (deployment.spec.paused !== true) patch.push({ op: "add", path: "/spec/paused", value: true });
  }
  // Without hold, a held-by left by an earlier request stays: the controller releases that hold.
  return { kind: "prepull", request: prepull, hold, patch, warnings };
}

/** Held by kube-prepull: paused, with our held-by marker. */
export function isHeldByUs(deployment: V1Deployment | undefined): boolean {
  return deployment?.spec?.paused === true && deployment.metadata?.annotations?.[SYSTEM_ANNOTATIONS.heldBy] !== undefined;
}

function sameImages(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((image, i) => image === b[i]);
}
