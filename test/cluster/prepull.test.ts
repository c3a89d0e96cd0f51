// kube-prepull end to end on the local cluster: the real apiserver calls the webhook over TLS, the
// real deployment and DaemonSet controllers act, kwok plays the nodes (spec §3–§4).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import type { RunningServe } from "../../src/serve.js";
import { decodeRequest } from "../../src/prepull/request.js";
import { decodeStatus } from "../../src/prepull/progress.js";
import { prepullDaemonSetName } from "../../src/prepull/daemonset.js";
import { apiErrorMessage, createNamespace, kubectl, startTestServe, testKubeConfig, TEST_HELPER_IMAGE as HELPER, waitForPrepullWebhook, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);

function deployment(name: string, images: string[], annotations: Record<string, string> = {}, replicas = 2): k8s.V1Deployment {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, annotations },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) },
      },
    },
  };
}

const ann = (d: k8s.V1Deployment, key: string): string | undefined => d.metadata?.annotations?.[`kube-prepull.io/${key}`];

async function events(namespace: string, name: string): Promise<k8s.CoreV1Event[]> {
  const list = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name},involvedObject.kind=Deployment` });
  return list.items;
}

describe("kube-prepull on the local cluster", () => {
  let serve: RunningServe;
  let ns: { name: string; remove: () => Promise<void> };
  let nodeCount: number;

  before(async () => {
    nodeCount = (await core.listNode({ labelSelector: "type=kwok" })).items.length;
    ns = await createNamespace(kc, "prepull", { "kube-prepull.io/enabled": "true" });
    serve = await startTestServe({ name: `kube-prepull-test-${process.pid}`, pullDelay: "2s" });
    await waitForPrepullWebhook(apps, ns.name);
  });

  after(async () => {
    await serve?.stop();
    await ns?.remove();
  });

  it("holds a rollout until the new images are on every node, then releases it", async () => {
    const images = ["example.com/team/web:1.0", "example.com/team/sidecar:2.1"];
    const created = await apps.createNamespacedDeployment({
      namespace: ns.name,
      body: deployment("held", images, { "kube-prepull.io/hold": "true" }),
    });
    // The hold is set by the mutating webhook in the same write.
    const request = decodeRequest(ann(created, "request"));
    assert.deepEqual(request?.images, images);
    assert.equal(created.spec?.paused, true);
    assert.equal(ann(created, "held-by"), request?.id);

    const dsName = prepullDaemonSetName("held", images);
    const ds = await waitUntil(() => apps.readNamespacedDaemonSet({ name: dsName, namespace: ns.name }).catch(() => undefined),
      { what: `daemonset/${dsName}` });
    assert.equal(ds.metadata?.ownerReferences?.[0]?.uid, created.metadata?.uid);
    assert.equal(ds.metadata?.labels?.["app.kubernetes.io/managed-by"], "kube-prepull");
    assert.equal(ds.metadata?.labels?.["kube-prepull.io/deployment"], "held");
    assert.deepEqual(ds.spec?.template.spec?.initContainers?.map((c) => c.image), [HELPER, ...images]);
    const rsWhileHeld = await apps.listNamespacedReplicaSet({ namespace: ns.name, labelSelector: "app=held" });
    assert.equal(rsWhileHeld.items.length, 0, "no ReplicaSet while the images are pulled");

    const released = await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "held", namespace: ns.name });
      return d.spec?.paused !== true ? d : undefined;
    }, { what: "the hold to be released", timeoutMs: 90_000 });
    assert.equal(ann(released, "held-by"), undefined);
    const status = decodeStatus(ann(released, "status"));
    assert.equal(status?.phase, "Succeeded");
    assert.deepEqual(status?.nodes, { desired: nodeCount, pulled: nodeCount, failed: 0, skipped: 0 });

    // The rollout then completes, and the DaemonSet is deleted once it has.
    await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "held", namespace: ns.name });
      return d.status?.availableReplicas === 2 ? d : undefined;
    }, { what: "the rollout to complete", timeoutMs: 90_000 });
    await waitUntil(async () => {
      const list = await apps.listNamespacedDaemonSet({ namespace: ns.name, labelSelector: "kube-prepull.io/deployment=held" });
      return list.items.length === 0;
    }, { what: "the prepull DaemonSet to be deleted after the rollout" });
    const reasons = (await events(ns.name, "held")).map((e) => e.reason);
    for (const reason of ["PrepullStarted", "PrepullSucceeded", "HoldReleased"]) assert.ok(reasons.includes(reason), `event ${reason} in ${reasons.join(",")}`);
  });

  it("does nothing for a server-side dry run, which still shows the mutation", async () => {
    const manifest = JSON.stringify({ ...deployment("dry", ["example.com/dry:1"], { "kube-prepull.io/hold": "true" }), metadata: { name: "dry", namespace: ns.name, annotations: { "kube-prepull.io/hold": "true" } } });
    const { stdout } = await kubectl(["apply", "--dry-run=server", "-o", "json", "-f", "-"], manifest);
    const shown = JSON.parse(stdout) as k8s.V1Deployment;
    assert.equal(shown.spec?.paused, true, "the dry run shows what the real write would do");
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const dss = await apps.listNamespacedDaemonSet({ namespace: ns.name, labelSelector: "kube-prepull.io/deployment=dry" });
    assert.equal(dss.items.length, 0, "no DaemonSet");
    await assert.rejects(apps.readNamespacedDeployment({ name: "dry", namespace: ns.name }), (e: { code?: number }) => e.code === 404);
  });

  it("fails a prepull whose image cannot be pulled, with per-node reasons, and releases the hold", async () => {
    await apps.createNamespacedDeployment({
      namespace: ns.name,
      body: deployment("broken", ["registry.invalid/team/app:1"], { "kube-prepull.io/hold": "true" }, 1),
    });
    const released = await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "broken", namespace: ns.name });
      return d.spec?.paused !== true ? d : undefined;
    }, { what: "the failed prepull to release the hold", timeoutMs: 90_000 });
    const status = decodeStatus(ann(released, "status"));
    assert.equal(status?.phase, "Failed");
    assert.equal(status?.nodes.failed, nodeCount);
    assert.match(status?.message ?? "", /(ErrImagePull|ImagePullBackOff) on \d+ nodes? \(kwok-node-/);
    const failed = (await events(ns.name, "broken")).find((e) => e.reason === "PrepullFailed");
    assert.equal(failed?.type, "Warning");
    assert.match(failed?.message ?? "", /registry\.invalid\/team\/app:1/);
  });

  it("leaves Deployments alone in namespaces that did not opt in", async () => {
    const other = await createNamespace(kc, "not-opted-in");
    try {
      const created = await apps.createNamespacedDeployment({
        namespace: other.name,
        body: deployment("plain", ["example.com/plain:1"], { "kube-prepull.io/hold": "true" }),
      });
      assert.equal(ann(created, "request"), undefined);
      assert.notEqual(created.spec?.paused, true);
    } finally {
      await other.remove();
    }
  });

  it("prepulls only images an update adds, and nothing for an update without new images", async () => {
    const first = await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("updated", ["nginx:1.27"]) });
    const firstRequest = decodeRequest(ann(first, "request"));
    assert.deepEqual(firstRequest?.images, ["nginx:1.27"]);
    const scaled = await apps.patchNamespacedDeployment(
      { name: "updated", namespace: ns.name, body: { spec: { replicas: 3 } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    assert.equal(decodeRequest(ann(scaled, "request"))?.id, firstRequest?.id, "scaling records nothing new");
    const sameImage = await apps.patchNamespacedDeployment(
      { name: "updated", namespace: ns.name, body: { spec: { template: { spec: { containers: [{ name: "c0", image: "docker.io/library/nginx:1.27" }] } } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
    );
    assert.equal(decodeRequest(ann(sameImage, "request"))?.id, firstRequest?.id, "the same image written another way is not new");
    const changed = await apps.patchNamespacedDeployment(
      { name: "updated", namespace: ns.name, body: { spec: { template: { spec: { containers: [{ name: "c0", image: "nginx:1.28" }] } } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
    );
    assert.deepEqual(decodeRequest(ann(changed, "request"))?.images, ["nginx:1.28"]);
  });

  it("rejects unknown kube-prepull.io annotations and malformed values, naming the key and the allowed values", async () => {
    const rejected = async (annotations: Record<string, string>): Promise<string> => {
      const error = await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("invalid", ["example.com/v:1"], annotations) })
        .then(() => undefined, (e: unknown) => e);
      assert.ok(error, `expected ${JSON.stringify(annotations)} to be rejected`);
      return apiErrorMessage(error);
    };
    assert.match(await rejected({ "kube-prepull.io/hold": "yes" }), /kube-prepull\.io\/hold: invalid value "yes"; allowed: "true" or "false"/);
    assert.match(await rejected({ "kube-prepull.io/hold-timeout": "10h" }), /hold-timeout.*from 30s to 6h/);
    assert.match(await rejected({ "kube-prepull.io/max-parallel": "0" }), /max-parallel.*percentage/);
    assert.match(await rejected({ "kube-prepull.io/holdd": "true" }), /kube-prepull\.io\/holdd: unknown annotation/);
    const ok = await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("valid", ["example.com/v:1"], { "kube-prepull.io/max-parallel": "25%", "kube-prepull.io/hold-timeout": "1h30m" }) });
    assert.equal(ok.metadata?.name, "valid");
  });

  it("supersedes an in-flight prepull when the images change again, and prepulls new init container images", async () => {
    // Paused by its user: the rollout never completes, so DaemonSets stay until superseded.
    const body = deployment("superseded", ["example.com/team/api:1"], { "kube-prepull.io/max-parallel": "1" });
    body.spec!.paused = true;
    await apps.createNamespacedDeployment({ namespace: ns.name, body });
    const oldName = prepullDaemonSetName("superseded", ["example.com/team/api:1"]);
    await waitUntil(() => apps.readNamespacedDaemonSet({ name: oldName, namespace: ns.name }).catch(() => undefined), { what: `daemonset/${oldName}` });
    const changed = await apps.patchNamespacedDeployment({
      name: "superseded",
      namespace: ns.name,
      body: { spec: { template: { spec: {
        initContainers: [{ name: "migrate", image: "example.com/team/migrate:2" }],
        containers: [{ name: "c0", image: "example.com/team/api:2" }],
      } } } },
    }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch));
    const images = ["example.com/team/migrate:2", "example.com/team/api:2"];
    assert.deepEqual(decodeRequest(ann(changed, "request"))?.images, images, "init container images first, both new");
    const newName = prepullDaemonSetName("superseded", images);
    await waitUntil(async () => {
      const list = await apps.listNamespacedDaemonSet({ namespace: ns.name, labelSelector: "kube-prepull.io/deployment=superseded" });
      const names = list.items.map((ds) => ds.metadata?.name);
      return names.length === 1 && names[0] === newName;
    }, { what: "the old DaemonSet to be replaced by the new one" });
    const done = await waitUntil(async () => {
      const s = decodeStatus(ann(await apps.readNamespacedDeployment({ name: "superseded", namespace: ns.name }), "status"));
      return s?.phase === "Succeeded" ? s : undefined;
    }, { what: "the new prepull to succeed", timeoutMs: 60_000 });
    assert.deepEqual(done.images, images);
    assert.ok((await events(ns.name, "superseded")).some((e) => e.reason === "PrepullSuperseded"));
  });

  it("lets Deployments through when the webhook is down (fail open)", async () => {
    const down = await startTestServe({ name: `kube-prepull-down-${process.pid}`, removeOnStop: false, serve: { runController: false } });
    await down.stop(); // its configurations stay registered, pointing at a closed port
    try {
      const created = await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("fail-open", ["example.com/x:1"]) });
      assert.equal(created.metadata?.name, "fail-open");
    } finally {
      const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
      await admission.deleteMutatingWebhookConfiguration({ name: `kube-prepull-down-${process.pid}` });
      await admission.deleteValidatingWebhookConfiguration({ name: `kube-prepull-down-${process.pid}` });
    }
  });
});
