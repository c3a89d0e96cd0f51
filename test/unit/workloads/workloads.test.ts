// The workload adapters through the mutating webhook's decision, and held-by's encoding.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { validateAnnotations } from "../../../src/admission/annotation-validation.js";
import { decideMutation } from "../../../src/admission/mutation.js";
import type { AdmissionRequest, JsonPatchOperation } from "../../../src/admission/review.js";
import { cronJobWorkload } from "../../../src/workloads/cronjob.js";
import { daemonSetWorkload } from "../../../src/workloads/daemonset.js";
import { jobWorkload } from "../../../src/workloads/job.js";
import { ownerWorkload, WORKLOADS } from "../../../src/workloads/kinds.js";
import { statefulSetWorkload } from "../../../src/workloads/statefulset.js";
import { decodeHeldBy, encodeHeldBy, parseWorkloadKey, workloadKey } from "../../../src/workloads/workload.js";

const NOW = new Date("2026-12-02T10:00:00Z");
const HOLD = { "kube-prepull.io/hold": "true" };
const tpl = (image: string): k8s.V1PodTemplateSpec => ({ spec: { containers: [{ name: "c", image }] } });

function review(group: string, kind: string, operation: "CREATE" | "UPDATE", object: object, oldObject?: object): AdmissionRequest {
  return { uid: "u", kind: { group, version: "v1", kind }, operation, object, ...(oldObject ? { oldObject } : {}) };
}
const patchOf = (r: ReturnType<typeof decideMutation>): JsonPatchOperation[] => (r.kind === "prepull" ? r.patch : []);
const heldByOf = (patch: JsonPatchOperation[]): string | undefined => patch.find((p) => p.path.endsWith("held-by"))?.value as string | undefined;

