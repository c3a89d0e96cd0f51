// Properties of the mutating webhook's decision (fast-check), for every workload kind: its patch
// applies (fast-json-patch, an independent RFC 6902 implementation), and admitting the patched
// object again — the apiserver's re-invocation, or a later write that changes no image — asks for
// nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decideMutation } from "../../../src/admission/mutation.js";
import type { AdmissionRequest } from "../../../src/admission/review.js";
import { WORKLOADS } from "../../../src/workloads/kinds.js";
import type { Workload } from "../../../src/workloads/workload.js";
import { applyPatch } from "../../support/apply-patch.js";

const T0 = Date.parse("2026-11-22T10:00:00Z");
const IMAGES = ["nginx", "nginx:latest", "docker.io/library/nginx:latest", "nginx:1.27", "redis:7", "registry.example.com/app:v1", "registry.example.com/app:v2",
  "registry.example.com/app@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c", "ghcr.io/team/sidecar:2"];

const podSpec = fc.record({
  containers: fc.array(fc.constantFrom(...IMAGES), { minLength: 1, maxLength: 3 }),
  initContainers: fc.array(fc.constantFrom(...IMAGES), { maxLength: 2 }),
}).map(({ containers, initContainers }) => ({
  containers: containers.map((image, i) => ({ name: `c${i}`, image })),
  ...(initContainers.length > 0 ? { initContainers: initContainers.map((image, i) => ({ name: `i${i}`, image })) } : {}),
}));

/** kube-prepull's user annotations (some malformed) and, sometimes, an older request it recorded. */
const annotations = fc.record({
  "kube-prepull.io/hold": fc.constantFrom(undefined, "true", "true", "false", "yes"),
  "kube-prepull.io/prepull": fc.constantFrom(undefined, undefined, undefined, "false", "true"),
  "kube-prepull.io/max-parallel": fc.constantFrom(undefined, "2", "25%", "lots"),
  "kube-prepull.io/request": fc.constantFrom(undefined, JSON.stringify({ id: "old000000000", images: ["nginx:1.26"], requestedAt: "2026-11-22T09:00:00.000Z", hold: true })),
}, { requiredKeys: [] }).map((a) => Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as Record<string, string>);

/** The kind's own spec fields that decide holds and skips, in the states users leave them in. */
const kindSpec = (workload: Workload): fc.Arbitrary<Record<string, unknown>> => {
  switch (workload.kind) {
    case "Deployment": return fc.record({ replicas: fc.constantFrom(0, 1, 3), paused: fc.constantFrom(undefined, false, true) }, { requiredKeys: ["replicas"] });
    case "StatefulSet": return fc.record({ replicas: fc.constantFrom(1, 3), updateStrategy: fc.constantFrom(undefined, { type: "RollingUpdate" }, { type: "RollingUpdate", rollingUpdate: { partition: 1 } }, { type: "RollingUpdate", rollingUpdate: { partition: 5 } }, { type: "OnDelete" }) }, { requiredKeys: ["replicas"] });
    case "DaemonSet": return fc.record({ updateStrategy: fc.constantFrom(undefined, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } }, { type: "OnDelete" }) }, { requiredKeys: [] });
    case "Job": return fc.record({ parallelism: fc.constantFrom(0, 1, 2), suspend: fc.constantFrom(undefined, true, false) }, { requiredKeys: [] });
    default: return fc.constant({});
  }
};

function objectOf(workload: Workload, spec: Record<string, unknown>, template: object, objectAnnotations: Record<string, string>, withAnnotations: boolean): Record<string, unknown> {
  const podTemplate = { metadata: { labels: { app: "shop" } }, spec: template };
  return {
    apiVersion: workload.group ? `${workload.group}/v1` : "v1",
    kind: workload.kind,
    metadata: { name: "shop", namespace: "shop", ...(withAnnotations ? { annotations: objectAnnotations } : {}) },
    spec: workload.kind === "CronJob" ? { schedule: "* * * * *", jobTemplate: { spec: { template: podTemplate } } } : { ...spec, template: podTemplate },
  };
}

const workloadNamed = (kind: string): Workload => WORKLOADS.find((w) => w.kind === kind)!;

// By kind name: a counterexample then prints the name, not the adapter's functions.
const writes = fc.constantFrom(...WORKLOADS.map((w) => w.kind)).chain((kind) => fc.record({
  kind: fc.constant(kind),
  operation: fc.constantFrom<"CREATE" | "UPDATE">("CREATE", "UPDATE"),
  spec: kindSpec(workloadNamed(kind)),
  before: podSpec,
  after: podSpec,
  annotations,
  withAnnotations: fc.boolean(),
}));

const request = (workload: Workload, operation: "CREATE" | "UPDATE", object: unknown, oldObject: unknown): AdmissionRequest => ({
  uid: "u", kind: { group: workload.group, version: workload.version, kind: workload.kind }, operation, namespace: "shop", name: "shop", object,
  ...(operation === "UPDATE" ? { oldObject } : {}),
});

describe("mutating webhook decision (properties, every kind)", () => {
  it("asks for nothing when the object it patched is admitted again", () => {
    let prepulls = 0;
    fc.assert(fc.property(writes, fc.integer({ min: 1, max: 3600 }), ({ kind, operation, spec, before, after, annotations: a, withAnnotations }, later) => {
      const workload = workloadNamed(kind);
      const old = objectOf(workload, spec, before, a, withAnnotations);
      const object = objectOf(workload, spec, after, a, withAnnotations);
      const first = decideMutation(request(workload, operation, object, old), new Date(T0));
      if (first.kind !== "prepull") return;
      prepulls++;
      const patched = applyPatch(object, first.patch); // throws when an operation does not apply
      // Re-invocation (reinvocationPolicy: IfNeeded): the same write, our patch applied.
      const again = decideMutation(request(workload, operation, patched, old), new Date(T0 + later * 1000));
      assert.equal(again.kind, "skip", `re-invoked: ${JSON.stringify(again)}`);
      // A later write that changes no image (a scale, a label): nothing either.
      const next = decideMutation(request(workload, "UPDATE", patched, patched), new Date(T0 + later * 1000));
      assert.equal(next.kind, "skip", `written again: ${JSON.stringify(next)}`);
    }), { numRuns: 3000 });
    assert.ok(prepulls > 500, `only ${prepulls} of the writes asked for a prepull`);
  });
});
