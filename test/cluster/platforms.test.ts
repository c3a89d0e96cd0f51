// Nodes prepull pods cannot run on (spec §3 `nodes`: only Linux nodes of an architecture the
// helper is built for): a simulated Windows node and a simulated s390x node next to two Linux amd64
// nodes get no prepull pod — from the controller (the DaemonSet's affinity, with no node list) nor
// from `kube-prepull run` — and are reported as skipped (`unsupported`) in the status annotation,
// the PrepullStarted Event and run's summary.
//
// The four nodes carry their own pool label and a NoSchedule taint (and not the shared nodes'
// `type=kwok` label), and are deleted at the end: other test files neither count nor use them.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { createNodes } from "../../src/local-cluster/nodes.js";
import { prepullDaemonSetName } from "../../src/prepull/daemonset.js";
import { decodeStatus } from "../../src/prepull/progress.js";
import type { RunSummary } from "../../src/prepull/run.js";
import type { RunningServe } from "../../src/serve.js";
import { createNamespace, startTestServe, testKubeConfig, testKubeconfigPath, waitForPrepullWebhook, waitForSchedulableNodes, waitUntil } from "../support/cluster.js";
import { startMain, type Finished } from "../support/cli.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const POOL = `platforms-${process.pid}`;
const TAINT: k8s.V1Taint = { key: "kube-prepull.io/test-pool", value: POOL, effect: "NoSchedule" };
const SKIPPED_NOTE = "2 nodes skipped: not Linux on amd64 or arm64";

/** Two Linux amd64 nodes, one Windows node, one s390x node, in this file's pool. */
async function createPool(): Promise<{ linux: string[]; other: string[] }> {
  const labels = { pool: POOL, type: "kwok-platforms-test" };
  const linux = await createNodes(core, 2, { prefix: `${POOL}-linux`, labels, taints: [TAINT] });
  const windows = await createNodes(core, 1, { prefix: `${POOL}-win`, labels: { ...labels, "kubernetes.io/os": "windows" }, taints: [TAINT] });
  const s390x = await createNodes(core, 1, { prefix: `${POOL}-s390x`, labels: { ...labels, "kubernetes.io/arch": "s390x" }, taints: [TAINT] });
  return { linux, other: [...windows, ...s390x] };
}

/** A Deployment on the pool whose own pod never fits (so the rollout never completes and its prepull DaemonSet stays). */
function deployment(name: string, image: string): k8s.V1Deployment {
  return {
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          nodeSelector: { pool: POOL },
          tolerations: [{ key: TAINT.key, operator: "Equal", value: TAINT.value, effect: "NoSchedule" }],
          containers: [{ name: "app", image, resources: { requests: { cpu: "1000" } } }],
        },
      },
    },
  };
}

function run(namespace: string, args: string[]): Promise<Finished> {
  return startMain(["run", ...args, "--kubeconfig", testKubeconfigPath(), "-n", namespace,
    "--node-selector", `pool=${POOL}`, "--toleration", `${TAINT.key}=${TAINT.value}:${TAINT.effect}`]).finished;
}

describe("nodes of another OS or architecture", () => {
  let pool: { linux: string[]; other: string[] };
  let ns: { name: string; remove: () => Promise<void> };
  let serve: RunningServe | undefined;

  before(async () => {
    pool = await createPool();
    await waitForSchedulableNodes(core, `pool=${POOL}`, 4);
    ns = await createNamespace(kc, "platforms", { "kube-prepull.io/enabled": "true", "pod-security.kubernetes.io/enforce": "restricted" });
  });

  after(async () => {
    await serve?.stop();
    await ns?.remove();
    for (const name of [...(pool?.linux ?? []), ...(pool?.other ?? [])]) await core.deleteNode({ name }).catch(() => undefined);
  });

  it("kube-prepull run pulls on the Linux nodes only and reports the other two as skipped", async () => {
    const { code, stdout, stderr } = await run(ns.name, ["example.com/platforms/app:1", "--output", "json", "--prepull-pod-annotation", "sim.kube-prepull.io/pull-delay=1s"]);
    assert.equal(code, 0, stderr);
    const summary = JSON.parse(stdout) as RunSummary;
    assert.equal(summary.result, "succeeded", summary.message);
    assert.deepEqual(summary.nodes, { targeted: 2, pulled: 2, failed: 0, skipped: 0, unsupported: 2 });
    assert.match(stderr, new RegExp(`pulling example\\.com/platforms/app:1 on 2 nodes with daemonset/prepull-run-[0-9a-f]+ in namespace ${ns.name}; ${SKIPPED_NOTE}`));
    const text = await run(ns.name, ["example.com/platforms/app:2", "--prepull-pod-annotation", "sim.kube-prepull.io/pull-delay=1s"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^succeeded: example\\.com/platforms/app:2 pulled on 2/2 nodes in [\\d.]+s; ${SKIPPED_NOTE}$`, "m"));
  });

  it("the controller's prepull DaemonSet places no pod on them, and the status and Event count them", async () => {
    serve = await startTestServe({ name: `kube-prepull-platforms-${process.pid}`, pullDelay: "1s" });
    await waitForPrepullWebhook(apps, ns.name);
    const image = "example.com/platforms/web:1";
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("web", image) });
    const name = prepullDaemonSetName("web", [image]);
    const done = await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "web", namespace: ns.name });
      const status = decodeStatus(d.metadata?.annotations?.["kube-prepull.io/status"]);
      return status && status.phase !== "Pulling" ? status : undefined;
    }, { what: "the prepull to finish", timeoutMs: 90_000 });
    assert.equal(done.phase, "Succeeded", done.message);
    assert.deepEqual(done.nodes, { desired: 2, pulled: 2, failed: 0, skipped: 0, unsupported: 2 });

    // Every target at once and no other node in the placement: the DaemonSet lists no nodes, so
    // only its affinity keeps the DaemonSet controller off the Windows and s390x nodes.
    const ds = await apps.readNamespacedDaemonSet({ name, namespace: ns.name });
    assert.equal(ds.metadata?.annotations?.["kube-prepull.io/every-target"], "true");
    assert.equal(ds.status?.desiredNumberScheduled, 2);
    const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: `kube-prepull.io/prepull=${name}` });
    assert.deepEqual(pods.items.map((p) => p.spec?.nodeName).sort(), [...pool.linux].sort());

    const events = await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: "involvedObject.name=web,reason=PrepullStarted" });
    assert.match(events.items[0]?.message ?? "", new RegExp(`on 2 nodes with daemonset/${name}; ${SKIPPED_NOTE}$`));
  });
});
