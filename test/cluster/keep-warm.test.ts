// Keep-warm lists on the local cluster (issue 6): a ConfigMap becomes a long-lived DaemonSet that
// warms every matching node, nodes that join later included; a changed list rolls the DaemonSet;
// an invalid one is reported without letting nodes go cold; deleting the list removes it all.
// Its own nodes (labelled and tainted NoSchedule, so no other test's pods land on them).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { decodeKeepWarmStatus, keepWarmDaemonSetName, type KeepWarmStatus } from "../../src/keepwarm/keep-warm.js";
import { createNodes } from "../../src/local-cluster/nodes.js";
import type { RunningServe } from "../../src/serve.js";
import { createNamespace, startTestServe, testKubeConfig, waitForSchedulableNodes, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const POOL = `kw-${process.pid}`;
const TAINT = { key: "kube-prepull.io/keep-warm-test", value: "true", effect: "NoSchedule" };
const DIGEST = "example.com/base/sidecar@sha256:" + "c".repeat(64);

describe("keep-warm lists", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let running: RunningServe;
  const nodes: string[] = [];

  const status = async (): Promise<KeepWarmStatus | undefined> =>
    decodeKeepWarmStatus((await core.readNamespacedConfigMap({ name: "base", namespace: ns.name })).metadata?.annotations?.["kube-prepull.io/status"]);
  const waitForStatus = (what: string, check: (s: KeepWarmStatus) => boolean): Promise<KeepWarmStatus> =>
    waitUntil(async () => {
      const s = await status();
      return s && check(s) ? s : undefined;
    }, { what, timeoutMs: 60_000 });
  const addNodes = async (count: number): Promise<void> => {
    const names = await createNodes(core, count, { prefix: POOL, firstIndex: nodes.length + 1, labels: { pool: POOL, type: "kwok-keep-warm-test" }, taints: [TAINT] });
    nodes.push(...names);
    await waitForSchedulableNodes(core, `pool=${POOL}`, nodes.length);
  };
  const events = async (): Promise<string[]> =>
    (await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: "involvedObject.kind=ConfigMap,involvedObject.name=base" })).items.map((e) => `${e.type}/${e.reason}`);

  before(async () => {
    // kube-prepull's own namespace in this test, with Pod Security restricted enforced as installed.
    ns = await createNamespace(kc, "keep-warm", { "pod-security.kubernetes.io/enforce": "restricted" });
    running = await startTestServe({ pullDelay: "2s", controller: { keepWarm: { namespace: ns.name } } });
    await addNodes(3);
  });
  after(async () => {
    await running?.stop();
    await ns?.remove();
    for (const name of nodes) await core.deleteNode({ name }).catch(() => undefined);
  });

  it("warms every matching node from a ConfigMap, with a long-lived DaemonSet owned by it", async () => {
    await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: {
        metadata: { name: "base", labels: { "kube-prepull.io/keep-warm": "true" } },
        data: { images: `example.com/base/runtime:1\n${DIGEST}\n`, nodeSelector: `pool=${POOL}`, tolerateAllTaints: "true" },
      },
    });
    const warm = await waitForStatus("the list to be warm on 3 nodes", (s) => s.phase === "Warm" && s.nodes.warm === 3);
    assert.deepEqual(warm.images, [DIGEST, "example.com/base/runtime:1"].sort());
    assert.deepEqual(warm.nodes, { desired: 3, warm: 3, failed: 0 });
    const ds = await apps.readNamespacedDaemonSet({ name: keepWarmDaemonSetName("base"), namespace: ns.name });
    assert.equal(ds.metadata?.ownerReferences?.[0]?.kind, "ConfigMap");
    // Not restricted to today's nodes: no hostnames, only Linux on the helper's architectures.
    const terms = ds.spec?.template.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    assert.deepEqual(JSON.parse(JSON.stringify(terms ?? null)), [{
      matchExpressions: [
        { key: "kubernetes.io/os", operator: "In", values: ["linux"] },
        { key: "kubernetes.io/arch", operator: "In", values: ["amd64", "arm64"] },
      ],
    }]);
    const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: `kube-prepull.io/keep-warm=base` });
    assert.deepEqual(pods.items.map((p) => p.spec?.nodeName).sort(), [...nodes].sort());
    await waitUntil(async () => (await events()).includes("Normal/KeepWarmReady"), { what: "a KeepWarmReady Event" });
    assert.ok((await events()).includes("Normal/KeepWarmApplied"));
  });

  it("warms nodes that join later", async () => {
    await addNodes(2);
    await waitForStatus("the list to be warm on 5 nodes", (s) => s.phase === "Warm" && s.nodes.warm === 5);
    const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: `kube-prepull.io/keep-warm=base` });
    assert.deepEqual(pods.items.map((p) => p.spec?.nodeName).sort(), [...nodes].sort());
  });

  it("follows a changed list: the DaemonSet is rolled with the new images on every node", async () => {
    const before = await apps.readNamespacedDaemonSet({ name: keepWarmDaemonSetName("base"), namespace: ns.name });
    await core.patchNamespacedConfigMap(
      { name: "base", namespace: ns.name, body: { data: { images: `example.com/base/runtime:1\n${DIGEST}\nexample.com/base/tools:2\n` } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const warm = await waitForStatus("the changed list to be warm on 5 nodes", (s) => s.images.length === 3 && s.phase === "Warm" && s.nodes.warm === 5);
    assert.ok(warm.images.includes("example.com/base/tools:2"));
    const after = await apps.readNamespacedDaemonSet({ name: keepWarmDaemonSetName("base"), namespace: ns.name });
    assert.equal(after.metadata?.uid, before.metadata?.uid, "updated in place, not recreated");
    assert.ok((after.metadata?.generation ?? 0) > (before.metadata?.generation ?? 0));
    const pulls = after.spec!.template.spec!.initContainers!.filter((c) => c.name.startsWith("pull-")).map((c) => [c.image, c.imagePullPolicy]);
    assert.deepEqual(pulls, [["example.com/base/runtime:1", "Always"], [DIGEST, "IfNotPresent"], ["example.com/base/tools:2", "Always"]]);
    const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: `kube-prepull.io/keep-warm=base` });
    assert.ok(pods.items.every((p) => p.metadata?.labels?.["pod-template-generation"] === String(after.metadata?.generation)), "every pod of the new template");
  });

  it("reports an invalid list with a Warning and keeps the nodes warm; deleting the list removes its DaemonSet", async () => {
    const before = await apps.readNamespacedDaemonSet({ name: keepWarmDaemonSetName("base"), namespace: ns.name });
    await core.patchNamespacedConfigMap(
      { name: "base", namespace: ns.name, body: { data: { refreshInterval: "soon" } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const invalid = await waitForStatus("the Invalid status", (s) => s.phase === "Invalid");
    assert.match(invalid.message ?? "", /refreshInterval: "soon"/);
    await waitUntil(async () => (await events()).includes("Warning/InvalidKeepWarmList"), { what: "an InvalidKeepWarmList Event" });
    const unchanged = await apps.readNamespacedDaemonSet({ name: keepWarmDaemonSetName("base"), namespace: ns.name });
    assert.equal(unchanged.metadata?.generation, before.metadata?.generation);

    await core.deleteNamespacedConfigMap({ name: "base", namespace: ns.name });
    await waitUntil(async () => (await apps.listNamespacedDaemonSet({ namespace: ns.name })).items.length === 0,
      { what: "the garbage collector to delete the list's DaemonSet", timeoutMs: 60_000 });
  });
});
