// The admission HTTP edge, over a real loopback socket: every bad input gets a clear 4xx.
import assert from "node:assert/strict";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { createAdmissionApp } from "../../../src/server/admission-app.js";
import { createMetrics } from "../../../src/observability/metrics.js";

const NOW = new Date("2026-11-22T10:00:00Z");
let server: http.Server;
let base: string;
const metrics = createMetrics({ defaultMetrics: false });

before(async () => {
  server = http.createServer(createAdmissionApp({ log: pino({ level: "silent" }), metrics, now: () => NOW }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

async function post(path: string, body: string, contentType = "application/json"): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(base + path, { method: "POST", body, headers: { "Content-Type": contentType } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function review(request: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request });
}

const deployment = (annotations: Record<string, string> = {}): Record<string, unknown> => ({
  metadata: { name: "web", annotations },
  spec: { replicas: 1, template: { spec: { containers: [{ name: "c", image: "nginx:1.27" }] } } },
});

const request = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  uid: "abc-123",
  kind: { group: "apps", version: "v1", kind: "Deployment" },
  operation: "CREATE",
  namespace: "team",
  name: "web",
  object: deployment({ "kube-prepull.io/hold": "true" }),
  ...extra,
});

describe("admission HTTP edge", () => {
  it("answers a Deployment CREATE with the uid and a base64 JSON patch", async () => {
    const { status, json } = await post("/mutate/deployments", review(request()));
    assert.equal(status, 200);
    assert.equal(json.apiVersion, "admission.k8s.io/v1");
    const response = json.response as { uid: string; allowed: boolean; patchType: string; patch: string };
    assert.equal(response.uid, "abc-123");
    assert.equal(response.allowed, true);
    assert.equal(response.patchType, "JSONPatch");
    const ops = JSON.parse(Buffer.from(response.patch, "base64").toString()) as Array<{ path: string; value: unknown }>;
    assert.deepEqual(ops.map((o) => o.path), [
      "/metadata/annotations/kube-prepull.io~1request",
      "/metadata/annotations/kube-prepull.io~1held-by",
      "/spec/paused",
    ]);
  });

  it("denies a malformed annotation on the validating path, naming key and allowed values", async () => {
    const { status, json } = await post("/validate/deployments",
      review(request({ object: deployment({ "kube-prepull.io/max-parallel": "lots" }) })));
    assert.equal(status, 200);
    const response = json.response as { allowed: boolean; status: { code: number; message: string } };
    assert.equal(response.allowed, false);
    assert.equal(response.status.code, 422);
    assert.match(response.status.message, /kube-prepull.io\/max-parallel: invalid value "lots"; allowed: a whole number/);
  });

  it("allows a write that does not touch an annotation that was already malformed", async () => {
    const bad = deployment({ "kube-prepull.io/nodes": "some" });
    const { json } = await post("/validate/deployments", review(request({ operation: "UPDATE", object: bad, oldObject: bad })));
    assert.equal((json.response as { allowed: boolean }).allowed, true);
  });

  const bad: Array<[string, string, string, number, RegExp]> = [
    ["a wrong content type", review(request()), "text/plain", 415, /application\/json, got text\/plain/],
    ["a JSON body sent as form data", review(request()), "application/x-www-form-urlencoded", 415, /application\/json/],
    ["an empty body", "", "application/json", 400, /malformed AdmissionReview/],
    ["invalid JSON", "{not json", "application/json", 400, /invalid JSON/],
    ["a JSON array", "[]", "application/json", 400, /not a JSON object/],
    ["a review without request.uid", review(request({ uid: undefined })), "application/json", 400, /request.uid is missing/],
    ["the wrong apiVersion", JSON.stringify({ apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: request() }), "application/json", 400, /expected apiVersion admission.k8s.io\/v1/],
    ["an unknown operation", review(request({ operation: "PATCH" })), "application/json", 400, /operation must be one of/],
  ];
  for (const [name, body, type, code, message] of bad) {
    it(`answers ${code} to ${name}`, async () => {
      const { status, json } = await post("/mutate/deployments", body, type);
      assert.equal(status, code);
      assert.match(String(json.error), message);
    });
  }

  it("answers 400, not 415, to a JSON request that carries no body at all", async () => {
    // fetch always sends a Content-Length; without one (and without chunking) there is no body.
    const { port } = server.address() as AddressInfo;
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () =>
        socket.write("POST /mutate/deployments HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"));
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    assert.match(raw, /^HTTP\/1\.1 400 /);
    assert.match(raw, /the request has no body/);
  });

  it("answers 413 to a body over the limit and keeps serving", async () => {
    const huge = review(request({ object: { metadata: { annotations: { big: "x".repeat(9 * 1024 * 1024) } } } }));
    const { status, json } = await post("/mutate/deployments", huge);
    assert.equal(status, 413);
    assert.match(String(json.error), /larger than 8mb/);
    assert.equal((await post("/mutate/deployments", review(request()))).status, 200);
  });

  it("accepts a realistic review of several MiB", async () => {
    const object = deployment();
    (object.metadata as Record<string, unknown>).managedFields = [{ manager: "x", fieldsV1: { blob: "y".repeat(3 * 1024 * 1024) } }];
    const { status } = await post("/mutate/deployments", review(request({ object })));
    assert.equal(status, 200);
  });

  it("answers 404 with the admission paths elsewhere", async () => {
    const { status, json } = await post("/mutate/pods", review(request()));
    assert.equal(status, 404);
    assert.match(String(json.error), /\/mutate\/deployments/);
  });

  it("counts admissions by decision", async () => {
    const text = await metrics.registry.metrics();
    assert.match(text, /kube_prepull_admissions_total\{webhook="mutate",decision="prepull-hold"\} [1-9]/);
    assert.match(text, /kube_prepull_admission_duration_seconds_bucket\{/);
  });
});
