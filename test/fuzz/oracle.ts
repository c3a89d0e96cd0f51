// What a correct answer to a fuzzed request is, decided from the request as sent (not from
// kube-prepull's code): never a 5xx; a 200 only for a well-formed AdmissionReview, and then a
// well-formed AdmissionReview for its uid (allowed, or denied with a 4xx status and a message, a
// JSON patch that applies to the object with an independent RFC 6902 implementation, no internal
// error); a 4xx with a clear message otherwise; and a 200 whenever the review was well-formed and
// sent as the apiserver sends it.
import jsonpatch, { type Operation } from "fast-json-patch";
import type { Wire } from "./mutations.js";

export interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
}

const BODY_LIMIT_BYTES = 8 * 2 ** 20;
const ADMISSION_PATH = /^\/(mutate|validate)\/(deployments|statefulsets|daemonsets|jobs|cronjobs)$/;
const OPERATIONS = ["CREATE", "UPDATE", "DELETE", "CONNECT"];

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** The review's request, when the body is a well-formed AdmissionReview (admission.k8s.io/v1). */
function wellFormedRequest(body: Buffer): Record<string, unknown> | undefined {
  let review: unknown;
  try {
    review = JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
  if (!isObject(review) || review.apiVersion !== "admission.k8s.io/v1" || review.kind !== "AdmissionReview") return undefined;
  const request = review.request;
  if (!isObject(request) || typeof request.uid !== "string" || request.uid === "") return undefined;
  if (typeof request.operation !== "string" || !OPERATIONS.includes(request.operation)) return undefined;
  if (!isObject(request.kind) || typeof request.kind.kind !== "string" || typeof request.kind.group !== "string") return undefined;
  return request;
}

/** Sent as the apiserver sends reviews: POST, an admission path, JSON in UTF-8, within the limit. */
function sentLikeTheApiserver(wire: Wire): boolean {
  const [type = "", ...params] = (wire.headers["content-type"] ?? "").split(";");
  const charset = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith("charset="))?.slice(8).replace(/"/g, "");
  return (
    wire.method === "POST" &&
    ADMISSION_PATH.test(wire.path.split("?")[0]!) &&
    type.trim().toLowerCase() === "application/json" &&
    (charset === undefined || charset === "utf-8") &&
    wire.body.length <= BODY_LIMIT_BYTES
  );
}

function judgePatch(response: Record<string, unknown>, body: Buffer): string | undefined {
  if (response.patch === undefined) return response.patchType === undefined ? undefined : "patchType without a patch";
  if (response.patchType !== "JSONPatch" || typeof response.patch !== "string") return "a patch that is not a base64 JSONPatch";
  let operations: unknown;
  try {
    operations = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8"));
  } catch {
    return "a patch that is not base64 JSON";
  }
  if (!Array.isArray(operations) || operations.length === 0) return "a patch that is not a non-empty array of operations";
  try {
    // On a copy parsed afresh, in place: fast-json-patch's own copy recurses, and objects may be deep.
    const object = (JSON.parse(body.toString("utf8")) as { request: { object: unknown } }).request.object;
    jsonpatch.applyPatch(object, operations as Operation[], true, true);
  } catch (error) {
    return `a patch that does not apply to the object: ${(error as Error).message.split("\n")[0]}`;
  }
  return undefined;
}

function judgeReview(answer: Answer, request: Record<string, unknown>, body: Buffer): string | undefined {
  let review: unknown;
  try {
    review = JSON.parse(answer.body);
  } catch {
    return "a 200 whose body is not JSON";
  }
  if (!isObject(review) || review.apiVersion !== "admission.k8s.io/v1" || review.kind !== "AdmissionReview" || !isObject(review.response)) {
    return "a 200 that is not an AdmissionReview v1 with a response";
  }
  const response = review.response;
  if (response.uid !== request.uid) return `the response's uid is not the request's (${JSON.stringify(response.uid)?.slice(0, 80)})`;
  if (typeof response.allowed !== "boolean") return "response.allowed is not a boolean";
  if (response.warnings !== undefined && (!Array.isArray(response.warnings) || !response.warnings.every((w) => typeof w === "string"))) return "warnings that are not strings";
  if ((response.warnings)?.some((w) => /internal error/.test(w))) return "an internal error (the decision threw; admitted unchanged)";
  if (!response.allowed) {
    const status = response.status;
    if (!isObject(status) || typeof status.code !== "number" || status.code < 400 || status.code >= 500 || typeof status.message !== "string" || status.message === "") {
      return "a denial without a 4xx status and a message";
    }
  }
  return judgePatch(response, body);
}

/** Why the answer is wrong for the request, or undefined when it is right. */
export function judge(wire: Wire, answer: Answer): string | undefined {
  if (answer.status >= 500) return `a ${answer.status}`;
  if (answer.contentType?.split(";")[0] !== "application/json") return `an answer of type ${answer.contentType ?? "none"}`;
  const request = wellFormedRequest(wire.body);
  if (answer.status === 200) return request ? judgeReview(answer, request, wire.body) : "a 200 to a request that is not a well-formed AdmissionReview";
  if (answer.status < 400 || answer.status >= 500) return `an unexpected status ${answer.status}`;
  let error: unknown;
  try {
    error = (JSON.parse(answer.body) as { error?: unknown }).error;
  } catch {
    return `a ${answer.status} whose body is not JSON`;
  }
  if (typeof error !== "string" || error.length < 10) return `a ${answer.status} without a clear message`;
  if (request && sentLikeTheApiserver(wire)) return `a ${answer.status} to a well-formed review: ${error.slice(0, 200)}`;
  return undefined;
}
