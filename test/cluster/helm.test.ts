// The Helm chart on the local cluster with the real, pinned helm: `helm install` (every object
// validated server-side) into the namespace docs/install.md creates; the release's ServiceAccount
// runs a held prepull; `helm upgrade` with changed values lands them and keeps the caBundle
// kube-prepull injected; and docs/install.md's uninstall, run as written, leaves no workload held
// and no prepull DaemonSet. As in install.test.ts, `serve` runs as local processes authenticated
// only by the release's ServiceAccount token behind a balancer (no pod can run the webhook image
// here), which the release reaches through `webhook.url`; the release's own pods are simulated.
// Installs the cluster-scoped objects named kube-prepull: `after` removes everything again.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { parse, parseAllDocuments } from "yaml";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { SYSTEM_ANNOTATIONS } from "../../src/prepull/annotations.js";
import { prepullDaemonSetName } from "../../src/prepull/daemonset.js";
import { decodeStatus } from "../../src/prepull/progress.js";
import { apiErrorCode, createNamespace, kubectl, testKubeConfig, waitForPrepullWebhook, waitUntil } from "../support/cluster.js";
import { CHART_DIR, helm, helmEnv, setJsonArgs } from "../support/helm.js";
import { isReady, serviceAccountKubeconfigFile, startBalancer, startReplica, stopReplicas, type Replica } from "../support/replicas.js";

const run = promisify(execFile);
const admin = testKubeConfig();
const apps = admin.makeApiClient(k8s.AppsV1Api);
const core = admin.makeApiClient(k8s.CoreV1Api);
const admission = admin.makeApiClient(k8s.AdmissionregistrationV1Api);
const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
const NS = "kube-prepull";
const PULL_DELAY = { "sim.kube-prepull.io/pull-delay": "8s" };

/** The shell blocks docs/install.md marks as run by this test, in order. */
function docBlocks(): string[] {
  const doc = readFileSync(path.join(packageRoot(), "docs", "install.md"), "utf8");
  const marked = /<!-- test\/cluster\/helm\.test\.ts runs this block as it is -->\n```sh\n([\s\S]*?)```/g;
  return [...doc.matchAll(marked)].map((m) => m[1]!);
}

/** Runs a block of the docs with bash, as a reader would paste it (helm and kubectl on PATH). */
async function runDocBlock(block: string, timeoutMs: number): Promise<string> {
  const { stdout, stderr } = await run("bash", ["-e", "-c", block], { env: helmEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  return stdout + stderr;
}

/** The release's `serve` arguments, run outside the cluster: 127.0.0.1 and free ports, the SA's kubeconfig. */
async function releaseServeArgs(kubeconfig: string): Promise<string[]> {
  const deployment = await apps.readNamespacedDeployment({ name: "kube-prepull", namespace: NS });
  const args = deployment.spec!.template.spec!.containers[0]!.args!;
  assert.equal(args[0], "serve");
  return [
    ...args.slice(1).filter((a) => !/^--(host|port|ops-port)=/.test(a)).map((a) => a.replace("$(POD_NAMESPACE)", NS)),
    "--kubeconfig", kubeconfig,
  ];
}

const caBundles = async (): Promise<string[]> => {
  const mutating = await admission.readMutatingWebhookConfiguration({ name: "kube-prepull" });
  const validating = await admission.readValidatingWebhookConfiguration({ name: "kube-prepull" });
  return [...mutating.webhooks!, ...validating.webhooks!].map((w) => w.clientConfig.caBundle ?? "");
};

const heldDeployment = (name: string, image: string): k8s.V1Deployment => ({
  metadata: { name, annotations: { "kube-prepull.io/hold": "true" } },
  spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image }] } } },
});

const notFound = (read: () => Promise<unknown>): Promise<boolean> => read().then(() => false, (e: unknown) => apiErrorCode(e) === 404);

/** Removes the release and everything it made, whatever state an earlier run left. */
async function removeEverything(): Promise<void> {
  await helm(["uninstall", "kube-prepull", "-n", NS, "--ignore-not-found"], { cluster: true }).catch(() => undefined);
  await kubectl(["delete", "--ignore-not-found", "mutatingwebhookconfiguration,validatingwebhookconfiguration,clusterrole,clusterrolebinding", "kube-prepull"]).catch(() => undefined);
  await kubectl(["delete", "--ignore-not-found", "--wait=true", "--timeout=120s", "namespace", NS]).catch(() => undefined);
}

