// Applies a JSON patch the way the apiserver must, with fast-json-patch: an RFC 6902 implementation
// independent of kube-prepull's code, validating every operation (a path that does not resolve, a
// failed `test`, a `replace` of nothing all throw). Test support only.
import jsonpatch, { type Operation } from "fast-json-patch";
import type { JsonPatchOperation } from "../../src/admission/review.js";

/** `document` with `operations` applied (`document` itself is left unchanged). */
export function applyPatch<T>(document: T, operations: readonly JsonPatchOperation[]): T {
  return jsonpatch.applyPatch(document, operations as Operation[], true, false).newDocument;
}