describe("workload adapters", () => {
  it("StatefulSet: CREATE is not held; an UPDATE is held by partition = replicas, recording the user's partition", () => {
    const sts = (image: string, partition: number): k8s.V1StatefulSet => ({
      metadata: { name: "db", annotations: HOLD },
      spec: { replicas: 3, serviceName: "db", selector: {}, template: tpl(image), updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition } } },
    });
    const created = decideMutation(review("apps", "StatefulSet", "CREATE", sts("db:1", 0)), NOW);
    assert.equal(created.kind === "prepull" && created.hold, false);
    assert.match(created.warnings.join(), /first pods cannot be held/);
    const updated = decideMutation(review("apps", "StatefulSet", "UPDATE", sts("db:2", 1), sts("db:1", 1)), NOW);
    const patch = patchOf(updated);
    assert.deepEqual(patch.find((p) => p.path === "/spec/updateStrategy/rollingUpdate")?.value, { partition: 3 });
    const heldBy = decodeHeldBy(heldByOf(patch))!;
    assert.deepEqual(heldBy.restore, { partition: 1, held: 3 });
    const held = sts("db:2", 3);
    assert.equal(statefulSetWorkload.isHeld(held, heldBy), true);
    assert.equal(statefulSetWorkload.isHeld(sts("db:2", 2), heldBy), false, "the user changed the partition");
    assert.deepEqual(statefulSetWorkload.release(held, heldBy), [{ op: "replace", path: "/spec/updateStrategy/rollingUpdate/partition", value: 1 }]);
  });

  it("StatefulSet: a newer image change while held keeps the user's partition, not kube-prepull's", () => {
    const first = { request: "r1", restore: { partition: 0, held: 2 } };
    const old: k8s.V1StatefulSet = { metadata: { annotations: { ...HOLD, "kube-prepull.io/held-by": encodeHeldBy(first) } }, spec: { replicas: 2, serviceName: "s", selector: {}, template: tpl("a:2"), updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 2 } } } };
    const next = { ...old, spec: { ...old.spec!, template: tpl("a:3") } };
    const heldBy = decodeHeldBy(heldByOf(patchOf(decideMutation(review("apps", "StatefulSet", "UPDATE", next, old), NOW))))!;
    assert.deepEqual(heldBy.restore, { partition: 0, held: 2 });
  });

  it("DaemonSet: an UPDATE is held by OnDelete and the release restores the whole strategy", () => {
    const strategy = { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 2, maxSurge: 0 } };
    const ds = (image: string): k8s.V1DaemonSet => ({ metadata: { annotations: HOLD }, spec: { selector: {}, template: tpl(image), updateStrategy: strategy } });
    const patch = patchOf(decideMutation(review("apps", "DaemonSet", "UPDATE", ds("agent:2"), ds("agent:1")), NOW));
    assert.deepEqual(patch.find((p) => p.path === "/spec/updateStrategy")?.value, { type: "OnDelete" });
    const heldBy = decodeHeldBy(heldByOf(patch))!;
    assert.deepEqual(daemonSetWorkload.release(ds("agent:2"), heldBy), [{ op: "replace", path: "/spec/updateStrategy", value: strategy }]);
  });

  it("Job: CREATE is held by suspend unless its user suspended it; UPDATE and CronJob-owned Jobs are skipped", () => {
    const job = (suspend?: boolean, owners?: k8s.V1OwnerReference[]): k8s.V1Job => ({ metadata: { annotations: HOLD, ...(owners ? { ownerReferences: owners } : {}) }, spec: { ...(suspend ? { suspend } : {}), template: tpl("j:1") } });
    assert.deepEqual(patchOf(decideMutation(review("batch", "Job", "CREATE", job()), NOW)).at(-1), { op: "add", path: "/spec/suspend", value: true });
    const userSuspended = decideMutation(review("batch", "Job", "CREATE", job(true)), NOW);
    assert.equal(userSuspended.kind === "prepull" && userSuspended.hold, false);
    assert.equal(decideMutation(review("batch", "Job", "UPDATE", job(), job()), NOW).kind, "skip");
    const owned = job(false, [{ apiVersion: "batch/v1", kind: "CronJob", name: "c", uid: "u", controller: true }]);
    assert.equal(decideMutation(review("batch", "Job", "CREATE", owned), NOW).kind, "skip");
    assert.equal(jobWorkload.rolloutComplete({ spec: { template: {} }, status: { ready: 1 } }), true);
    assert.equal(jobWorkload.rolloutComplete({ spec: { template: {}, suspend: true }, status: { ready: 1 } }), false);
  });

  it("CronJob: the job template's images are prepulled; hold is refused by the validating webhook", () => {
    const cj = (image: string, annotations = {}): k8s.V1CronJob => ({ metadata: { annotations }, spec: { schedule: "* * * * *", jobTemplate: { spec: { template: tpl(image) } } } });
    const decision = decideMutation(review("batch", "CronJob", "UPDATE", cj("r:2"), cj("r:1")), NOW);
    assert.deepEqual(decision.kind === "prepull" && decision.request.images, ["r:2"]);
    const refused = validateAnnotations(review("batch", "CronJob", "CREATE", cj("r:1", HOLD)));
    assert.equal(refused.allowed, false);
    assert.equal(validateAnnotations(review("batch", "CronJob", "UPDATE", cj("r:2", HOLD), cj("r:1", HOLD))).allowed, true, "already there before this write");
    assert.equal(cronJobWorkload.rolloutComplete(cj("r:1")), false);
  });

  it("held-by round-trips, with and without restore values; keys carry the kind", () => {
    assert.deepEqual(decodeHeldBy("abc"), { request: "abc" });
    const heldBy = { request: "abc", restore: { partition: 2 } };
    assert.deepEqual(decodeHeldBy(encodeHeldBy(heldBy)), heldBy);
    assert.deepEqual(decodeHeldBy("abc not-json"), { request: "abc" });
    assert.deepEqual(parseWorkloadKey(workloadKey("StatefulSet", "ns", "db")), { kind: "StatefulSet", namespace: "ns", name: "db" });
    assert.equal(parseWorkloadKey("keep-warm:list"), undefined);
    for (const w of WORKLOADS) {
      const found = ownerWorkload({ metadata: { ownerReferences: [{ apiVersion: `${w.group}/v1`, kind: w.kind, name: "n", uid: "u" }] } });
      assert.equal(found?.workload, w);
    }
  });
});
