// Pulls for real (issue 11): the test cluster's real node — a kubelet and containerd — pulls from
// the local registry through its proxy. Nothing here is simulated: presence is read from
// containerd's store and from the kubelet's own Events.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { ON_REAL_NODES } from "../../src/local-cluster/real-node/node.js";
import { REGISTRY_CREDENTIALS } from "../../src/local-cluster/real-node/registry.js";
import type { PullStrategy } from "../../src/prepull/daemonset.js";
import { decodeStatus, type PrepullStatus } from "../../src/prepull/progress.js";
import type { RunningServe } from "../../src/serve.js";
import { createNamespace, imagesOnRealNode, realNodeHelperImage, startTestServe, testKubeConfig, testRealNodes, waitForPrepullWebhook, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const real = testRealNodes();
const node = real.nodes[0]!;
const REGISTRY = real.registry.addresses.pull;
const AUTH_REGISTRY = real.registry.addresses.authPull;
const REAL_HELPER_IMAGE = realNodeHelperImage(real);
const WEBHOOK = `kube-prepull-real-${process.pid}`;

function deployment(name: string, image: string, pod: Partial<k8s.V1PodSpec> = {}): k8s.V1Deployment {
  return {
    metadata: { name, annotations: { "kube-prepull.io/hold": "true" } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { ...ON_REAL_NODES, terminationGracePeriodSeconds: 0, containers: [{ name: "app", image }], ...pod },
      },
    },
  };
}

const statusOf = (d: k8s.V1Deployment): PrepullStatus | undefined => decodeStatus(d.metadata?.annotations?.["kube-prepull.io/status"]);

async function waitForTerminal(namespace: string, name: string, images: string[]): Promise<{ deployment: k8s.V1Deployment; status: PrepullStatus }> {
  return waitUntil(async () => {
    const d = await apps.readNamespacedDeployment({ name, namespace });
    const status = statusOf(d);
    if (!status || status.phase === "Pulling" || d.spec?.paused) return undefined;
    return JSON.stringify([...status.images].sort()) === JSON.stringify([...images].sort()) ? { deployment: d, status } : undefined;
  }, { what: `deployment/${name}'s prepull of ${images.join(", ")} to end and its hold to be released`, timeoutMs: 120_000 });
}

/** The kubelet's image Events for pods in `namespace` whose name starts with `podPrefix`. */
async function kubeletImageEvents(namespace: string, podPrefix: string): Promise<k8s.CoreV1Event[]> {
  const events = await core.listNamespacedEvent({ namespace, fieldSelector: "involvedObject.kind=Pod" });
  return events.items.filter((e) => e.involvedObject.name?.startsWith(podPrefix) && e.source?.component === "kubelet" && ["Pulling", "Pulled", "Failed"].includes(e.reason ?? ""));
}

function dockerConfigSecret(name: string): k8s.V1Secret {
  const auth = Buffer.from(`${REGISTRY_CREDENTIALS.username}:${REGISTRY_CREDENTIALS.password}`).toString("base64");
  return {
    metadata: { name },
    type: "kubernetes.io/dockerconfigjson",
    stringData: { ".dockerconfigjson": JSON.stringify({ auths: { [AUTH_REGISTRY]: { auth } } }) },
  };
}

/**
 * For the enclosing describe: a covered namespace and `serve` with the local helper image (and
 * `strategy`), its webhooks registered as `name`, both removed afterwards.
 */
function servedNamespace(prefix: string, name: string, strategy?: PullStrategy): { readonly name: string } {
  let running: RunningServe | undefined;
  let ns: { name: string; remove: () => Promise<void> } | undefined;
  before(async () => {
    ns = await createNamespace(kc, prefix, { "kube-prepull.io/enabled": "true" });
    running = await startTestServe({ name, pod: { helperImage: REAL_HELPER_IMAGE, extraLabels: {}, extraAnnotations: {}, ...(strategy ? { strategy } : {}) } });
    await waitForPrepullWebhook(apps, ns.name);
  });
  after(async () => {
    await running?.stop();
    await ns?.remove();
  });
  return { get name(): string { return ns!.name; } };
}

