// Every workload kind on the local cluster (spec §3a): each kind's hold and release, the user's own
// partition/strategy/suspend respected, the prepull's placement following the workload's, and no
// clash between kinds of one name.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { createNodes } from "../../src/local-cluster/nodes.js";
import { prepullDaemonSetName } from "../../src/prepull/daemonset.js";
import { decodeStatus, type PrepullStatus } from "../../src/prepull/progress.js";
import type { RunningServe } from "../../src/serve.js";
import { daemonSetWorkload } from "../../src/workloads/daemonset.js";
import { statefulSetWorkload } from "../../src/workloads/statefulset.js";
import { apiErrorMessage, createNamespace, startTestServe, testKubeConfig, waitForPrepullWebhook, waitForSchedulableNodes, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const batch = kc.makeApiClient(k8s.BatchV1Api);
const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
const HOLD = { "kube-prepull.io/hold": "true" };

const statusOf = (o: k8s.KubernetesObject): PrepullStatus | undefined => decodeStatus(o.metadata?.annotations?.["kube-prepull.io/status"]);
const heldBy = (o: k8s.KubernetesObject): string | undefined => o.metadata?.annotations?.["kube-prepull.io/held-by"];
const podSpec = (image: string, extra: Partial<k8s.V1PodSpec> = {}): k8s.V1PodSpec => ({ containers: [{ name: "app", image }], ...extra });
const template = (name: string, image: string, extra: Partial<k8s.V1PodSpec> = {}): k8s.V1PodTemplateSpec => ({ metadata: { labels: { app: name } }, spec: podSpec(image, extra) });
const imageOf = (t: k8s.V1PodTemplateSpec): string => t.spec!.containers[0]!.image!;

describe("workload kinds", () => {
  let running: RunningServe | undefined;
  let ns: { name: string; remove: () => Promise<void> };

  before(async () => {
    ns = await createNamespace(kc, "kinds", { "kube-prepull.io/enabled": "true" });
    // A short cleanup TTL: kwok may leave a recreated StatefulSet pod Pending, so a rollout there need
    // not complete; the TTL bounds the prepull DaemonSet's life either way (spec §4 "Cleanup").
    running = await startTestServe({ name: `kube-prepull-kinds-${process.pid}`, pullDelay: "4s", controller: { cleanupTtlSeconds: 20 } });
    await waitForPrepullWebhook(apps, ns.name);
  });
  after(async () => {
    await running?.stop();
    await ns.remove();
  });

  it("StatefulSet: a new one is prepulled alongside; an update is held by the partition and released to the user's own", async () => {
    const body: k8s.V1StatefulSet = {
      metadata: { name: "db", annotations: HOLD },
      spec: { replicas: 2, serviceName: "db", selector: { matchLabels: { app: "db" } }, template: template("db", "example.com/db:1"),
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 0 } } },
    };
    const created = await apps.createNamespacedStatefulSet({ namespace: ns.name, body });
    assert.equal(heldBy(created), undefined, "a partition cannot hold a new StatefulSet's first pods");
    assert.equal(created.spec?.updateStrategy?.rollingUpdate?.partition, 0);
    await waitUntil(async () => statusOf(await apps.readNamespacedStatefulSet({ name: "db", namespace: ns.name }))?.phase === "Succeeded", { what: "the create's prepull" });

    const updated = await apps.patchNamespacedStatefulSet({ name: "db", namespace: ns.name, body: { spec: { template: template("db", "example.com/db:2") } } }, merge);
    assert.equal(updated.spec?.updateStrategy?.rollingUpdate?.partition, 2, "held: no ordinal is at or above the partition");
    assert.match(heldBy(updated) ?? "", /"partition":0/);
    const dsName = prepullDaemonSetName("db", ["example.com/db:2"], statefulSetWorkload);
    const ds = await waitUntil(() => apps.readNamespacedDaemonSet({ name: dsName, namespace: ns.name }).catch(() => undefined), { what: `daemonset/${dsName}` });
    assert.equal(ds.metadata?.labels?.["kube-prepull.io/statefulset"], "db");
    assert.equal(ds.metadata?.ownerReferences?.[0]?.kind, "StatefulSet");
    const released = await waitUntil(async () => {
      const s = await apps.readNamespacedStatefulSet({ name: "db", namespace: ns.name });
      return heldBy(s) === undefined ? s : undefined;
    }, { what: "the StatefulSet's hold to be released", timeoutMs: 60_000 });
    assert.equal(statusOf(released)?.phase, "Succeeded");
    assert.equal(released.spec?.updateStrategy?.rollingUpdate?.partition, 0, "the user's own partition is back");
  });

  it("StatefulSet: the user's own partition change while held is respected", async () => {
    const body: k8s.V1StatefulSet = {
      metadata: { name: "cache", annotations: { ...HOLD, "kube-prepull.io/hold-timeout": "5m" } },
      spec: { replicas: 3, serviceName: "cache", selector: { matchLabels: { app: "cache" } }, template: template("cache", "example.com/cache:1") },
    };
    await apps.createNamespacedStatefulSet({ namespace: ns.name, body });
    // A long pull: the user acts while the hold is on.
    await apps.patchNamespacedStatefulSet({ name: "cache", namespace: ns.name, body: { metadata: { annotations: { "kube-prepull.io/hold": "true" } }, spec: { template: { ...template("cache", "example.com/cache:2"), metadata: { labels: { app: "cache" }, annotations: { "sim.kube-prepull.io/pull-delay": "30s" } } } } } }, merge);
    await apps.patchNamespacedStatefulSet({ name: "cache", namespace: ns.name, body: { spec: { updateStrategy: { rollingUpdate: { partition: 1 } } } } }, merge);
    const forgotten = await waitUntil(async () => {
      const s = await apps.readNamespacedStatefulSet({ name: "cache", namespace: ns.name });
      return heldBy(s) === undefined ? s : undefined;
    }, { what: "kube-prepull to let go of the user's partition", timeoutMs: 30_000 });
    assert.equal(forgotten.spec?.updateStrategy?.rollingUpdate?.partition, 1, "the user's value stays");
  });

  it("StatefulSet: a second update while held supersedes the first; placement follows its nodeSelector; cleaned up", async () => {
    const names = await createNodes(core, 2, { prefix: `store-${process.pid}`, labels: { store: "yes" } });
    try {
      await waitForSchedulableNodes(core, "store=yes", 2);
      const tmpl = (image: string, pullDelay?: string): k8s.V1PodTemplateSpec => ({
        metadata: { labels: { app: "store" }, ...(pullDelay ? { annotations: { "sim.kube-prepull.io/pull-delay": pullDelay } } : {}) },
        spec: podSpec(image, { nodeSelector: { store: "yes" } }),
      });
      const read = (): Promise<k8s.V1StatefulSet> => apps.readNamespacedStatefulSet({ name: "store", namespace: ns.name });
      await apps.createNamespacedStatefulSet({ namespace: ns.name, body: { metadata: { name: "store", annotations: HOLD }, spec: { replicas: 2, serviceName: "store", selector: { matchLabels: { app: "store" } }, template: tmpl("example.com/store:1") } } });
      await waitUntil(async () => statusOf(await read())?.phase === "Succeeded", { what: "the create's prepull" });

      const first = prepullDaemonSetName("store", ["example.com/store:2"], statefulSetWorkload);
      await apps.patchNamespacedStatefulSet({ name: "store", namespace: ns.name, body: { spec: { template: tmpl("example.com/store:2", "60s") } } }, merge);
      const slow = await waitUntil(() => apps.readNamespacedDaemonSet({ name: first, namespace: ns.name }).catch(() => undefined), { what: `daemonset/${first}` });
      assert.deepEqual(slow.spec?.template.spec?.nodeSelector, { store: "yes" }, "the prepull goes where the StatefulSet's pods can run");

      const second = prepullDaemonSetName("store", ["example.com/store:3"], statefulSetWorkload);
      const superseding = await apps.patchNamespacedStatefulSet({ name: "store", namespace: ns.name, body: { spec: { template: tmpl("example.com/store:3") } } }, merge);
      assert.equal(superseding.spec?.updateStrategy?.rollingUpdate?.partition, 2, "still held by the partition");
      await waitUntil(async () => (await apps.readNamespacedDaemonSet({ name: first, namespace: ns.name }).catch(() => undefined)) === undefined, { what: `the superseded daemonset/${first} to go` });
      const released = await waitUntil(async () => { const s = await read(); return heldBy(s) === undefined ? s : undefined; }, { what: "the hold to be released", timeoutMs: 60_000 });
      assert.equal(statusOf(released)?.phase, "Succeeded");
      assert.deepEqual(statusOf(released)?.images, ["example.com/store:3"], "the status is the newest request's");
      assert.equal(statusOf(released)?.daemonSet, second);
      assert.equal(statusOf(released)?.nodes.desired, 2, "only the StatefulSet's nodes");
      assert.equal(released.spec?.updateStrategy?.rollingUpdate?.partition, 0);
      const superseded = await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: "involvedObject.name=store,involvedObject.kind=StatefulSet" });
      assert.ok(superseded.items.some((e) => e.reason === "PrepullSuperseded"), "the supersede is told with an Event");
      await waitUntil(async () => (await apps.listNamespacedDaemonSet({ namespace: ns.name, labelSelector: "kube-prepull.io/statefulset=store" })).items.length === 0,
        { what: "the prepull DaemonSets to be cleaned up (rollout complete or cleanup TTL)", timeoutMs: 60_000 });
    } finally {
      await apps.deleteNamespacedStatefulSet({ name: "store", namespace: ns.name }).catch(() => undefined);
      await Promise.all(names.map((name) => core.deleteNode({ name })));
    }
  });

  it("DaemonSet: an update is held by OnDelete and released to the user's own strategy; the prepull runs on its nodes only", async () => {
    const names = await createNodes(core, 2, { prefix: `agent-${process.pid}`, labels: { agent: "yes" } });
    try {
      // Nodes not Ready yet are not targets: the update would find nothing to pull (spec §4).
      await waitForSchedulableNodes(core, "agent=yes", 2);
      const strategy: k8s.V1DaemonSetUpdateStrategy = { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 2 } };
      const body: k8s.V1DaemonSet = {
        metadata: { name: "agent" },
        spec: { selector: { matchLabels: { app: "agent" } }, template: template("agent", "example.com/agent:1", { nodeSelector: { agent: "yes" } }), updateStrategy: strategy },
      };
      await apps.createNamespacedDaemonSet({ namespace: ns.name, body });
      const held = await apps.patchNamespacedDaemonSet({ name: "agent", namespace: ns.name, body: { metadata: { annotations: HOLD }, spec: { template: template("agent", "example.com/agent:2", { nodeSelector: { agent: "yes" } }) } } }, merge);
      assert.equal(held.spec?.updateStrategy?.type, "OnDelete");
      assert.ok(heldBy(held));
      const dsName = prepullDaemonSetName("agent", ["example.com/agent:2"], daemonSetWorkload);
      const prepull = await waitUntil(() => apps.readNamespacedDaemonSet({ name: dsName, namespace: ns.name }).catch(() => undefined), { what: `daemonset/${dsName}` });
      assert.deepEqual(prepull.spec?.template.spec?.nodeSelector, { agent: "yes" });
      const released = await waitUntil(async () => {
        const d = await apps.readNamespacedDaemonSet({ name: "agent", namespace: ns.name });
        return heldBy(d) === undefined ? d : undefined;
      }, { what: "the DaemonSet's hold to be released", timeoutMs: 60_000 });
      const status = statusOf(released)!;
      assert.equal(status.phase, "Succeeded");
      assert.equal(status.nodes.desired, 2, "only the DaemonSet's own nodes");
      assert.equal(released.spec?.updateStrategy?.type, "RollingUpdate");
      assert.equal(String(released.spec?.updateStrategy?.rollingUpdate?.maxUnavailable), "2", "the user's strategy restored verbatim");
    } finally {
      await Promise.all(names.map((name) => core.deleteNode({ name })));
    }
  });

  it("Job: created suspended, resumed once pulled; a Job its user suspended is never resumed", async () => {
    const job = (name: string, suspend?: boolean): k8s.V1Job => ({
      metadata: { name, annotations: HOLD },
      spec: { ...(suspend ? { suspend } : {}), template: { spec: { ...podSpec(`example.com/${name}:1`), restartPolicy: "Never" } } },
    });
    const created = await batch.createNamespacedJob({ namespace: ns.name, body: job("migrate") });
    assert.equal(created.spec?.suspend, true);
    const resumed = await waitUntil(async () => {
      const j = await batch.readNamespacedJob({ name: "migrate", namespace: ns.name });
      return j.spec?.suspend === false && heldBy(j) === undefined ? j : undefined;
    }, { what: "the Job to be resumed", timeoutMs: 60_000 });
    assert.equal(statusOf(resumed)?.phase, "Succeeded");

    await batch.createNamespacedJob({ namespace: ns.name, body: job("paused-by-user", true) });
    await waitUntil(async () => statusOf(await batch.readNamespacedJob({ name: "paused-by-user", namespace: ns.name }))?.phase === "Succeeded", { what: "the user-suspended Job's prepull", timeoutMs: 60_000 });
    assert.equal((await batch.readNamespacedJob({ name: "paused-by-user", namespace: ns.name })).spec?.suspend, true);
  });

  it("CronJob: a job-template image change is prepulled; hold is refused with the reason", async () => {
    const body = (image: string, annotations: Record<string, string> = {}): k8s.V1CronJob => ({
      metadata: { name: "report", annotations },
      spec: { schedule: "0 3 * * *", jobTemplate: { spec: { template: { spec: { ...podSpec(image), restartPolicy: "Never" } } } } },
    });
    await assert.rejects(batch.createNamespacedCronJob({ namespace: ns.name, body: body("example.com/report:1", HOLD) }),
      (error: unknown) => /cannot be held/.test(apiErrorMessage(error)));
    await batch.createNamespacedCronJob({ namespace: ns.name, body: body("example.com/report:1") });
    await waitUntil(async () => statusOf(await batch.readNamespacedCronJob({ name: "report", namespace: ns.name }))?.phase === "Succeeded", { what: "the CronJob's first prepull" });
    await batch.patchNamespacedCronJob({ name: "report", namespace: ns.name, body: { spec: { jobTemplate: { spec: { template: { spec: podSpec("example.com/report:2") } } } } } }, merge);
    const done = await waitUntil(async () => {
      const c = await batch.readNamespacedCronJob({ name: "report", namespace: ns.name });
      return statusOf(c)?.images.includes("example.com/report:2") && statusOf(c)?.phase === "Succeeded" ? c : undefined;
    }, { what: "the job template's new image to be prepulled" });
    assert.equal(imageOf(done.spec!.jobTemplate.spec!.template), "example.com/report:2");
    // A CronJob has no rollout to wait for: its prepull DaemonSets go when the cleanup TTL ends.
    await waitUntil(async () => (await apps.listNamespacedDaemonSet({ namespace: ns.name, labelSelector: "kube-prepull.io/cronjob=report" })).items.length === 0,
      { what: "the CronJob's prepull DaemonSets to be cleaned up after the TTL", timeoutMs: 60_000 });
  });

  it("a Deployment and a StatefulSet of one name get their own prepulls", async () => {
    const image = "example.com/twin:1";
    await apps.createNamespacedDeployment({ namespace: ns.name, body: { metadata: { name: "twin" }, spec: { replicas: 1, selector: { matchLabels: { app: "twin" } }, template: template("twin", image) } } });
    await apps.createNamespacedStatefulSet({ namespace: ns.name, body: { metadata: { name: "twin" }, spec: { replicas: 1, serviceName: "twin", selector: { matchLabels: { app: "twin" } }, template: template("twin", image) } } });
    const expected: Array<[() => Promise<k8s.KubernetesObject>, string]> = [
      [() => apps.readNamespacedDeployment({ name: "twin", namespace: ns.name }), prepullDaemonSetName("twin", [image])],
      [() => apps.readNamespacedStatefulSet({ name: "twin", namespace: ns.name }), prepullDaemonSetName("twin", [image], statefulSetWorkload)],
    ];
    for (const [read, dsName] of expected) {
      const o = await waitUntil(async () => { const x = await read(); return statusOf(x)?.phase === "Succeeded" ? x : undefined; }, { what: "twin's prepull" });
      assert.equal(statusOf(o)!.daemonSet, dsName);
    }
    assert.notEqual(prepullDaemonSetName("twin", [image]), prepullDaemonSetName("twin", [image], statefulSetWorkload));
  });
});
