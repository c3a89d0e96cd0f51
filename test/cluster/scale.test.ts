// Which nodes pull and when, on the local cluster (spec §3 `max-parallel`, §4 "Scale",
// "Completion", hold timeout): waves, nodes that already have the images, cordoned nodes, the
// cluster-wide cap with its queue, and a hold that times out.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { createNodes } from "../../src/local-cluster/nodes.js";
import { prepullDaemonSetName } from "../../src/prepull/daemonset.js";
import { decodeStatus, type PrepullStatus } from "../../src/prepull/progress.js";
import { listedNodes } from "../../src/prepull/targets.js";
import type { RunningServe } from "../../src/serve.js";
import { createNamespace, startTestServe, testKubeConfig, waitForPrepullWebhook, waitForSchedulableNodes, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
const POOL = `scale-${process.pid}`;
const NODES = 4;

function serve(options: { pullDelay: string; maxConcurrentPrepulls: number; cleanupTtlSeconds?: number }): Promise<RunningServe> {
  const { pullDelay, ...controller } = options;
  return startTestServe({ name: `kube-prepull-scale-${process.pid}`, pullDelay, controller });
}

/**
 * A held Deployment whose pods run only on this file's node pool. `userPaused`: paused by its user
 * instead, so the rollout never completes and the DaemonSet stays to be inspected.
 */
function deployment(name: string, image: string, annotations: Record<string, string> = {}, userPaused = false): k8s.V1Deployment {
  return {
    metadata: { name, annotations: userPaused ? annotations : { "kube-prepull.io/hold": "true", ...annotations } },
    spec: {
      replicas: 1,
      ...(userPaused ? { paused: true } : {}),
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { nodeSelector: { pool: POOL }, containers: [{ name: "app", image }] } },
    },
  };
}

const statusOf = async (namespace: string, name: string): Promise<PrepullStatus | undefined> =>
  decodeStatus((await apps.readNamespacedDeployment({ name, namespace })).metadata?.annotations?.["kube-prepull.io/status"]);

const finished = (namespace: string, name: string, timeoutMs = 60_000): Promise<PrepullStatus> =>
  waitUntil(async () => {
    const s = await statusOf(namespace, name);
    return s && s.phase !== "Pulling" ? s : undefined;
  }, { what: `the ${name} prepull to finish`, timeoutMs });

async function released(namespace: string, name: string): Promise<k8s.V1Deployment> {
  return waitUntil(async () => {
    const d = await apps.readNamespacedDeployment({ name, namespace });
    return d.spec?.paused !== true ? d : undefined;
  }, { what: `the ${name} hold to be released`, timeoutMs: 60_000 });
}