describe("the Helm chart on the local cluster", () => {
  const replicas: Replica[] = [];
  const namespaces: Array<{ name: string; remove: () => Promise<void> }> = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), "kube-prepull-helm-test-"));
  let balancer: { port: number; close: () => Promise<void> } | undefined;
  let team: string;

  const startReleaseReplicas = async (): Promise<void> => {
    const args = await releaseServeArgs(await serviceAccountKubeconfigFile(dir));
    replicas.push(...await Promise.all([startReplica("helm-a", args), startReplica("helm-b", args)]));
    await waitUntil(async () => (await Promise.all(replicas.map(isReady))).every(Boolean), { what: "both replicas to be ready", timeoutMs: 30_000 });
  };
  const stopAll = async (): Promise<void> => {
    await stopReplicas(replicas);
    if (process.env.KUBE_PREPULL_TEST_LOG) for (const r of replicas) writeFileSync(path.join(os.tmpdir(), `kube-prepull-${r.name}.log`), r.output());
    replicas.length = 0;
  };
  const releaseValues = (): Record<string, unknown> => ({
    "webhook.url": `https://127.0.0.1:${balancer!.port}`,
    "certificates.selfManaged.extraSANs": ["127.0.0.1"],
    // The release's own pods stay on simulated nodes (kwok runs them; nothing pulls the image).
    nodeSelector: { type: "kwok" },
    "serve.prepullPod.annotations": PULL_DELAY,
  });

  before(async () => {
    await removeEverything();
    balancer = await startBalancer(() => replicas.map((r) => r.admissionPort));
  });
  after(async () => {
    await stopAll();
    await balancer?.close();
    for (const ns of namespaces) await ns.remove();
    await removeEverything();
    rmSync(dir, { recursive: true, force: true });
  });

  it("installs into the namespace docs/install.md creates, every object validated by the API server", async () => {
    const [createNamespaceBlock] = docBlocks();
    assert.ok(createNamespaceBlock, "docs/install.md marks the namespace block");
    await runDocBlock(createNamespaceBlock, 30_000);
    const base = parse(readFileSync(path.join(packageRoot(), "manifests", "base", "namespace.yaml"), "utf8")) as k8s.V1Namespace;
    const created = await core.readNamespace({ name: NS });
    assert.deepEqual(created.metadata!.labels, { ...base.metadata!.labels, "kubernetes.io/metadata.name": NS });

    const install = ["install", "kube-prepull", CHART_DIR, "-n", NS, ...setJsonArgs(releaseValues())];
    // A server-side dry run first: the API server validates every object and persists none.
    await helm([...install, "--dry-run=server"], { cluster: true });
    assert.equal(await notFound(() => rbac.readClusterRole({ name: "kube-prepull" })), true, "a dry run creates nothing");
    await helm(install, { cluster: true });
    const status = JSON.parse((await helm(["status", "kube-prepull", "-n", NS, "-o", "json"], { cluster: true })).stdout) as { info: { status: string }; version: number };
    assert.deepEqual([status.info.status, status.version], ["deployed", 1]);
    // Every object of the release exists.
    const { stdout: manifest } = await helm(["get", "manifest", "kube-prepull", "-n", NS], { cluster: true });
    const { stdout } = await kubectl(["get", "-f", "-", "-o", "name"], manifest);
    const rendered = parseAllDocuments(manifest).filter((d) => d.toJS() !== null).length;
    assert.equal(rendered, 14);
    assert.equal(stdout.trim().split("\n").length, rendered, stdout);
  });

  it("runs a held prepull as the release's ServiceAccount", async () => {
    await startReleaseReplicas();
    const ns = await createNamespace(admin, "helm", { "kube-prepull.io/enabled": "true" });
    namespaces.push(ns);
    team = ns.name;
    await waitForPrepullWebhook(apps, team);
    const image = "example.com/team/helm:1";
    const created = await apps.createNamespacedDeployment({ namespace: team, body: heldDeployment("web", image) });
    assert.equal(created.spec?.paused, true);
    const daemonSet = await waitUntil(() => apps.readNamespacedDaemonSet({ name: prepullDaemonSetName("web", [image]), namespace: team }).catch(() => undefined),
      { what: "the prepull DaemonSet" });
    // serve.prepullPod.annotations reached the prepull pods.
    assert.equal(daemonSet.spec?.template.metadata?.annotations?.["sim.kube-prepull.io/pull-delay"], PULL_DELAY["sim.kube-prepull.io/pull-delay"]);
    const released = await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "web", namespace: team });
      return d.spec?.paused !== true ? d : undefined;
    }, { what: "the hold to be released", timeoutMs: 60_000 });
    assert.equal(decodeStatus(released.metadata?.annotations?.[SYSTEM_ANNOTATIONS.status])?.phase, "Succeeded");
  });

  it("upgrades with changed values: they land, the injected caBundle stays, admission still works", async () => {
    const injected = await caBundles();
    assert.ok(injected.every((b) => b !== "" && b === injected[0]), "self-managed certificates injected one CA everywhere");
    // The old pods go away in a rollout; with no replica running, nothing could re-inject the CA.
    await stopAll();
    await helm(["upgrade", "kube-prepull", CHART_DIR, "-n", NS, "--reuse-values",
      ...setJsonArgs({ "serve.prepullPod.labels": { "example.com/release": "upgraded" }, "webhook.timeoutSeconds": 3 })], { cluster: true });
    assert.deepEqual(await caBundles(), injected, "helm upgrade (server-side apply, Helm 4's default) kept the caBundle kube-prepull injected");
    // And Helm 3's way, a three-way merge patch.
    await helm(["upgrade", "kube-prepull", CHART_DIR, "-n", NS, "--reuse-values", "--server-side=false", "--set", "webhook.timeoutSeconds=4"], { cluster: true });
    assert.deepEqual(await caBundles(), injected, "helm upgrade --server-side=false kept the caBundle kube-prepull injected");
    const deployment = await apps.readNamespacedDeployment({ name: "kube-prepull", namespace: NS });
    const args = deployment.spec!.template.spec!.containers[0]!.args!;
    assert.ok(args.includes("--prepull-pod-label=example.com/release=upgraded"), args.join(" "));
    assert.ok(args.includes(`--tls-san=127.0.0.1`), "--reuse-values kept the install's values");
    const mutating = await admission.readMutatingWebhookConfiguration({ name: "kube-prepull" });
    assert.ok(mutating.webhooks!.every((w) => w.timeoutSeconds === 4));

    await startReleaseReplicas(); // the new pods
    const image = "example.com/team/helm:2";
    await apps.patchNamespacedDeployment({ name: "web", namespace: team, body: [{ op: "replace", path: "/spec/template/spec/containers/0/image", value: image }] },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch));
    const daemonSet = await waitUntil(() => apps.readNamespacedDaemonSet({ name: prepullDaemonSetName("web", [image]), namespace: team }).catch(() => undefined),
      { what: "the prepull DaemonSet after the upgrade" });
    assert.equal(daemonSet.spec?.template.metadata?.labels?.["example.com/release"], "upgraded");
    await waitUntil(async () => (await apps.readNamespacedDeployment({ name: "web", namespace: team })).spec?.paused !== true,
      { what: "the hold to be released after the upgrade", timeoutMs: 60_000 });
  });

  it("uninstalls as docs/install.md says, leaving no workload held and no prepull DaemonSet", async () => {
    const image = "example.com/team/late:1";
    const created = await apps.createNamespacedDeployment({ namespace: team, body: heldDeployment("late", image) });
    assert.equal(created.spec?.paused, true, "held when uninstalling starts");
    await waitUntil(() => apps.readNamespacedDaemonSet({ name: prepullDaemonSetName("late", [image]), namespace: team }).catch(() => undefined),
      { what: "the prepull DaemonSet" });

    const [, uninstallBlock = ""] = docBlocks();
    assert.ok(uninstallBlock.includes("helm uninstall"), "docs/install.md marks the uninstall block");
    await runDocBlock(uninstallBlock, 300_000);
    await stopAll(); // the release's pods are gone with it

    for (const name of ["web", "late"]) {
      const d = await apps.readNamespacedDeployment({ name, namespace: team });
      assert.notEqual(d.spec?.paused, true, `${name} is not paused`);
      assert.equal(d.metadata?.annotations?.[SYSTEM_ANNOTATIONS.heldBy], undefined, `${name} carries no held-by`);
    }
    assert.deepEqual((await apps.listNamespacedDaemonSet({ namespace: team })).items.map((d) => d.metadata?.name), []);
    const { stdout } = await helm(["list", "-A", "-o", "json"], { cluster: true });
    assert.ok(!(JSON.parse(stdout) as Array<{ name: string }>).some((r) => r.name === "kube-prepull"), stdout);
    assert.equal(await notFound(() => admission.readMutatingWebhookConfiguration({ name: "kube-prepull" })), true);
    assert.equal(await notFound(() => admission.readValidatingWebhookConfiguration({ name: "kube-prepull" })), true);
    assert.equal(await notFound(() => rbac.readClusterRole({ name: "kube-prepull" })), true);
    assert.equal(await notFound(() => core.readNamespace({ name: NS })), true);
  });
});
