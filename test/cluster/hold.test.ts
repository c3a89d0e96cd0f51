// Holds, pauses and where prepull pods go, on the local cluster (spec §3–§4).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { createNodes } from "../../src/local-cluster/nodes.js";
import { prepullDaemonSetName } from "../../src/prepull/daemonset.js";
import { decodeStatus } from "../../src/prepull/progress.js";
import type { RunningServe } from "../../src/serve.js";
import { createNamespace, startTestServe, testKubeConfig, waitForPrepullWebhook, waitForSchedulableNodes, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
const WEBHOOK = `kube-prepull-hold-${process.pid}`;

function serve(pullDelay: string, removeOnStop: boolean): Promise<RunningServe> {
  return startTestServe({ name: WEBHOOK, pullDelay, removeOnStop, pod: { extraLabels: { team: "platform" } } });
}

function deployment(name: string, image: string, options: { annotations?: Record<string, string>; paused?: boolean; pod?: Partial<k8s.V1PodSpec> } = {}): k8s.V1Deployment {
  return {
    metadata: { name, annotations: options.annotations ?? { "kube-prepull.io/hold": "true" } },
    spec: {
      replicas: 1,
      ...(options.paused !== undefined ? { paused: options.paused } : {}),
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image }], ...options.pod } },
    },
  };
}

const read = (ns: string, name: string): Promise<k8s.V1Deployment> => apps.readNamespacedDeployment({ name, namespace: ns });
const statusOf = (d: k8s.V1Deployment): ReturnType<typeof decodeStatus> => decodeStatus(d.metadata?.annotations?.["kube-prepull.io/status"]);

