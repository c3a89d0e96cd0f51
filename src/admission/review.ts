// The admission.k8s.io/v1 wire protocol: parsing an AdmissionReview and building the responses.
// The only module that copies the request uid into a response or base64-encodes a patch.
// https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
  userInfo?: { username?: string };
}

export interface JsonPatchOperation {
  op: "add" | "replace" | "remove" | "test";
  path: string;
  value?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: "JSONPatch";
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: "admission.k8s.io/v1";
  kind: "AdmissionReview";
  response: AdmissionResponse;
}

export type ParsedReview = { ok: true; request: AdmissionRequest } | { ok: false; message: string };

const OPERATIONS = new Set(["CREATE", "UPDATE", "DELETE", "CONNECT"]);

/** The apiserver always sends group, version and kind as strings (group "" for the core group). */
const isGroupKind = (kind: unknown): boolean =>
  typeof kind === "object" && kind !== null && typeof (kind as { kind?: unknown }).kind === "string" && typeof (kind as { group?: unknown }).group === "string";

/** Checks the shape of a decoded AdmissionReview; the message says what is wrong. */
export function parseReview(body: unknown): ParsedReview {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, message: "the body is not a JSON object" };
  }
  const review = body as { apiVersion?: unknown; kind?: unknown; request?: unknown };
  if (review.apiVersion !== "admission.k8s.io/v1" || review.kind !== "AdmissionReview") {
    return {
      ok: false,
      message: `expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got ${String(review.apiVersion)}, ${String(review.kind)}`,
    };
  }
  const request = review.request as Partial<AdmissionRequest> | undefined;
  if (typeof request !== "object" || request === null) return { ok: false, message: "request is missing" };
  if (typeof request.uid !== "string" || request.uid === "") return { ok: false, message: "request.uid is missing" };
  if (typeof request.operation !== "string" || !OPERATIONS.has(request.operation)) {
    return { ok: false, message: `request.operation must be one of CREATE, UPDATE, DELETE, CONNECT` };
  }
  if (!isGroupKind(request.kind)) return { ok: false, message: "request.kind is missing or has no string group and kind" };
  return { ok: true, request: request as AdmissionRequest };
}

function review(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response };
}

const withWarnings = (warnings: string[] | undefined): { warnings?: string[] } =>
  warnings && warnings.length > 0 ? { warnings } : {};

export function allow(uid: string, warnings?: string[]): AdmissionReviewResponse {
  return review({ uid, allowed: true, ...withWarnings(warnings) });
}

export function deny(uid: string, message: string, code = 422): AdmissionReviewResponse {
  return review({ uid, allowed: false, status: { code, message, reason: "Invalid" } });
}

export function patched(uid: string, operations: JsonPatchOperation[], warnings?: string[]): AdmissionReviewResponse {
  if (operations.length === 0) return allow(uid, warnings);
  return review({
    uid,
    allowed: true,
    patchType: "JSONPatch",
    patch: Buffer.from(JSON.stringify(operations)).toString("base64"),
    ...withWarnings(warnings),
  });
}

/** RFC 6901: "~" and "/" in a key are escaped as "~0" and "~1" in a JSON pointer. */
export function pointerSegment(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}
