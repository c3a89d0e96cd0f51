// `kube-prepull status` on the local cluster (spec §5): the table, wide, JSON and YAML views of
// prepulls driven by `serve` in-process, --watch following a prepull to its end, a superseded
// prepull told by its Event, the metric and the view, and the same command as `kubectl prepull`.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { parse } from "yaml";
import type { PrepullItem } from "../../src/cli/status-view.js";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { decodeStatus } from "../../src/prepull/progress.js";
import { decodeRequest } from "../../src/prepull/request.js";
import type { RunningServe } from "../../src/serve.js";
import { createNamespace, startTestServe, testKubeConfig, testKubeconfigPath, waitForPrepullWebhook, waitUntil } from "../support/cluster.js";

const MAIN = path.join(packageRoot(), "dist", "src", "cli", "main.js");
const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);

interface Result { code: number; stdout: string; stderr: string }

function exec(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: unknown }).code) : 0, stdout, stderr });
    });
  });
}

/** `kube-prepull ARGS --kubeconfig …` as a user runs it. */
const cli = (...args: string[]): Promise<Result> => exec(process.execPath, [MAIN, ...args, "--kubeconfig", testKubeconfigPath()]);

function deployment(name: string, images: string[], annotations: Record<string, string> = {}, replicas = 1): k8s.V1Deployment {
  return {
    metadata: { name, annotations },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) } },
    },
  };
}

async function statusOf(namespace: string, name: string) {
  const d = await apps.readNamespacedDeployment({ name, namespace });
  return decodeStatus(d.metadata?.annotations?.["kube-prepull.io/status"]);
}

/** The row of `workload` in a table (its cells split on runs of 2+ spaces; MESSAGE may hold single spaces). */
function rowOf(table: string, workload: string): string[] | undefined {
  return table.split("\n").find((line) => line.split(/\s{2,}/)[0] === workload || line.split(/\s{2,}/)[1] === workload)?.split(/\s{2,}/);
}

