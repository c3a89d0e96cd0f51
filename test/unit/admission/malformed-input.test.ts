// Counterexamples the admission fuzzer found (npm run fuzz; test/fuzz), kept as regressions. The
// apiserver sends decoded, typed objects, but admission must neither throw (an internal error) nor
// answer with a patch the apiserver cannot apply (that fails the user's write) on any input.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateAnnotations } from "../../../src/admission/annotation-validation.js";
import { decideMutation } from "../../../src/admission/mutation.js";
import { parseReview, type AdmissionRequest } from "../../../src/admission/review.js";
import { readSettings } from "../../../src/prepull/annotations.js";
import { templateImages } from "../../../src/prepull/request.js";
import { applyPatch } from "../../support/apply-patch.js";

const NOW = new Date("2026-11-22T10:00:00Z");

function request(kind: string, group: string, operation: "CREATE" | "UPDATE", object: unknown, oldObject?: unknown): AdmissionRequest {
  return { uid: "u-1", kind: { group, version: "v1", kind }, operation, name: "shop", namespace: "shop", object, ...(oldObject ? { oldObject } : {}) };
}

const deployment = (metadata: unknown, containers: unknown = [{ name: "app", image: "nginx:1.27" }]): unknown =>
  ({ metadata, spec: { replicas: 1, template: { spec: { containers } } } });

describe("admission on malformed objects (fuzzer counterexamples)", () => {
  it("reads a container list that is not one, or an image that is not a string, as no image (it threw)", () => {
    // JSON.parse, as the server reads it: "toString" is then an own key that is not a function.
    const odd = JSON.parse('[null, 1, "nginx", {}, {"image": 5}, {"image": ["nginx"]}, {"image": {"toString": 1}}, {"image": "redis:7"}]') as never;
    assert.deepEqual(templateImages({ containers: odd }), ["redis:7"]);
    assert.deepEqual(templateImages({ containers: 0 as never, initContainers: "nginx" as never }), []);
    const cronJob = { metadata: { name: "shop" }, spec: { jobTemplate: { spec: { template: { spec: { containers: 0 } } } } } };
    assert.deepEqual(decideMutation(request("CronJob", "batch", "CREATE", cronJob), NOW), { kind: "skip", reason: "no new images", warnings: [] });
  });

  it("asks for no patch when the metadata or annotations cannot take one (the patch did not apply)", () => {
    for (const [metadata, reason] of [
      [null, "the object has no metadata object"],
      ["x", "the object has no metadata object"],
      [{ name: "shop", annotations: "eb29ro-xxxx" }, "the object's annotations are not a map of strings"],
      [{ name: "shop", annotations: [["kube-prepull.io/hold", "true"]] }, "the object's annotations are not a map of strings"],
      [{ name: "shop", annotations: { "kube-prepull.io/hold": true } }, "the object's annotations are not a map of strings"],
    ] as const) {
      const decision = decideMutation(request("Deployment", "apps", "CREATE", deployment(metadata)), NOW);
      assert.equal(decision.kind === "skip" && decision.reason, reason, JSON.stringify(metadata));
    }
    // Absent or null annotations are fine: the patch adds the map.
    const object = deployment({ name: "shop", annotations: null });
    const decision = decideMutation(request("Deployment", "apps", "CREATE", object), NOW);
    assert.equal(decision.kind, "prepull");
    assert.ok(decision.kind === "prepull" && applyPatch(object, decision.patch));
  });

  it("holds a StatefulSet whose updateStrategy is not an object with a patch that applies", () => {
    const sts = (image: string): Record<string, unknown> => ({
      metadata: { name: "db", annotations: { "kube-prepull.io/hold": "true" } },
      spec: { replicas: 3, updateStrategy: "RollingUpdate", template: { spec: { containers: [{ name: "db", image }] } } },
    });
    const decision = decideMutation(request("StatefulSet", "apps", "UPDATE", sts("postgres:17"), sts("postgres:16")), NOW);
    assert.equal(decision.kind, "prepull");
    const held = applyPatch(sts("postgres:17"), decision.kind === "prepull" ? decision.patch : []) as { spec: { updateStrategy: unknown } };
    assert.deepEqual(held.spec.updateStrategy, { type: "RollingUpdate", rollingUpdate: { partition: 3 } });
  });

  it("reports an annotation value that is not a string instead of throwing on it", () => {
    const annotations = JSON.parse('{"kube-prepull.io/hold": {"toString": 1}, "kube-prepull.io/max-parallel": 5}') as Record<string, string>;
    const { settings, problems } = readSettings(annotations);
    assert.equal(settings.hold, false);
    assert.deepEqual(problems.map((p) => p.message), [
      'kube-prepull.io/hold: the value is not a string; allowed: "true" or "false"',
      "kube-prepull.io/max-parallel: the value is not a string; allowed: a whole number of nodes (such as \"10\") or a percentage from 1% to 100% (such as \"25%\")",
    ]);
    assert.deepEqual(readSettings("x" as never).problems, []);
    const decision = validateAnnotations(request("Deployment", "apps", "CREATE", deployment({ name: "shop", annotations })));
    assert.equal(decision.allowed, false);
    assert.match(!decision.allowed ? decision.message : "", /kube-prepull.io\/hold: the value is not a string/);
  });

  it("refuses a review whose kind has no string group (naming it threw)", () => {
    const group = JSON.parse('{"toString": {}}') as unknown;
    const parsed = parseReview({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "u", operation: "CREATE", kind: { group, version: "v1", kind: "StatefulSet" } } });
    assert.deepEqual(parsed, { ok: false, message: "request.kind is missing or has no string group and kind" });
  });
});

describe("admission on malformed objects (the full fuzz run's counterexample)", () => {
  it("holds a DaemonSet whose updateStrategy nests 10,000 deep, recording only the strategy's typed fields (held-by threw)", () => {
    const deep = JSON.parse('{"a":'.repeat(10_000) + "1" + "}".repeat(10_000)) as unknown;
    const ds = (image: string): Record<string, unknown> => ({
      metadata: { name: "agent", annotations: { "kube-prepull.io/hold": "true" } },
      spec: { selector: {}, updateStrategy: { a: deep, type: "RollingUpdate", rollingUpdate: { maxUnavailable: 2, maxSurge: deep } }, template: { spec: { containers: [{ name: "a", image }] } } },
    });
    const object = ds("agent:2");
    const decision = decideMutation(request("DaemonSet", "apps", "UPDATE", object, ds("agent:1")), NOW);
    assert.equal(decision.kind, "prepull");
    const heldBy = decision.kind === "prepull" ? decision.patch.find((op) => op.path.endsWith("held-by"))?.value : undefined;
    assert.match(String(heldBy), / \{"updateStrategy":\{"type":"RollingUpdate","rollingUpdate":\{"maxUnavailable":2\}\}\}$/);
  });
});