describe("waves, present images, cordoned nodes and the concurrency cap", () => {
  let running: RunningServe | undefined;
  let ns: { name: string; remove: () => Promise<void> };
  let nodes: string[];

  before(async () => {
    nodes = await createNodes(core, NODES, { prefix: POOL, labels: { pool: POOL } });
    await waitForSchedulableNodes(core, `pool=${POOL}`, NODES);
    ns = await createNamespace(kc, "scale", { "kube-prepull.io/enabled": "true" });
    running = await serve({ pullDelay: "1s", maxConcurrentPrepulls: 1 });
    await waitForPrepullWebhook(apps, ns.name);
  });
  after(async () => {
    await running?.stop();
    await ns.remove();
    for (const name of nodes) await core.deleteNode({ name }).catch(() => undefined);
  });

  it("pulls in waves of max-parallel nodes, widening the DaemonSet's node list as nodes finish", async () => {
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("waves", "example.com/team/waves:1", { "kube-prepull.io/max-parallel": "1" }, true) });
    const dsName = prepullDaemonSetName("waves", ["example.com/team/waves:1"]);
    const first = await waitUntil(() => apps.readNamespacedDaemonSet({ name: dsName, namespace: ns.name }).catch(() => undefined), { what: `daemonset/${dsName}` });
    assert.deepEqual(listedNodes(first), [nodes[0]], "one node in the first wave");
    const status = await finished(ns.name, "waves");
    assert.equal(status.phase, "Succeeded", status.message);
    assert.deepEqual(status.nodes, { desired: NODES, pulled: NODES, failed: 0, skipped: 0 });
    const last = await apps.readNamespacedDaemonSet({ name: dsName, namespace: ns.name });
    assert.deepEqual(listedNodes(last), nodes, "every node listed in the end");
    assert.equal(last.metadata?.generation, NODES, "one template change per wave after the first");
    // One node at a time: a wave widens once the previous node has pulled (its pull container was
    // created, progress.ts), which the simulated kubelet does after the 1 s pull delay: each pod was
    // created at least that long after the previous one (timestamps have 1 s resolution).
    const pods = (await core.listNamespacedPod({ namespace: ns.name, labelSelector: `kube-prepull.io/prepull=${dsName}` })).items
      .sort((a, b) => listedNodes(last).indexOf(a.spec!.nodeName!) - listedNodes(last).indexOf(b.spec!.nodeName!));
    assert.equal(pods.length, NODES);
    for (let i = 1; i < pods.length; i++) {
      const gap = pods[i]!.metadata!.creationTimestamp!.getTime() - pods[i - 1]!.metadata!.creationTimestamp!.getTime();
      assert.ok(gap >= 1000, `pod on ${pods[i]!.spec?.nodeName} created ${gap} ms after the previous wave's, not after its 1 s pull`);
    }
  });

  it("skips nodes that already report the image, and does not wait for cordoned nodes", async () => {
    const image = "example.com/team/present:1";
    await core.patchNodeStatus({ name: nodes[0]!, body: { status: { images: [{ names: [`${image}`, "example.com/team/present@sha256:" + "1".repeat(64)], sizeBytes: 1000 }] } } }, merge);
    await core.patchNode({ name: nodes[1]!, body: { spec: { unschedulable: true } } }, merge);
    try {
      await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("present", image, {}, true) });
      const status = await finished(ns.name, "present");
      assert.equal(status.phase, "Succeeded", status.message);
      assert.deepEqual(status.nodes, { desired: NODES - 2, pulled: NODES - 2, failed: 0, skipped: 1 });
      const ds = await apps.readNamespacedDaemonSet({ name: prepullDaemonSetName("present", [image]), namespace: ns.name });
      assert.deepEqual(listedNodes(ds), nodes.slice(2), "neither the node with the image nor the cordoned one");

      // Every eligible node has it: done at once, without a DaemonSet.
      await core.patchNode({ name: nodes[1]!, body: { spec: { unschedulable: false } } }, merge);
      for (const name of nodes) {
        await core.patchNodeStatus({ name, body: { status: { images: [{ names: [image], sizeBytes: 1000 }] } } }, merge);
      }
      await waitForSchedulableNodes(core, `pool=${POOL}`, NODES);
      await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("everywhere", image) });
      const instant = await finished(ns.name, "everywhere");
      assert.equal(instant.phase, "Succeeded");
      assert.deepEqual(instant.nodes, { desired: 0, pulled: 0, failed: 0, skipped: NODES });
      assert.match(instant.message ?? "", /already present on all 4 nodes/);
      const list = await apps.listNamespacedDaemonSet({ namespace: ns.name, labelSelector: "kube-prepull.io/deployment=everywhere" });
      assert.equal(list.items.length, 0, "no DaemonSet");
      await released(ns.name, "everywhere");
    } finally {
      await core.patchNode({ name: nodes[1]!, body: { spec: { unschedulable: false } } }, merge).catch(() => undefined);
      for (const name of nodes) await core.patchNodeStatus({ name, body: { status: { images: [] } } }, merge).catch(() => undefined);
    }
  });

  it("queues prepulls beyond the cluster-wide cap and starts them as slots free", async () => {
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("first", "example.com/team/first:1") });
    await waitUntil(async () => (await statusOf(ns.name, "first"))?.queued === undefined && (await statusOf(ns.name, "first"))?.phase === "Pulling",
      { what: "the first prepull to start" });
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("second", "example.com/team/second:1") });
    const queued = await waitUntil(async () => {
      const s = await statusOf(ns.name, "second");
      return s?.queued ? s : undefined;
    }, { what: "the second prepull to be queued" });
    assert.equal(queued.phase, "Pulling");
    assert.match(queued.message ?? "", /queued/);
    const dsList = await apps.listNamespacedDaemonSet({ namespace: ns.name, labelSelector: "kube-prepull.io/deployment=second" });
    assert.equal(dsList.items.length, 0, "no DaemonSet while queued");
    const metrics = await (await fetch(`http://127.0.0.1:${running!.opsPort}/metrics`)).text();
    assert.ok(metrics.includes("kube_prepull_queue_depth"), "queue depth is exported");
    const firstDone = await finished(ns.name, "first");
    const secondDone = await finished(ns.name, "second");
    assert.equal(secondDone.phase, "Succeeded", secondDone.message);
    assert.ok(Date.parse(secondDone.startedAt) >= Date.parse(firstDone.finishedAt!), "the second started after the first finished");
    await released(ns.name, "second");
  });
});