describe("kube-prepull status on the local cluster", () => {
  let serve: RunningServe;
  let ns: { name: string; remove: () => Promise<void> };
  let nodeCount: number;

  before(async () => {
    nodeCount = (await core.listNode({ labelSelector: "type=kwok" })).items.length;
    ns = await createNamespace(kc, "status", { "kube-prepull.io/enabled": "true" });
    // Pulls slow enough to be seen in flight by several CLI runs on a loaded 2-core machine (10 s
    // was not: a CI run saw Succeeded before the first table).
    serve = await startTestServe({ name: `kube-prepull-status-${process.pid}`, pullDelay: "30s" });
    await waitForPrepullWebhook(apps, ns.name);
  });

  after(async () => {
    await serve?.stop();
    await ns?.remove();
  });

  it("shows a held prepull as a table, wide, JSON and YAML, and --watch prints its change to Succeeded", async () => {
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("web", ["example.com/shop/web:1"], { "kube-prepull.io/hold": "true" }) });
    await waitUntil(async () => (await statusOf(ns.name, "web"))?.daemonSet !== undefined, { what: "the prepull of web to start" });

    const watch = spawn(process.execPath, [MAIN, "status", "deployment/web", "-n", ns.name, "--watch", "--kubeconfig", testKubeconfigPath()], { stdio: ["ignore", "pipe", "pipe"] });
    let watched = "";
    watch.stdout.on("data", (chunk: Buffer) => (watched += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => watch.on("exit", (code) => resolve(code)));
    try {
      const table = await cli("status", "-n", ns.name);
      assert.equal(table.code, 0, table.stderr);
      const lines = table.stdout.trimEnd().split("\n");
      assert.match(lines[0]!, /^WORKLOAD\s+PHASE\s+PULLED\s+FAILED\s+HELD\s+SUPERSEDED\s+AGE\s+MESSAGE$/);
      const row = rowOf(table.stdout, "deployment/web");
      assert.ok(row, table.stdout);
      assert.deepEqual([row[1], row[2], row[3], row[4], row[5]], ["Pulling", `0/${nodeCount}`, "0", "yes", "0"]);

      const wide = await cli("status", "web", "-n", ns.name, "-o", "wide");
      assert.match(wide.stdout.split("\n")[0]!, /AGE\s+IMAGES\s+DAEMONSET\s+FAILED NODES\s+MESSAGE/);
      assert.match(wide.stdout, /deployment\/web\s.*example\.com\/shop\/web:1\s+prepull-web-[0-9a-f]+\s+<none>/);

      const json = JSON.parse((await cli("status", "deployment/web", "-n", ns.name, "-o", "json")).stdout) as { items: PrepullItem[] };
      assert.equal(json.items.length, 1);
      assert.deepEqual([json.items[0]!.kind, json.items[0]!.name, json.items[0]!.held, json.items[0]!.status.phase], ["Deployment", "web", true, "Pulling"]);
      const yaml = parse((await cli("status", "deploy/web", "-n", ns.name, "-o", "yaml")).stdout) as { items: PrepullItem[] };
      assert.deepEqual(yaml.items[0]!.status.images, ["example.com/shop/web:1"]);

      // The watch printed the table, then prints the change when the pull ends.
      await waitUntil(() => Promise.resolve(/^deployment\/web\s+Succeeded\s+(\d+)\/\1\s+0\s/m.test(watched)), { what: "the watch to print Succeeded", timeoutMs: 90_000 });
      assert.match(watched, /^WORKLOAD\s+PHASE/);
      assert.match(watched.split("\n")[1]!, /^deployment\/web\s+Pulling\s/);
    } finally {
      watch.kill("SIGTERM");
    }
    assert.equal(await exited, 0, "Ctrl-C/SIGTERM ends a watch normally");
  });

  it("names each failed node's reason in wide and JSON", async () => {
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment("broken", ["registry.invalid/shop/app:1"], { "kube-prepull.io/hold": "true" }) });
    await waitUntil(async () => (await statusOf(ns.name, "broken"))?.phase === "Failed", { what: "the prepull of broken to fail", timeoutMs: 90_000 });
    const json = JSON.parse((await cli("status", "broken", "-n", ns.name, "-o", "json")).stdout) as { items: PrepullItem[] };
    const failures = json.items[0]!.status.failures ?? [];
    assert.equal(failures.reduce((n, f) => n + f.count, 0), nodeCount, JSON.stringify(failures));
    const named = failures.flatMap((f) => f.nodes).sort();
    const kwok = (await core.listNode({ labelSelector: "type=kwok" })).items.map((n) => n.metadata!.name!).sort();
    assert.deepEqual(named, kwok, "every failed node named (fewer than 20)");
    const wide = await cli("status", "deployment/broken", "-n", ns.name, "-o", "wide");
    const row = rowOf(wide.stdout, "deployment/broken")!;
    assert.equal(row[1], "Failed");
    assert.match(row[9]!, /^(ErrImagePull|ImagePullBackOff): kwok-node-/);
    for (const node of kwok) assert.ok(row[9]!.includes(node), `${node} in ${row[9]}`);
  });

  it("reports a superseded prepull by its Event, the metric and the view, while the status follows the newest request", async () => {
    const supersededCount = async (): Promise<number> => {
      const metrics = await (await fetch(`http://127.0.0.1:${serve.opsPort}/metrics`)).text();
      const sample = /^kube_prepull_prepulls_total\{result="Superseded"\} (\d+)$/m.exec(metrics);
      assert.ok(sample, "the Superseded series is exported");
      return Number(sample[1]);
    };
    // Paused by its user and one node at a time: the first prepull is still pulling when the images change.
    const body = deployment("moving", ["example.com/shop/api:1"], { "kube-prepull.io/max-parallel": "1" });
    body.spec!.paused = true;
    const created = await apps.createNamespacedDeployment({ namespace: ns.name, body });
    const first = decodeRequest(created.metadata?.annotations?.["kube-prepull.io/request"]);
    await waitUntil(async () => (await statusOf(ns.name, "moving"))?.phase === "Pulling", { what: "the first prepull to pull" });
    // serve also acts for other test files' namespaces running at the same time: count from here.
    const supersededBefore = await supersededCount();
    await apps.patchNamespacedDeployment({ name: "moving", namespace: ns.name, body: { spec: { template: { spec: { containers: [{ name: "c0", image: "example.com/shop/api:2" }] } } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch));
    const status = await waitUntil(async () => {
      const s = await statusOf(ns.name, "moving");
      return s?.superseded ? s : undefined;
    }, { what: "the new prepull's status" });
    assert.deepEqual(status.images, ["example.com/shop/api:2"], "the status is the newest request's");
    assert.notEqual(status.phase, "Superseded");
    assert.deepEqual([status.superseded?.count, status.superseded?.request, status.superseded?.images], [1, first?.id, ["example.com/shop/api:1"]]);

    const events = await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: "involvedObject.name=moving,involvedObject.kind=Deployment,reason=PrepullSuperseded" });
    assert.equal(events.items.length, 1);
    assert.match(events.items[0]!.message ?? "", /^prepull of example\.com\/shop\/api:1 \(\d+\/\d+ nodes pulled\) superseded by a newer image change: example\.com\/shop\/api:2$/);

    assert.ok(await supersededCount() >= supersededBefore + 1, "kube_prepull_prepulls_total{result=\"Superseded\"} counted it");

    const table = await cli("status", "deployment/moving", "-n", ns.name);
    assert.match(rowOf(table.stdout, "deployment/moving")?.[5] ?? "", /^1 \(\d+s ago\)$/, table.stdout);
  });

  it("runs as `kubectl prepull status`, a kubectl plugin on PATH, and says so in its usage and errors", async () => {
    // What `npm install` makes of the package's bin entry kubectl-prepull: a link to main.js, executable.
    chmodSync(MAIN, 0o755);
    const dir = mkdtempSync(path.join(tmpdir(), "kubectl-prepull-"));
    try {
      symlinkSync(MAIN, path.join(dir, "kubectl-prepull"));
      const kubectl = path.join(process.env.KUBE_PREPULL_TEST_BIN_DIR ?? "", "kubectl");
      const env = { PATH: `${dir}:${path.dirname(process.execPath)}:${process.env.PATH ?? ""}`, KUBECONFIG: testKubeconfigPath() };
      const table = await exec(kubectl, ["prepull", "status", "-n", ns.name], env);
      assert.equal(table.code, 0, table.stderr);
      assert.equal(rowOf(table.stdout, "deployment/web")?.[1], "Succeeded", table.stdout);
      const help = await exec(kubectl, ["prepull", "status", "--help"], env);
      assert.match(help.stdout, /^Usage: kubectl prepull status \[options\] \[workload\]/);
      const missing = await exec(kubectl, ["prepull", "status", "deployment/nope", "-n", ns.name], env);
      assert.equal(missing.code, 6);
      assert.match(missing.stderr, new RegExp(`^kubectl prepull: no deployment/nope in namespace ${ns.name}`));
      const list = await exec(kubectl, ["plugin", "list"], env);
      assert.match(list.stdout, /kubectl-prepull/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("needs only namespaced list on the kinds it shows: others are left out with a warning; -A needs a cluster-wide list", async () => {
    // A ServiceAccount that may list and watch Deployments in the namespace, nothing else.
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: "viewer" } } });
    await rbac.createNamespacedRole({ namespace: ns.name, body: { metadata: { name: "viewer" }, rules: [{ apiGroups: ["apps"], resources: ["deployments"], verbs: ["list", "watch"] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: ns.name, body: {
      metadata: { name: "viewer" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "viewer" },
      subjects: [{ kind: "ServiceAccount", name: "viewer", namespace: ns.name }],
    } });
    const token = (await core.createNamespacedServiceAccountToken({ name: "viewer", namespace: ns.name, body: { spec: { audiences: [], expirationSeconds: 600 } } })).status?.token;
    const cluster = kc.getCurrentCluster()!;
    const dir = mkdtempSync(path.join(tmpdir(), "kube-prepull-viewer-"));
    const kubeconfig = path.join(dir, "kubeconfig");
    writeFileSync(kubeconfig, JSON.stringify({
      apiVersion: "v1", kind: "Config", "current-context": "viewer",
      clusters: [{ name: "c", cluster: { server: cluster.server, ...(cluster.caData ? { "certificate-authority-data": cluster.caData } : { "certificate-authority": cluster.caFile }) } }],
      users: [{ name: "viewer", user: { token } }],
      contexts: [{ name: "viewer", context: { cluster: "c", user: "viewer", namespace: ns.name } }],
    }));
    try {
      const viewer = (...args: string[]): Promise<Result> => exec(process.execPath, [MAIN, ...args, "--kubeconfig", kubeconfig]);
      const table = await waitUntil(async () => {
        const r = await viewer("status");
        return r.code === 0 ? r : undefined;
      }, { what: "the viewer's RBAC to apply" });
      assert.equal(rowOf(table.stdout, "deployment/web")?.[1], "Succeeded", "the context's namespace");
      for (const resource of ["statefulsets", "daemonsets", "jobs", "cronjobs"]) {
        assert.match(table.stderr, new RegExp(`warning: cannot list ${resource} in namespace ${ns.name}: .*forbidden.*; not shown`));
      }
      const named = await viewer("status", "deployment/web", "-o", "json");
      assert.equal(named.stderr, "", "a TYPE/NAME lists that kind only");
      const everywhere = await viewer("status", "-A");
      assert.equal(everywhere.code, 5);
      assert.match(everywhere.stderr, /^kube-prepull: cannot list deployments in any namespace: .*forbidden/);
      // The admin may list everywhere: a NAMESPACE column, and web's row under its namespace.
      const admin = await cli("status", "-A");
      assert.equal(admin.code, 0, admin.stderr);
      assert.match(admin.stdout.split("\n")[0]!, /^NAMESPACE\s+WORKLOAD\s+PHASE\s+PULLED\s/);
      const web = admin.stdout.split("\n").map((line) => line.split(/\s{2,}/)).find((cells) => cells[0] === ns.name && cells[1] === "deployment/web");
      assert.deepEqual(web?.slice(2, 4), ["Succeeded", `${nodeCount}/${nodeCount}`], admin.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says when a workload has no prepull status yet, and exits 6", async () => {
    const other = await createNamespace(kc, "status-plain");
    try {
      await apps.createNamespacedDeployment({ namespace: other.name, body: deployment("plain", ["example.com/plain:1"]) });
      const result = await cli("status", "plain", "-n", other.name);
      assert.equal(result.code, 6);
      assert.match(result.stderr, /deployment\/plain in namespace .* has no prepull status yet/);
      const empty = await cli("status", "-n", other.name);
      assert.deepEqual([empty.code, empty.stdout, empty.stderr.trim()], [0, "", `No prepulls found in ${other.name} namespace.`]);
    } finally {
      await other.remove();
    }
  });
});