describe("holds and prepull pod placement", () => {
  let running: RunningServe | undefined;
  let ns: { name: string; remove: () => Promise<void> };

  before(async () => {
    // A namespace that enforces Pod Security "restricted": the prepull pods must pass it.
    ns = await createNamespace(kc, "hold", { "kube-prepull.io/enabled": "true", "pod-security.kubernetes.io/enforce": "restricted" });
    running = await serve("1s", true);
    await waitForPrepullWebhook(apps, ns.name);
  });
  after(async () => {
    await running?.stop();
    await ns.remove();
  });

  it("runs prepull pods that pass Pod Security restricted, with the workload's pull secrets and ServiceAccount", async () => {
    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: "puller" } } });
    const pod: Partial<k8s.V1PodSpec> = {
      serviceAccountName: "puller",
      imagePullSecrets: [{ name: "registry-credentials" }],
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } },
    };
    const d = deployment("restricted", "example.com/team/api:3", { pod });
    d.spec!.template.spec!.containers[0]!.securityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } };
    await apps.createNamespacedDeployment({ namespace: ns.name, body: d });
    const dsName = prepullDaemonSetName("restricted", ["example.com/team/api:3"]);
    const ds = await waitUntil(() => apps.readNamespacedDaemonSet({ name: dsName, namespace: ns.name }).catch(() => undefined),
      { what: `daemonset/${dsName}` });
    assert.equal(ds.spec?.template.spec?.serviceAccountName, "puller");
    assert.deepEqual(ds.spec?.template.spec?.imagePullSecrets?.map((s) => s.name), ["registry-credentials"]);
    assert.equal(ds.spec?.template.spec?.automountServiceAccountToken, false);
    assert.equal(ds.spec?.template.metadata?.labels?.team, "platform", "extra labels configured at install");
    const done = await waitUntil(async () => {
      const current = await read(ns.name, "restricted");
      return statusOf(current)?.phase === "Succeeded" && current.spec?.paused !== true ? current : undefined;
    }, { what: "the prepull in the restricted namespace to succeed and release", timeoutMs: 60_000 });
    // Pods were admitted by Pod Security "restricted" and pulled on every node.
    const nodes = (await core.listNode({ labelSelector: "type=kwok" })).items.length;
    assert.equal(statusOf(done)!.nodes.pulled, nodes);
  });

  it("targets only nodes the pods can run on: nodeSelector, taints and tolerations", async () => {
    const names = await createNodes(core, 2, { prefix: `ssd-${process.pid}`, labels: { disk: "ssd" } });
    await core.patchNode({ name: names[1]!, body: { spec: { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] } } }, merge);
    try {
      await waitForSchedulableNodes(core, "disk=ssd", 2);
      await apps.createNamespacedDeployment({
        namespace: ns.name,
        body: deployment("ssd-only", "example.com/team/db:1", { annotations: {}, pod: { nodeSelector: { disk: "ssd" } } }),
      });
      await apps.createNamespacedDeployment({
        namespace: ns.name,
        body: deployment("ssd-gpu", "example.com/team/ml:1", {
          annotations: {},
          pod: { nodeSelector: { disk: "ssd" }, tolerations: [{ key: "dedicated", operator: "Equal", value: "gpu", effect: "NoSchedule" }] },
        }),
      });
      const pulledOn = async (name: string): Promise<number> =>
        waitUntil(async () => {
          const s = statusOf(await read(ns.name, name));
          return s?.phase === "Succeeded" ? s.nodes.pulled : undefined;
        }, { what: `the ${name} prepull`, timeoutMs: 60_000 });
      assert.equal(await pulledOn("ssd-only"), 1, "the untainted ssd node only");
      assert.equal(await pulledOn("ssd-gpu"), 2, "both ssd nodes with the toleration");
    } finally {
      for (const name of names) await core.deleteNode({ name }).catch(() => undefined);
    }
  });

  it("never resumes a Deployment its user paused", async () => {
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("user-paused", "example.com/team/paused:1", { paused: true }) });
    const finished = await waitUntil(async () => {
      const d = await read(ns.name, "user-paused");
      return statusOf(d)?.phase === "Succeeded" ? d : undefined;
    }, { what: "the prepull of the user-paused Deployment", timeoutMs: 60_000 });
    assert.equal(finished.spec?.paused, true, "still paused after the prepull");
    assert.equal(finished.metadata?.annotations?.["kube-prepull.io/held-by"], undefined);
  });

  it("respects a user's own resume while held", async () => {
    await running!.stop(); // no controller for a moment, so the hold cannot end on its own first
    running = await serve("1s", true);
    await waitForPrepullWebhook(apps, ns.name);
    const created = await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("resumed", "example.com/team/resumed:1") });
    assert.equal(created.spec?.paused, true);
    await apps.patchNamespacedDeployment({ name: "resumed", namespace: ns.name, body: { spec: { paused: false } } }, merge);
    const after = await waitUntil(async () => {
      const d = await read(ns.name, "resumed");
      return d.metadata?.annotations?.["kube-prepull.io/held-by"] === undefined ? d : undefined;
    }, { what: "held-by to be dropped after the user's resume" });
    assert.notEqual(after.spec?.paused, true, "the user's resume stands");
  });

  it("still releases a hold after kube-prepull restarts in the middle of it", async () => {
    await running!.stop();
    // Slow pulls; this instance is stopped right after admitting the Deployment.
    running = await serve("6s", false);
    await waitForPrepullWebhook(apps, ns.name);
    const created = await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("restarted", "example.com/team/restarted:1") });
    assert.equal(created.spec?.paused, true);
    await running.stop();
    running = undefined;
    // Down for a while: nothing releases the hold.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal((await read(ns.name, "restarted")).spec?.paused, true);
    running = await serve("1s", true);
    const released = await waitUntil(async () => {
      const d = await read(ns.name, "restarted");
      return d.spec?.paused !== true ? d : undefined;
    }, { what: "the restarted kube-prepull to release the hold", timeoutMs: 60_000 });
    assert.equal(statusOf(released)?.phase, "Succeeded");
    assert.equal(released.metadata?.annotations?.["kube-prepull.io/held-by"], undefined);
  });
});
