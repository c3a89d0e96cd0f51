import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Deployment } from "@kubernetes/client-node";
import { decideMutation } from "../../../src/admission/mutation.js";
import type { AdmissionRequest } from "../../../src/admission/review.js";
import { decodeRequest } from "../../../src/prepull/request.js";
import { applyPatch } from "../../support/apply-patch.js";

const NOW = new Date("2026-11-22T10:00:00Z");

function deployment(options: {
  images?: string[];
  initImages?: string[];
  annotations?: Record<string, string>;
  replicas?: number;
  paused?: boolean;
} = {}): V1Deployment {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "team", ...(options.annotations ? { annotations: options.annotations } : {}) },
    spec: {
      replicas: options.replicas ?? 2,
      ...(options.paused !== undefined ? { paused: options.paused } : {}),
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          initContainers: (options.initImages ?? []).map((image, i) => ({ name: `init-${i}`, image })),
          containers: (options.images ?? ["nginx:1.27"]).map((image, i) => ({ name: `c-${i}`, image })),
        },
      },
    },
  };
}

function admission(operation: "CREATE" | "UPDATE", object: V1Deployment, oldObject?: V1Deployment, dryRun = false): AdmissionRequest {
  return {
    uid: "u-1",
    kind: { group: "apps", version: "v1", kind: "Deployment" },
    operation,
    namespace: "team",
    name: "web",
    object,
    ...(oldObject ? { oldObject } : {}),
    dryRun,
  };
}

function apply(object: V1Deployment, operation: "CREATE" | "UPDATE", old?: V1Deployment, dryRun = false): { decision: ReturnType<typeof decideMutation>; result: V1Deployment } {
  const decision = decideMutation(admission(operation, object, old, dryRun), NOW);
  const result = decision.kind === "prepull" ? applyPatch(object, decision.patch) : object;
  return { decision, result };
}

const ann = (d: V1Deployment, key: string): string | undefined => d.metadata?.annotations?.[`kube-prepull.io/${key}`];

