// Persistent API errors (issue 15 item 5, docs/architecture.md#api-errors): a prepull DaemonSet the
// API server keeps refusing. `serve` runs as a child process whose every API request goes through a
// counting proxy (test/support/request-counter.ts), so the cost of the failure is counted in
// requests. Two refusals of the real apiserver:
//   - a ResourceQuota of 0 DaemonSets (403 Forbidden, will not heal by itself): Failed at once with
//     the quota's message, the hold released, one Warning Event, one create;
//   - a third-party webhook on DaemonSets that is down with failurePolicy Fail (500, may heal):
//     retried with per-key exponential backoff until the hold deadline (30 s), then Failed;
//   - a serve running as a ServiceAccount with the manifests' RBAC minus `create daemonsets` (403).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { renderWebhookConfigurations, WEBHOOK_TIMEOUT_SECONDS } from "../../src/admission/webhook-configuration.js";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { decodeStatus, type PrepullStatus } from "../../src/prepull/progress.js";
import { generateLocalTls } from "../../src/serve.js";
import { createNamespace, kubectl, scopeWebhooksTo, testKubeConfig, waitForPrepullWebhook, waitUntil } from "../support/cluster.js";
import { freePort } from "../support/prometheus.js";
import { isReady, startReplica, stopReplicas, type Replica } from "../support/replicas.js";
import { startRequestCounter, type RequestCounter } from "../support/request-counter.js";

const kc = testKubeConfig();
const apps = kc.makeApiClient(k8s.AppsV1Api);
const core = kc.makeApiClient(k8s.CoreV1Api);
const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
const WEBHOOK = `kube-prepull-errors-${process.pid}`;
const BROKEN = `kube-prepull-test-broken-${process.pid}`;

function heldDeployment(name: string, holdTimeout?: string): k8s.V1Deployment {
  return {
    metadata: { name, annotations: { "kube-prepull.io/hold": "true", ...(holdTimeout ? { "kube-prepull.io/hold-timeout": holdTimeout } : {}) } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image: `example.com/${name}:1` }] } },
    },
  };
}

const statusOf = (d: k8s.V1Deployment): PrepullStatus | undefined => decodeStatus(d.metadata?.annotations?.["kube-prepull.io/status"]);

async function finished(namespace: string, name: string, timeoutMs: number): Promise<k8s.V1Deployment> {
  let seen: k8s.V1Deployment | undefined;
  await waitUntil(async () => {
    seen = await apps.readNamespacedDeployment({ namespace, name });
    return statusOf(seen)?.phase === "Failed" && seen.metadata?.annotations?.["kube-prepull.io/held-by"] === undefined;
  }, { what: `${namespace}/${name} Failed and released`, timeoutMs });
  return seen!;
}

