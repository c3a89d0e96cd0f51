// The local cluster is a real Kubernetes control plane: the behaviours kube-prepull depends on
// work here as in a real cluster (issue 2, spec §7).
import assert from "node:assert/strict";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { createCertificateAuthority, issueCertificate } from "../../src/tls/certificates.js";
import { apiErrorCode, apiErrorMessage, createNamespace, testKubeConfig, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);

const PAUSE = "registry.k8s.io/pause:3.10";

function deployment(name: string, replicas: number, extra: Partial<k8s.V1DeploymentSpec> = {}): k8s.V1Deployment {
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "app", image: PAUSE }] },
      },
      ...extra,
    },
  };
}

describe("local control plane", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let nodeNames: string[];

  before(async () => {
    ns = await createNamespace(kc, "control-plane");
    nodeNames = (await core.listNode({ labelSelector: "type=kwok" })).items.map((n) => n.metadata!.name!);
    assert.ok(nodeNames.length >= 2, "the test cluster has simulated nodes");
  });
  after(async () => ns.remove());

  it("runs a Deployment to Available with its pods on simulated nodes", async () => {
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("web", 3) });
    const available = await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "web", namespace: ns.name });
      const cond = d.status?.conditions?.find((c) => c.type === "Available");
      return cond?.status === "True" && d.status?.readyReplicas === 3 ? d : undefined;
    }, { what: "Deployment web Available with 3 ready replicas" });
    assert.equal(available.status?.availableReplicas, 3);
    const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: "app=web" });
    assert.equal(pods.items.length, 3);
    for (const pod of pods.items) {
      assert.ok(nodeNames.includes(pod.spec?.nodeName ?? ""), `pod ${pod.metadata?.name} is on a kwok node`);
      assert.equal(pod.status?.phase, "Running");
    }
  });

  it("gives a DaemonSet exactly one Ready pod per node", async () => {
    await apps.createNamespacedDaemonSet({
      namespace: ns.name,
      body: {
        metadata: { name: "per-node" },
        spec: {
          selector: { matchLabels: { app: "per-node" } },
          template: {
            metadata: { labels: { app: "per-node" } },
            spec: {
              initContainers: [{ name: "first", image: PAUSE }],
              containers: [{ name: "main", image: PAUSE }],
            },
          },
        },
      },
    });
    const ds = await waitUntil(async () => {
      const d = await apps.readNamespacedDaemonSet({ name: "per-node", namespace: ns.name });
      const s = d.status;
      return s && s.desiredNumberScheduled === nodeNames.length && s.numberReady === nodeNames.length ? d : undefined;
    }, { what: "DaemonSet per-node Ready on every node" });
    assert.equal(ds.status?.numberReady, nodeNames.length);
    const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: "app=per-node" });
    assert.deepEqual(pods.items.map((p) => p.spec?.nodeName).sort(), [...nodeNames].sort());
    for (const pod of pods.items) {
      const init = pod.status?.initContainerStatuses?.[0];
      assert.equal(init?.state?.terminated?.reason, "Completed", "init container ran to completion first");
    }
  });

  it("creates no ReplicaSet for a paused Deployment until it is resumed", async () => {
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("held", 2, { paused: true }) });
    // The controller has seen the Deployment once it reports observedGeneration; still no ReplicaSet.
    await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "held", namespace: ns.name });
      return d.status?.observedGeneration === d.metadata?.generation ? d : undefined;
    }, { what: "the deployment controller to observe the paused Deployment" });
    const progressing = (await apps.readNamespacedDeployment({ name: "held", namespace: ns.name })).status?.conditions
      ?.find((c) => c.type === "Progressing");
    assert.equal(progressing?.reason, "DeploymentPaused");
    const before = await apps.listNamespacedReplicaSet({ namespace: ns.name, labelSelector: "app=held" });
    assert.equal(before.items.length, 0, "no ReplicaSet while paused");

    await apps.patchNamespacedDeployment(
      { name: "held", namespace: ns.name, body: { spec: { paused: false } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "held", namespace: ns.name });
      return d.status?.readyReplicas === 2 ? d : undefined;
    }, { what: "the resumed Deployment to become ready" });
    const afterResume = await apps.listNamespacedReplicaSet({ namespace: ns.name, labelSelector: "app=held" });
    assert.equal(afterResume.items.length, 1);
  });

  it("rejects a privileged pod in a namespace enforcing Pod Security restricted", async () => {
    const restricted = await createNamespace(kc, "psa", { "pod-security.kubernetes.io/enforce": "restricted" });
    try {
      const privileged: k8s.V1Pod = {
        metadata: { name: "privileged" },
        spec: { containers: [{ name: "c", image: PAUSE, securityContext: { privileged: true } }] },
      };
      const error = await core.createNamespacedPod({ namespace: restricted.name, body: privileged }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.equal(apiErrorCode(error), 403);
      assert.match(apiErrorMessage(error), /violates PodSecurity "restricted/);

      const compliant: k8s.V1Pod = {
        metadata: { name: "compliant" },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } },
          containers: [{
            name: "c",
            image: PAUSE,
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
          }],
        },
      };
      const created = await core.createNamespacedPod({ namespace: restricted.name, body: compliant });
      assert.equal(created.metadata?.name, "compliant");
    } finally {
      await restricted.remove();
    }
  });

  it("creates nothing on a server-side dry run", async () => {
    const result = await apps.createNamespacedDeployment({
      namespace: ns.name,
      body: deployment("dry", 1),
      dryRun: "All",
    });
    assert.equal(result.metadata?.name, "dry", "the dry run returns the object it would create");
    const error = await apps.readNamespacedDeployment({ name: "dry", namespace: ns.name }).then(() => undefined, (e: unknown) => e);
    assert.equal(apiErrorCode(error), 404);
  });

  it("calls a mutating webhook at an https://127.0.0.1 URL and applies its patch", async () => {
    const now = new Date();
    const notAfter = new Date(now.getTime() + 3600_000);
    const ca = createCertificateAuthority({ commonName: "webhook-test-ca", notBefore: now, notAfter });
    const serving = issueCertificate(ca, {
      commonName: "webhook-test", ipAddresses: ["127.0.0.1"], usage: "server", notBefore: now, notAfter,
    });
    const seen: Array<{ uid: string; kind: string; name: string; namespace: string; dryRun: boolean }> = [];
    const server = https.createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => {
        const review = JSON.parse(body) as { request: { uid: string; kind: { kind: string }; name: string; namespace: string; dryRun: boolean } };
        seen.push({ uid: review.request.uid, kind: review.request.kind.kind, name: review.request.name, namespace: review.request.namespace, dryRun: review.request.dryRun });
        const patch = [{ op: "add", path: "/metadata/annotations", value: { "webhook.test/seen": "yes" } }];
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          response: {
            uid: review.request.uid,
            allowed: true,
            patchType: "JSONPatch",
            patch: Buffer.from(JSON.stringify(patch)).toString("base64"),
          },
        }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const hooked = await createNamespace(kc, "webhook", { "webhook-test": "on" });
    const configName = `webhook-test-${process.pid}`;
    try {
      await admission.createMutatingWebhookConfiguration({
        body: {
          metadata: { name: configName },
          webhooks: [{
            name: "configmaps.webhook.test",
            clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: Buffer.from(ca.certPem).toString("base64") },
            rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"] }],
            namespaceSelector: { matchLabels: { "webhook-test": "on" } },
            admissionReviewVersions: ["v1"],
            sideEffects: "None",
            failurePolicy: "Fail",
            timeoutSeconds: 5,
          }],
        },
      });
      // The configuration reaches the admission chain through an informer: probe with dry runs.
      await waitUntil(async () => {
        const probe = await core.createNamespacedConfigMap({ namespace: hooked.name, body: { metadata: { name: "probe" } }, dryRun: "All" });
        return probe.metadata?.annotations?.["webhook.test/seen"] === "yes";
      }, { what: "the webhook configuration to take effect" });

      const created = await core.createNamespacedConfigMap({ namespace: hooked.name, body: { metadata: { name: "real" }, data: { a: "b" } } });
      assert.equal(created.metadata?.annotations?.["webhook.test/seen"], "yes", "the patch is applied to the stored object");
      const stored = await core.readNamespacedConfigMap({ name: "real", namespace: hooked.name });
      assert.equal(stored.metadata?.annotations?.["webhook.test/seen"], "yes");
      // (kube-root-ca.crt, which the controller-manager publishes in every namespace, is seen too.)
      const real = seen.filter((r) => !r.dryRun && r.name === "real");
      assert.equal(real.length, 1, "one AdmissionReview for the real create");
      assert.equal(real[0]?.kind, "ConfigMap");
      assert.equal(real[0]?.namespace, hooked.name);
      assert.ok(seen.some((r) => r.dryRun), "dry-run requests reach the webhook with dryRun=true");

      // Outside the selected namespace the webhook is not called.
      const before = seen.length;
      await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: "unhooked" } } });
      assert.equal(seen.length, before);
    } finally {
      await admission.deleteMutatingWebhookConfiguration({ name: configName }).catch(() => undefined);
      await hooked.remove();
      server.close();
    }
  });
});
