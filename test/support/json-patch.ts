// A minimal RFC 6902 applier (add/replace/remove/test on objects) for asserting what a patch does
// to an object, the way the apiserver applies it. Test support only.
import type { JsonPatchOperation } from "../../src/admission/review.js";

export function applyPatch<T>(document: T, operations: JsonPatchOperation[]): T {
  const result = structuredClone(document) as unknown;
  for (const op of operations) {
    const segments = op.path.split("/").slice(1).map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
    const last = segments.pop();
    if (last === undefined) throw new Error(`bad path ${op.path}`);
    let parent = result as Record<string, unknown>;
    for (const segment of segments) {
      const next = parent[segment];
      if (typeof next !== "object" || next === null) throw new Error(`path ${op.path}: ${segment} does not exist`);
      parent = next as Record<string, unknown>;
    }
    if (op.op === "test") {
      if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw new Error(`test failed at ${op.path}`);
    } else if (op.op === "remove") {
      if (!(last in parent)) throw new Error(`remove: ${op.path} does not exist`);
      delete parent[last];
    } else {
      if (op.op === "replace" && !(last in parent)) throw new Error(`replace: ${op.path} does not exist`);
      parent[last] = structuredClone(op.value);
    }
  }
  return result as T;
}