describe("mutating webhook decision for Deployments", () => {
  it("records every image of a created Deployment, init containers included, without holding", () => {
    const { decision, result } = apply(deployment({ images: ["nginx:1.27", "redis:7"], initImages: ["busybox"] }), "CREATE");
    assert.equal(decision.kind, "prepull");
    const request = decodeRequest(ann(result, "request"));
    assert.deepEqual(request?.images, ["busybox", "nginx:1.27", "redis:7"]);
    assert.equal(request?.requestedAt, NOW.toISOString());
    assert.equal(request?.hold, false);
    assert.equal(result.spec?.paused, undefined, "not paused without the hold annotation");
    assert.equal(ann(result, "held-by"), undefined);
  });

  it("holds with spec.paused and held-by in the same write when asked", () => {
    const { result } = apply(deployment({ annotations: { "kube-prepull.io/hold": "true" } }), "CREATE");
    const request = decodeRequest(ann(result, "request"));
    assert.equal(result.spec?.paused, true);
    assert.equal(ann(result, "held-by"), request?.id);
    assert.equal(request?.hold, true);
    assert.equal(ann(result, "hold"), "true", "the user's annotations are kept");
  });

  it("prepulls only the images an update adds, compared after normalisation", () => {
    const old = deployment({ images: ["nginx:1.27", "docker.io/library/redis:7"] });
    const updated = deployment({ images: ["docker.io/library/nginx:1.27", "redis:7", "ghcr.io/team/sidecar:2"] });
    const { result } = apply(updated, "UPDATE", old);
    assert.deepEqual(decodeRequest(ann(result, "request"))?.images, ["ghcr.io/team/sidecar:2"]);
  });

  it("counts a new init container image as new", () => {
    const old = deployment({ initImages: ["busybox:1.36"] });
    const { result } = apply(deployment({ initImages: ["busybox:1.37"] }), "UPDATE", old);
    assert.deepEqual(decodeRequest(ann(result, "request"))?.images, ["busybox:1.37"]);
  });

  const skips: Array<[string, V1Deployment, V1Deployment | undefined, string]> = [
    ["an update that changes no image (scale)", deployment({ replicas: 5 }), deployment({ replicas: 2 }), "no new images"],
    ["a rollout restart (template annotation only)", (() => {
      const d = deployment();
      d.spec!.template.metadata!.annotations = { "kubectl.kubernetes.io/restartedAt": "now" };
      return d;
    })(), deployment(), "no new images"],
    ["the same image written another way", deployment({ images: ["docker.io/library/nginx:1.27"] }), deployment({ images: ["nginx:1.27"] }), "no new images"],
    ["replicas: 0", deployment({ replicas: 0 }), undefined, "replicas is 0"],
    ["prepull: \"false\"", deployment({ annotations: { "kube-prepull.io/prepull": "false" } }), undefined, "prepull disabled by annotation"],
  ];
  for (const [name, object, old, reason] of skips) {
    it(`does nothing for ${name}`, () => {
      const decision = decideMutation(admission(old ? "UPDATE" : "CREATE", object, old), NOW);
      assert.equal(decision.kind, "skip");
      assert.equal(decision.kind === "skip" && decision.reason, reason);
    });
  }

  it("decides a dry run exactly as the real request", () => {
    const object = deployment({ annotations: { "kube-prepull.io/hold": "true" } });
    const real = decideMutation(admission("CREATE", object, undefined, false), NOW);
    const dry = decideMutation(admission("CREATE", object, undefined, true), NOW);
    assert.deepEqual(dry, real);
  });

  it("never holds a Deployment its user paused, and says so", () => {
    const { decision, result } = apply(
      deployment({ paused: true, annotations: { "kube-prepull.io/hold": "true" } }), "CREATE");
    assert.equal(decision.kind, "prepull");
    assert.equal(ann(result, "held-by"), undefined);
    assert.equal(decodeRequest(ann(result, "request"))?.hold, false);
    assert.match(decision.warnings.join("\n"), /paused by its user/);
  });

  it("moves its own hold to a newer request when the images change again while held", () => {
    const first = apply(deployment({ annotations: { "kube-prepull.io/hold": "true" } }), "CREATE").result;
    const changed = structuredClone(first);
    changed.spec!.template.spec!.containers[0]!.image = "nginx:1.28";
    const { result } = apply(changed, "UPDATE", first);
    const request = decodeRequest(ann(result, "request"));
    assert.deepEqual(request?.images, ["nginx:1.28"]);
    assert.equal(ann(result, "held-by"), request?.id);
    assert.notEqual(request?.id, decodeRequest(ann(first, "request"))?.id);
    assert.equal(result.spec?.paused, true);
  });

  it("is idempotent when re-invoked on its own patched object", () => {
    const object = deployment({ annotations: { "kube-prepull.io/hold": "true" } });
    const once = apply(object, "CREATE").result;
    const again = decideMutation(admission("CREATE", once), new Date(NOW.getTime() + 1000));
    assert.equal(again.kind, "skip");
  });

  it("adds the annotations map when the Deployment has none", () => {
    const object = deployment();
    assert.equal(object.metadata?.annotations, undefined);
    const { decision, result } = apply(object, "CREATE");
    assert.equal(decision.kind === "prepull" && decision.patch[0]?.path, "/metadata/annotations");
    assert.ok(ann(result, "request"));
  });

  it("warns about a malformed value and uses the default", () => {
    const { decision, result } = apply(deployment({ annotations: { "kube-prepull.io/hold": "yes" } }), "CREATE");
    assert.match(decision.warnings.join("\n"), /kube-prepull.io\/hold: invalid value "yes"/);
    assert.equal(result.spec?.paused, undefined, "hold defaults to false");
  });

  it("ignores other kinds", () => {
    const request = { ...admission("CREATE", deployment()), kind: { group: "", version: "v1", kind: "Pod" } };
    assert.equal(decideMutation(request, NOW).kind, "skip");
  });
});
