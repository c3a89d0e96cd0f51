// Several `kube-prepull serve` replicas (real processes) on the local cluster: one runs the
// controller through a Lease; when it is killed mid-hold, another takes over within the lease
// duration and the hold is still released (spec §2, §4 "After a restart … every hold is still
// released on time").
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { prepullDaemonSetName } from "../../src/prepull/daemonset.js";
import { decodeStatus } from "../../src/prepull/progress.js";
import { createNamespace, testKubeConfig, testKubeconfigPath, waitForPrepullWebhook, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const apps = kc.makeApiClient(k8s.AppsV1Api);
const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
const WEBHOOK = `kube-prepull-ha-${process.pid}`;

interface Replica {
  child: ChildProcess;
  opsPort: number;
  output: () => string;
}

/** Starts `kube-prepull serve` as its own process; resolves once it prints where it serves. */
function startReplica(leaseNamespace: string, name: string): Promise<Replica> {
  const child = spawn(process.execPath, [
    path.join(packageRoot(), "dist/src/cli/main.js"), "serve",
    "--kubeconfig", testKubeconfigPath(),
    "--port", "0", "--ops-port", "0",
    "--register", "--webhook-name", WEBHOOK,
    "--namespace", leaseNamespace,
    "--prepull-pod-annotation", "sim.kube-prepull.io/pull-delay=25s",
    "--log-level", "info",
  ], { env: { ...process.env, POD_NAME: name }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /\/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match) resolve({ child, opsPort: Number(match[1]), output: () => output });
    });
    child.on("exit", (code) => reject(new Error(`replica ${name} exited (${code}): ${output}`)));
  });
}

async function isLeader(replica: Replica): Promise<boolean> {
  const text = await (await fetch(`http://127.0.0.1:${replica.opsPort}/metrics`)).text();
  return /^kube_prepull_leader 1$/m.test(text);
}

describe("two replicas, one leader", () => {
  let leaseNs: { name: string; remove: () => Promise<void> };
  let ns: { name: string; remove: () => Promise<void> };
  const replicas: Replica[] = [];

  before(async () => {
    leaseNs = await createNamespace(kc, "kube-prepull-ha");
    ns = await createNamespace(kc, "ha", { "kube-prepull.io/enabled": "true" });
  });
  after(async () => {
    await Promise.all(replicas.map((r) => new Promise<void>((resolve) => {
      if (r.child.exitCode !== null || r.child.signalCode !== null) return resolve();
      r.child.once("exit", () => resolve());
      r.child.kill("SIGTERM");
    })));
    const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    await admission.deleteMutatingWebhookConfiguration({ name: WEBHOOK }).catch(() => undefined);
    await admission.deleteValidatingWebhookConfiguration({ name: WEBHOOK }).catch(() => undefined);
    await ns.remove();
    await leaseNs.remove();
  });

  it("runs the controller in one replica only, and the other takes over when the leader is killed mid-hold", async (t) => {
    const first = await startReplica(leaseNs.name, "replica-a");
    replicas.push(first);
    await waitUntil(() => isLeader(first), { what: "replica-a to lead" });
    const second = await startReplica(leaseNs.name, "replica-b");
    replicas.push(second);
    await waitUntil(async () => (await fetch(`http://127.0.0.1:${second.opsPort}/readyz`)).ok, { what: "replica-b to be ready" });
    assert.equal(await isLeader(second), false, "a second replica serves admission but does not lead");
    const lease = await coordination.readNamespacedLease({ name: "kube-prepull", namespace: leaseNs.name });
    assert.match(lease.spec?.holderIdentity ?? "", /^replica-a_/);

    // replica-b registered last: the apiserver calls it for admission.
    await waitForPrepullWebhook(apps, ns.name);
    const image = "example.com/team/ha:1";
    const created = await apps.createNamespacedDeployment({
      namespace: ns.name,
      body: {
        metadata: { name: "ha", annotations: { "kube-prepull.io/hold": "true" } },
        spec: { replicas: 1, selector: { matchLabels: { app: "ha" } }, template: { metadata: { labels: { app: "ha" } }, spec: { containers: [{ name: "app", image }] } } },
      },
    });
    assert.equal(created.spec?.paused, true);
    await waitUntil(() => apps.readNamespacedDaemonSet({ name: prepullDaemonSetName("ha", [image]), namespace: ns.name }).catch(() => undefined),
      { what: "the leader to start the prepull" });

    const killedAt = Date.now();
    first.child.kill("SIGKILL"); // no lease hand-back: the follower must wait for it to expire
    await waitUntil(() => isLeader(second), { what: "replica-b to take over", timeoutMs: 40_000, intervalMs: 250 });
    const takeover = (Date.now() - killedAt) / 1000;
    // The follower times the 15 s lease from when it *saw* the last renewal (up to one retry
    // period, 2.4 s, after it), then needs up to one more retry period to take it: ≤ 15 + 2 × 2.4 s,
    // plus 1 s for the API calls.
    t.diagnostic(`replica-b took over ${takeover.toFixed(1)}s after replica-a was killed`);
    assert.ok(takeover <= 15 + 2 * 2.4 + 1, `took over after ${takeover.toFixed(1)}s`);
    const now = await coordination.readNamespacedLease({ name: "kube-prepull", namespace: leaseNs.name });
    assert.match(now.spec?.holderIdentity ?? "", /^replica-b_/);
    assert.ok((now.spec?.leaseTransitions ?? 0) >= 1);

    const released = await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "ha", namespace: ns.name });
      return d.spec?.paused !== true ? d : undefined;
    }, { what: "the new leader to release the hold", timeoutMs: 60_000 });
    assert.equal(decodeStatus(released.metadata?.annotations?.["kube-prepull.io/status"])?.phase, "Succeeded");
  });
});