describe("hold timeout and cleanup TTL", () => {
  let running: RunningServe | undefined;
  let ns: { name: string; remove: () => Promise<void> };
  let nodes: string[];

  before(async () => {
    nodes = await createNodes(core, 1, { prefix: `${POOL}-slow`, labels: { pool: POOL } });
    ns = await createNamespace(kc, "timeout", { "kube-prepull.io/enabled": "true" });
    // Pulls that take far longer than the hold may last.
    running = await serve({ pullDelay: "10m", maxConcurrentPrepulls: 20, cleanupTtlSeconds: 5 });
    await waitForPrepullWebhook(apps, ns.name);
  });
  after(async () => {
    await running?.stop();
    await ns.remove();
    for (const name of nodes) await core.deleteNode({ name }).catch(() => undefined);
  });

  it("releases the rollout at the hold timeout with a Warning event; deletes a DaemonSet whose rollout never completes after the TTL", async () => {
    const created = await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("slow", "example.com/team/slow:1", { "kube-prepull.io/hold-timeout": "30s" }) });
    assert.equal(created.spec?.paused, true);
    // Alongside: paused by its user, so its rollout never completes; only the TTL removes its DaemonSet.
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("stuck", "example.com/team/stuck:1", { "kube-prepull.io/hold-timeout": "30s" }, true) });
    const d = await waitUntil(async () => {
      const current = await apps.readNamespacedDeployment({ name: "slow", namespace: ns.name });
      return current.spec?.paused !== true ? current : undefined;
    }, { what: "the hold to time out", timeoutMs: 60_000 });
    const status = decodeStatus(d.metadata?.annotations?.["kube-prepull.io/status"]);
    assert.equal(status?.phase, "TimedOut");
    assert.match(status?.message ?? "", /within 30s/);
    assert.ok(Date.parse(status.finishedAt!) - new Date(d.metadata!.creationTimestamp!).getTime() >= 29_000, "not before the timeout");
    const events = await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: "involvedObject.name=slow" });
    const timedOut = events.items.find((e) => e.reason === "PrepullTimedOut");
    assert.equal(timedOut?.type, "Warning");
    assert.ok(events.items.some((e) => e.reason === "HoldReleased"));

    const stuck = await finished(ns.name, "stuck");
    assert.equal(stuck.phase, "TimedOut");
    const stuckDs = prepullDaemonSetName("stuck", ["example.com/team/stuck:1"]);
    await waitUntil(async () => (await apps.readNamespacedDaemonSet({ name: stuckDs, namespace: ns.name }).then(() => false, () => true)),
      { what: `daemonset/${stuckDs} to be deleted after the cleanup TTL`, timeoutMs: 30_000 });
    const deletedAfter = (Date.now() - Date.parse(stuck.finishedAt!)) / 1000;
    assert.ok(deletedAfter >= 5, `deleted ${deletedAfter.toFixed(1)}s after the prepull ended, not before the 5 s TTL`);
    assert.equal((await apps.readNamespacedDeployment({ name: "stuck", namespace: ns.name })).spec?.paused, true, "the user's pause stands");
  });
});