async function warnings(namespace: string, name: string): Promise<k8s.CoreV1Event[]> {
  const events = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name},type=Warning` });
  return events.items;
}

describe("persistent API errors on the prepull DaemonSet", () => {
  let dir: string;
  let counter: RequestCounter;
  let replica: Replica | undefined;
  let quota: { name: string; remove: () => Promise<void> };
  let broken: { name: string; remove: () => Promise<void> };
  let churn: { name: string; remove: () => Promise<void> };
  const creates = (namespace: string): number[] =>
    counter.requests().filter((r) => r.method === "POST" && r.path === `/apis/apps/v1/namespaces/${namespace}/daemonsets`).map((r) => r.at);

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "kube-prepull-errors-"));
    counter = await startRequestCounter(dir);
    quota = await createNamespace(kc, "quota");
    broken = await createNamespace(kc, "broken");
    churn = await createNamespace(kc, "churn");
    await core.createNamespacedResourceQuota({ namespace: quota.name, body: { metadata: { name: "no-daemonsets" }, spec: { hard: { "count/daemonsets.apps": "0" } } } });
    // Until the quota controller has filled in its status, admission refuses with "status unknown".
    await waitUntil(async () => (await core.readNamespacedResourceQuota({ namespace: quota.name, name: "no-daemonsets" })).status?.hard !== undefined, { what: "the quota's status" });
    await admission.createValidatingWebhookConfiguration({
      body: {
        metadata: { name: BROKEN },
        webhooks: [{
          name: "broken.daemonsets.example.com",
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          failurePolicy: "Fail",
          timeoutSeconds: 1,
          namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [broken.name] }] },
          clientConfig: { url: `https://127.0.0.1:${await freePort()}/validate` },
          rules: [{ apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE"], resources: ["daemonsets"], scope: "Namespaced" }],
        }],
      },
    });
    replica = await startReplica("errors", ["--kubeconfig", counter.kubeconfig, "--register", "--webhook-name", WEBHOOK, "--no-leader-elect", "--log-level", "warn"]);
    await scopeWebhooksTo(kc, WEBHOOK, quota.name, broken.name);
    await waitForPrepullWebhook(apps, quota.name);
    await waitForPrepullWebhook(apps, broken.name);
  });
  after(async () => {
    // Every request serve made, by verb and resource (watches count once, when opened).
    const byKind = new Map<string, number>();
    for (const r of counter.requests()) {
      const resource = /\/([a-z]+)(?:\/[^/]+)?$/.exec(r.path.replace(/\/namespaces\/[^/]+(?=\/)/, ""))?.[1] ?? r.path;
      byKind.set(`${r.method} ${resource}`, (byKind.get(`${r.method} ${resource}`) ?? 0) + 1);
    }
    console.log(`serve's requests: ${[...byKind].sort().map(([k, n]) => `${k} ${n}`).join(", ")}`);
    if (replica) await stopReplicas([replica]);
    await kubectl(["delete", "--ignore-not-found", "mutatingwebhookconfiguration,validatingwebhookconfiguration", WEBHOOK]).catch(() => undefined);
    await kubectl(["delete", "--ignore-not-found", "validatingwebhookconfiguration", BROKEN]).catch(() => undefined);
    await counter.stop();
    await quota.remove();
    await broken.remove();
    await churn.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a quota of 0 DaemonSets (403): Failed at once with the quota's message, the hold released, one Warning, one create", async () => {
    const start = Date.now();
    await apps.createNamespacedDeployment({ namespace: quota.name, body: heldDeployment("web") });
    const done = await finished(quota.name, "web", 20_000);
    const failedAfterMs = Date.now() - start;
    const status = statusOf(done)!;
    assert.match(status.message ?? "", /^could not create daemonset\/prepull-web-[0-9a-f]+: daemonsets\.apps "prepull-web-[0-9a-f]+" is forbidden: exceeded quota: no-daemonsets/);
    assert.notEqual(done.spec!.paused, true, "the rollout is no longer paused");
    // Leave time for a hot loop to show.
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    const events = await warnings(quota.name, "web");
    assert.deepEqual(events.map((e) => e.reason), ["PrepullFailed"]);
    assert.equal(events[0]!.count ?? 1, 1);
    assert.equal(events[0]!.message, status.message);
    const count = creates(quota.name).length;
    console.log(`quota: Failed after ${(failedAfterMs / 1000).toFixed(1)} s; DaemonSet creates in ${((Date.now() - start) / 1000).toFixed(0)} s: ${count}`);
    assert.equal(count, 1, "an error that will not heal is not retried");
  });

  it("a DaemonSet webhook that is down (500): retried with exponential backoff, Failed at the hold deadline with its message", async () => {
    // Meanwhile another team's Deployment changes every 0.5 s: workload events elsewhere must not
    // retry the failing prepull (they did, past its backoff: the 1–2 s loop of issue 15).
    await apps.createNamespacedDeployment({ namespace: churn.name, body: { ...heldDeployment("other"), metadata: { name: "other" } } });
    let ticks = 0;
    const ticking = setInterval(() => {
      const body = { metadata: { annotations: { "example.com/tick": String(++ticks) } } };
      apps.patchNamespacedDeployment({ namespace: churn.name, name: "other", body }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch)).catch(() => undefined);
    }, 500);
    const start = Date.now();
    await apps.createNamespacedDeployment({ namespace: broken.name, body: heldDeployment("api", "30s") });
    const done = await finished(broken.name, "api", 45_000).finally(() => clearInterval(ticking));
    const failedAfterMs = Date.now() - start;
    const status = statusOf(done)!;
    assert.match(status.message ?? "", /^could not create daemonset\/prepull-api-[0-9a-f]+ within 30s: Internal error occurred: failed calling webhook "broken\.daemonsets\.example\.com"/);
    assert.ok(failedAfterMs >= 29_000 && failedAfterMs <= 40_000, `Failed at the 30 s deadline, not before nor long after (${failedAfterMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    assert.deepEqual((await warnings(broken.name, "api")).map((e) => e.reason), ["PrepullFailed"]);
    const times = creates(broken.name);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    console.log(`webhook down: Failed after ${(failedAfterMs / 1000).toFixed(1)} s; ${ticks} other workload changes; ${times.length} DaemonSet creates, gaps ${gaps.map((g) => (g / 1000).toFixed(2)).join(", ")} s`);
    // 5 ms doubling: 13 tries in 30 s; a retry every 1–2 s would be 15–30.
    assert.ok(times.length >= 5 && times.length <= 15, `${times.length} creates in 30 s`);
    assert.ok(gaps.at(-1)! >= 5_000 && gaps.at(-2)! >= 2_500, "the gaps between tries grow");
    assert.ok(times.at(-1)! <= start + 30_000, "no create after the deadline");
  });
});

/**
 * manifests/base/rbac.yaml for ServiceAccount `sa` of `namespace` (its Roles there, the ClusterRole
 * and its binding renamed with `suffix`), with `create` on DaemonSets removed: RBAC taken away.
 */
function rbacWithoutDaemonSetCreate(namespace: string, sa: string, suffix: string): k8s.KubernetesObject[] {
  const text = readFileSync(path.join(packageRoot(), "manifests", "base", "rbac.yaml"), "utf8");
  const docs = parseAllDocuments(text).map((d) => d.toJS() as k8s.V1ClusterRole & k8s.V1ClusterRoleBinding);
  return docs.filter((o) => o.kind !== "ServiceAccount").map((o) => {
    const cluster = o.kind!.startsWith("Cluster");
    const metadata = { name: `${o.metadata!.name}-${suffix}`, ...(cluster ? {} : { namespace }) };
    if (o.kind!.endsWith("Binding")) return { ...o, metadata, roleRef: { ...o.roleRef, name: `${o.roleRef.name}-${suffix}` }, subjects: [{ kind: "ServiceAccount", name: sa, namespace }] };
    const rules = o.rules!.map((r) => (r.resources?.includes("daemonsets") ? { ...r, verbs: r.verbs.filter((v) => v !== "create") } : r));
    return { ...o, metadata, rules };
  });
}

describe("a serve whose RBAC lost `create daemonsets` (403)", () => {
  const suffix = `test-limited-${process.pid}`;
  const name = `kube-prepull-${suffix}`;
  let dir: string;
  let ns: { name: string; remove: () => Promise<void> };
  let counter: RequestCounter;
  let replica: Replica | undefined;
  let objects: k8s.KubernetesObject[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "kube-prepull-rbac-"));
    ns = await createNamespace(kc, "rbac");
    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: "limited" } } });
    objects = rbacWithoutDaemonSetCreate(ns.name, "limited", suffix);
    await kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
    const token = (await kubectl(["create", "token", "limited", "-n", ns.name, "--duration=1h"])).stdout.trim();
    counter = await startRequestCounter(dir, { token });
    const tls = generateLocalTls("127.0.0.1", new Date());
    for (const [file, pem] of [["tls.crt", tls.certPem], ["tls.key", tls.keyPem]]) writeFileSync(path.join(dir, file!), pem!, { mode: 0o600 });
    replica = await startReplica("limited", ["--kubeconfig", counter.kubeconfig, "--tls-cert-file", path.join(dir, "tls.crt"), "--tls-key-file", path.join(dir, "tls.key"),
      "--namespace", ns.name, "--no-leader-elect", "--log-level", "warn"]);
    // The ServiceAccount may not register webhooks: the test does, as an installer would.
    const { mutating, validating } = renderWebhookConfigurations({ name, mode: "opt-in", ownNamespace: "kube-prepull", target: { url: `https://127.0.0.1:${replica.admissionPort}`, caBundlePem: tls.caPem }, timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS });
    await admission.createMutatingWebhookConfiguration({ body: mutating });
    await admission.createValidatingWebhookConfiguration({ body: validating });
    await scopeWebhooksTo(kc, name, ns.name);
    await waitForPrepullWebhook(apps, ns.name);
    await waitUntil(() => isReady(replica!), { what: "the limited serve's caches synced (its RBAC lets it watch)" });
  });
  after(async () => {
    if (replica) await stopReplicas([replica]);
    await kubectl(["delete", "--ignore-not-found", "mutatingwebhookconfiguration,validatingwebhookconfiguration", name]).catch(() => undefined);
    for (const o of objects.filter((x) => x.kind!.startsWith("Cluster"))) await kubectl(["delete", "--ignore-not-found", o.kind!.toLowerCase(), o.metadata!.name!]).catch(() => undefined);
    await counter?.stop();
    await ns.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it("fails at once with the RBAC message, releases the hold, one Warning, one create", async () => {
    const start = Date.now();
    await apps.createNamespacedDeployment({ namespace: ns.name, body: heldDeployment("web") });
    const done = await finished(ns.name, "web", 20_000);
    const status = statusOf(done)!;
    assert.match(status.message ?? "", new RegExp(`^could not create daemonset/prepull-web-[0-9a-f]+: .*"system:serviceaccount:${ns.name}:limited" cannot create resource "daemonsets"`));
    assert.notEqual(done.spec!.paused, true);
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    assert.deepEqual((await warnings(ns.name, "web")).map((e) => e.reason), ["PrepullFailed"]);
    const creates = counter.requests().filter((r) => r.method === "POST" && r.path === `/apis/apps/v1/namespaces/${ns.name}/daemonsets`).length;
    console.log(`rbac: DaemonSet creates in ${((Date.now() - start) / 1000).toFixed(0)} s: ${creates}`);
    assert.equal(creates, 1);
  });
});
