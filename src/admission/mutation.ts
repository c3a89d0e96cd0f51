// The mutating webhook's decision for a workload CREATE/UPDATE (spec §4, §3a). Pure: the request
// and the clock in, a decision and JSON patch out. No Kubernetes API call is made on this path;
// the controller acts once the object is persisted. Dry-run requests get the same decision (GitOps
// drift checks must see the same object), and cause nothing because nothing acts on them.
import { readSettings, SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { decodeRequest, encodeRequest, newImages, newRequest, type PrepullRequest } from "../prepull/request.js";
import { workloadOfKind } from "../workloads/kinds.js";
import { decodeHeldBy, encodeHeldBy, type HeldBy, type HoldStart, type Workload, type WorkloadObject } from "../workloads/workload.js";
import { pointerSegment, type AdmissionRequest, type JsonPatchOperation } from "./review.js";

export type MutationDecision =
  | { kind: "skip"; reason: string; warnings: string[] }
  | { kind: "prepull"; request: PrepullRequest; hold: boolean; patch: JsonPatchOperation[]; warnings: string[] };

const skip = (reason: string, warnings: string[] = []): MutationDecision => ({ kind: "skip", reason, warnings });

const annotationPath = (key: string): string => `/metadata/annotations/${pointerSegment(key)}`;

/** The hold kube-prepull had on `object` (held-by set and its mechanism still holding), if any. */
export function heldByUs(workload: Workload, object: WorkloadObject | undefined): HeldBy | undefined {
  const heldBy = decodeHeldBy(object?.metadata?.annotations?.[SYSTEM_ANNOTATIONS.heldBy]);
  return object && heldBy && workload.isHeld(object, heldBy) ? heldBy : undefined;
}

interface Write {
  workload: Workload;
  operation: "CREATE" | "UPDATE";
  object: WorkloadObject;
  old: WorkloadObject | undefined;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Why the object's metadata cannot take the patch, if it cannot: the apiserver sends decoded,
 * typed objects, but the patch must never fail (a patch the apiserver cannot apply fails the write).
 */
function malformedMetadata(object: WorkloadObject): string | undefined {
  const metadata: unknown = object.metadata;
  if (!isPlainObject(metadata)) return "the object has no metadata object";
  const annotations = metadata.annotations;
  if (annotations === undefined || annotations === null) return undefined;
  if (!isPlainObject(annotations) || !Object.values(annotations).every((v) => typeof v === "string")) return "the object's annotations are not a map of strings";
  return undefined;
}

/** The workload write this request is, or why it is none kube-prepull acts on. */
function writeOf(request: AdmissionRequest): Write | string {
  const workload = workloadOfKind(request.kind.group, request.kind.kind);
  if (!workload) return `not a workload kube-prepull serves (${request.kind.group}/${request.kind.kind})`;
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") return `operation ${request.operation}`;
  const object = request.object as WorkloadObject | undefined;
  if (!isPlainObject(object) || !isPlainObject(workload.template(object))) return `no ${workload.kind} pod template in the request`;
  const malformed = malformedMetadata(object);
  if (malformed) return malformed;
  const old = request.operation === "UPDATE" ? (request.oldObject as WorkloadObject | undefined) : undefined;
  return { workload, operation: request.operation, object, old };
}

/** The new images of this write, or why there are none to prepull. */
function imagesOf(write: Write): string[] | string {
  const { workload, object, old } = write;
  const images = newImages(old ? workload.template(old)?.spec : undefined, workload.template(object)?.spec);
  if (images.length === 0) return "no new images";
  // Re-invocation (reinvocationPolicy: IfNeeded) sees our own patch already applied: keep it.
  const recorded = decodeRequest(object.metadata?.annotations?.[SYSTEM_ANNOTATIONS.request]);
  const previous = decodeRequest(old?.metadata?.annotations?.[SYSTEM_ANNOTATIONS.request]);
  if (recorded && recorded.id !== previous?.id && sameImages(recorded.images, images)) return "already recorded in this write";
  return images;
}

function requestPatch(object: WorkloadObject, prepull: PrepullRequest, hold: HoldStart): JsonPatchOperation[] {
  const patch: JsonPatchOperation[] = [];
  if (!object.metadata?.annotations) patch.push({ op: "add", path: "/metadata/annotations", value: {} });
  patch.push({ op: "add", path: annotationPath(SYSTEM_ANNOTATIONS.request), value: encodeRequest(prepull) });
  if (hold.held) {
    const heldBy: HeldBy = { request: prepull.id, ...(hold.restore ? { restore: hold.restore } : {}) };
    patch.push({ op: "add", path: annotationPath(SYSTEM_ANNOTATIONS.heldBy), value: encodeHeldBy(heldBy) }, ...hold.patch);
  }
  // Without hold, a held-by left by an earlier request stays: the controller releases that hold.
  return patch;
}

export function decideMutation(request: AdmissionRequest, now: Date): MutationDecision {
  const write = writeOf(request);
  if (typeof write === "string") return skip(write);
  const { settings, problems } = readSettings(write.object.metadata?.annotations);
  const warnings = problems.map((p) => `kube-prepull: ${p.message}; using the default`);
  if (!settings.prepull) return skip("prepull disabled by annotation", warnings);
  const skipReason = write.workload.skipReason(write.object, write.operation);
  if (skipReason) return skip(skipReason, warnings);
  const images = imagesOf(write);
  if (typeof images === "string") return skip(images, warnings);

  const hold: HoldStart = settings.hold
    ? write.workload.startHold(write.object, write.operation, heldByUs(write.workload, write.old))
    : { held: false, warning: "" };
  if (!hold.held && hold.warning) warnings.push(`kube-prepull: ${hold.warning}`);
  const prepull = newRequest(images, hold.held, now);
  return { kind: "prepull", request: prepull, hold: hold.held, patch: requestPatch(write.object, prepull, hold), warnings };
}

function sameImages(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((image, i) => image === b[i]);
}