describe("a real node pulls for real", () => {
  const ns = servedNamespace("real", WEBHOOK);

  it("holds a rollout until its new image is in containerd's store, then the rollout finds it already present", async () => {
    const v1 = `${REGISTRY}/test/app:1`;
    const v2 = `${REGISTRY}/test/app:2`;
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("web", v1) });
    await waitForTerminal(ns.name, "web", [v1]);
    assert.ok(!(await imagesOnRealNode(node)).includes(v2), "the new image is not on the node before the change");

    await apps.patchNamespacedDeployment({
      name: "web", namespace: ns.name,
      body: [{ op: "replace", path: "/spec/template/spec/containers/0/image", value: v2 }],
    }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch));
    const held = await apps.readNamespacedDeployment({ name: "web", namespace: ns.name });
    assert.equal(held.spec?.paused, true, "the change is held in the same write");

    const { status } = await waitForTerminal(ns.name, "web", [v2]);
    assert.equal(status.phase, "Succeeded");
    assert.deepEqual(status.nodes, { desired: 1, pulled: 1, failed: 0, skipped: 0 });
    assert.ok((await imagesOnRealNode(node)).includes(v2), "containerd has the image");

    const prepullEvents = await kubeletImageEvents(ns.name, "prepull-web-");
    assert.ok(prepullEvents.some((e) => e.reason === "Pulled" && e.message?.includes(`Successfully pulled image "${v2}"`)),
      `the kubelet pulled ${v2} for the prepull pod: ${JSON.stringify(prepullEvents.map((e) => e.message))}`);

    const rolledOut = await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "web", namespace: ns.name });
      return d.status?.updatedReplicas === 1 && d.status.availableReplicas === 1 && d.status.replicas === 1 ? d : undefined;
    }, { what: "the rollout of web to complete", timeoutMs: 120_000 });
    assert.equal(rolledOut.spec?.paused, undefined);
    const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: "app=web" });
    const newPod = pods.items.find((p) => p.spec?.containers[0]?.image === v2)!;
    assert.equal(newPod.spec?.nodeName, node.name);
    const appEvents = await waitUntil(async () => {
      const events = await kubeletImageEvents(ns.name, newPod.metadata!.name!);
      return events.length > 0 ? events : undefined;
    }, { what: `the kubelet's image Event for pod ${newPod.metadata!.name}` });
    assert.deepEqual(appEvents.map((e) => [e.reason, e.message]), [["Pulled", `Container image "${v2}" already present on machine`]],
      "no second pull: the rollout's pod found the image present");
  });

  describe("pull secrets against the registry that requires credentials", () => {
    before(async () => {
      await core.createNamespacedSecret({ namespace: ns.name, body: dockerConfigSecret("registry-credentials") });
      await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: "puller" }, imagePullSecrets: [{ name: "registry-credentials" }] } });
    });

    it("pulls with the Deployment's imagePullSecrets", async () => {
      const image = `${AUTH_REGISTRY}/test/app:1`;
      await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("with-secret", image, { imagePullSecrets: [{ name: "registry-credentials" }] }) });
      const { status } = await waitForTerminal(ns.name, "with-secret", [image]);
      assert.equal(status.phase, "Succeeded", status.message);
      assert.ok((await imagesOnRealNode(node)).includes(image));
    });

    it("pulls with its ServiceAccount's pull secrets", async () => {
      const image = `${AUTH_REGISTRY}/test/app:2`;
      await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("with-sa", image, { serviceAccountName: "puller" }) });
      const { status } = await waitForTerminal(ns.name, "with-sa", [image]);
      assert.equal(status.phase, "Succeeded", status.message);
      assert.ok((await imagesOnRealNode(node)).includes(image));
    });

    it("fails with the registry's 401 without them, and releases the hold", async () => {
      const image = `${AUTH_REGISTRY}/test/app:3`;
      await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("no-secret", image) });
      const { status, deployment: d } = await waitForTerminal(ns.name, "no-secret", [image]);
      assert.equal(status.phase, "Failed");
      assert.match(status.message ?? "", /401 Unauthorized/, status.message);
      assert.match(status.message ?? "", new RegExp(node.name));
      assert.notEqual(d.spec?.paused, true);
      assert.ok(!(await imagesOnRealNode(node)).includes(image));
    });
  });
});

describe("the image-volume strategy on the real node's containerd 1.6", () => {
  const ns = servedNamespace("real-imagevol", `${WEBHOOK}-iv`, "image-volumes");

  it("fails at once with a reason that names the missing runtime support, and releases the hold", async () => {
    const image = `${REGISTRY}/test/volume:1`;
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("vol", image) });
    const { status, deployment: d } = await waitForTerminal(ns.name, "vol", [image]);
    assert.equal(status.phase, "Failed");
    assert.match(status.message ?? "", /ImageVolumesUnsupported on 1 node/, status.message);
    assert.match(status.message ?? "", /cannot mount image volumes \(containerd >= 2\.1/, status.message);
    assert.notEqual(d.spec?.paused, true);
  });
});
