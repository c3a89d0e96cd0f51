// A hung kube-prepull costs a workload write at most its webhooks' timeouts (issue 15 item 4,
// docs/architecture.md#webhook-timeouts): `serve` runs as a child process and is stopped with
// SIGSTOP — its port still accepts connections, nothing answers — and every Deployment write in
// the namespace it covers is timed around the API call, as a user's `kubectl apply` waits. The
// bound is the product's behaviour under fixed timeouts (2 s + 1 s), not a speed benchmark: the
// assertion keeps a margin (≤ 4 s). After SIGCONT, admission works as before.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { SYSTEM_ANNOTATIONS } from "../../src/prepull/annotations.js";
import { WEBHOOK_TIMEOUT_SECONDS } from "../../src/admission/webhook-configuration.js";
import { apiErrorMessage, createNamespace, kubectl, scopeWebhooksTo, testKubeConfig, testKubeconfigPath, waitForPrepullWebhook } from "../support/cluster.js";
import { startReplica, stopReplicas, type Replica } from "../support/replicas.js";

const kc = testKubeConfig();
const apps = kc.makeApiClient(k8s.AppsV1Api);
const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
const jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
const WEBHOOK = `kube-prepull-hung-${process.pid}`;
/** What a write may cost with kube-prepull hung: the 3 s its timeouts allow, plus a margin for a busy machine. */
const BOUND_MS = 4000;

function deployment(name: string, image: string, annotations: Record<string, string> = {}): k8s.V1Deployment {
  return {
    metadata: { name, annotations },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image }] } },
    },
  };
}

/** Wall-clock time of one API call, in ms, and its answer. */
async function timed<T>(call: () => Promise<T>): Promise<{ ms: number; answer: T }> {
  const start = performance.now();
  const answer = await call();
  return { ms: performance.now() - start, answer };
}

const hasRequest = (d: k8s.V1Deployment): boolean => d.metadata?.annotations?.[SYSTEM_ANNOTATIONS.request] !== undefined;

describe("a hung kube-prepull (SIGSTOP)", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let replica: Replica | undefined;
  const timings: string[] = [];

  before(async () => {
    ns = await createNamespace(kc, "hung");
    replica = await startReplica("hung", ["--kubeconfig", testKubeconfigPath(), "--register", "--webhook-name", WEBHOOK, "--no-leader-elect", "--log-level", "warn"]);
    await scopeWebhooksTo(kc, WEBHOOK, ns.name);
    await waitForPrepullWebhook(apps, ns.name);
  });
  after(async () => {
    if (replica) {
      replica.child.kill("SIGCONT");
      await stopReplicas([replica]);
    }
    // `serve --register` leaves its configurations (a restart keeps admission): remove them.
    await kubectl(["delete", "--ignore-not-found", "mutatingwebhookconfiguration,validatingwebhookconfiguration", WEBHOOK]).catch(() => undefined);
    await ns.remove();
    console.log(`write latency with serve stopped: ${timings.join("; ")}`);
  });

  it("registers the timeouts the docs give: 2 s mutating, 1 s validating, the validating one only for kube-prepull.io/ annotations", async () => {
    const mutating = await admission.readMutatingWebhookConfiguration({ name: WEBHOOK });
    const validating = await admission.readValidatingWebhookConfiguration({ name: WEBHOOK });
    assert.deepEqual(WEBHOOK_TIMEOUT_SECONDS, { mutating: 2, validating: 1 });
    assert.ok(mutating.webhooks!.every((w) => w.timeoutSeconds === 2 && w.failurePolicy === "Ignore"));
    assert.ok(validating.webhooks!.every((w) => w.timeoutSeconds === 1 && w.failurePolicy === "Ignore"));
  });

  it("costs every Deployment write at most its timeouts while stopped, and admission works again after SIGCONT", async () => {
    const namespace = ns.name;
    const writes: Array<{ what: string; call: () => Promise<k8s.V1Deployment> }> = [
      // CREATE: the mutating webhook (2 s); no kube-prepull.io/ annotation, so not the validating one.
      { what: "create", call: () => apps.createNamespacedDeployment({ namespace, body: deployment("plain", "example.com/web:1") }) },
      // CREATE with hold: both (2 s + 1 s), the worst a write can cost.
      { what: "create with hold", call: () => apps.createNamespacedDeployment({ namespace, body: deployment("held", "example.com/web:1", { "kube-prepull.io/hold": "true" }) }) },
      // An image change: the mutating webhook.
      { what: "image update", call: () => apps.patchNamespacedDeployment({ namespace, name: "plain", body: [{ op: "replace", path: "/spec/template/spec/containers/0/image", value: "example.com/web:2" }] }, jsonPatch) },
      // A kube-prepull.io/ annotation change only: the validating webhook.
      { what: "annotation update", call: () => apps.patchNamespacedDeployment({ namespace, name: "held", body: [{ op: "replace", path: "/metadata/annotations/kube-prepull.io~1hold", value: "false" }] }, jsonPatch) },
      // Both at once, on an existing object.
      { what: "image + hold update", call: () => apps.patchNamespacedDeployment({ namespace, name: "plain", body: [
        { op: "replace", path: "/spec/template/spec/containers/0/image", value: "example.com/web:3" },
        { op: "add", path: "/metadata/annotations", value: { "kube-prepull.io/hold": "true" } },
      ] }, jsonPatch) },
    ];
    replica!.child.kill("SIGSTOP");
    try {
      for (const write of writes) {
        const { ms, answer } = await timed(write.call);
        timings.push(`${write.what} ${(ms / 1000).toFixed(2)} s`);
        assert.ok(ms <= BOUND_MS, `${write.what} took ${Math.round(ms)} ms with kube-prepull hung (bound ${BOUND_MS} ms)`);
        // The write went through without kube-prepull's answer (failurePolicy Ignore).
        assert.ok(!hasRequest(answer), `${write.what}: no request recorded while serve is stopped`);
      }
    } finally {
      replica!.child.kill("SIGCONT");
    }

    const held = await apps.createNamespacedDeployment({ namespace, body: deployment("after", "example.com/web:1", { "kube-prepull.io/hold": "true" }) });
    assert.ok(hasRequest(held), "the mutating webhook answers again");
    assert.equal(held.spec!.paused, true, "and holds the rollout");
    const denied = await apps.patchNamespacedDeployment({ namespace, name: "after", body: [{ op: "replace", path: "/metadata/annotations/kube-prepull.io~1hold", value: "yes" }] }, jsonPatch)
      .then(() => undefined, (e: unknown) => e);
    assert.ok(denied, "the validating webhook answers again");
    assert.match(apiErrorMessage(denied), /kube-prepull\.io\/hold: invalid value "yes"/);
  });
});
