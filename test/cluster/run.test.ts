// `kube-prepull run` on the local cluster, as a CI job runs it: the compiled CLI as a child
// process against 100 simulated nodes of its own (spec §5): progress to 100/100 and exit 0, pull
// failures on some nodes, the timeout, Ctrl-C, nodes that already have the image, the documented
// permissions (manifests/ci/run-rbac.yaml), and DaemonSets left behind by a crashed run.
//
// The 100 nodes carry their own label and a NoSchedule taint (and not the shared nodes' `type=kwok`
// label), and are deleted at the end: other test files neither count nor use them.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { createNodes } from "../../src/local-cluster/nodes.js";
import { renderRunDaemonSet, runImages, type RunSpec, type RunSummary } from "../../src/prepull/run.js";
import type { RunningServe } from "../../src/serve.js";
import { createNamespace, kubectl, startTestServe, TEST_HELPER_IMAGE, testKubeConfig, testKubeconfigPath, waitForSchedulableNodes, waitUntil } from "../support/cluster.js";
import { startMain, type Finished } from "../support/cli.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
const POOL = `run-${process.pid}`;
const NODES = 100;
const TAINT: k8s.V1Taint = { key: "kube-prepull.io/test-pool", value: POOL, effect: "NoSchedule" };
const RUN_SELECTOR = "kube-prepull.io/run";

/** `kube-prepull run` on this file's pool, in `namespace`, as a child process. */
function startRun(namespace: string, args: string[], kubeconfig = testKubeconfigPath()): ReturnType<typeof startMain> {
  return startMain(["run", ...args, "--kubeconfig", kubeconfig, "-n", namespace,
    "--node-selector", `pool=${POOL}`, "--toleration", `${TAINT.key}=${TAINT.value}:${TAINT.effect}`]);
}

const run = (namespace: string, args: string[], kubeconfig?: string): Promise<Finished> => startRun(namespace, args, kubeconfig).finished;

const delay = (pull: string, jitter = pull): string[] => [
  "--prepull-pod-annotation", `sim.kube-prepull.io/pull-delay=${pull}`,
  "--prepull-pod-annotation", `sim.kube-prepull.io/pull-jitter=${jitter}`,
];

const runDaemonSets = async (namespace: string): Promise<k8s.V1DaemonSet[]> =>
  (await apps.listNamespacedDaemonSet({ namespace, labelSelector: RUN_SELECTOR })).items;

/** The progress lines (not a terminal: one line per change): [pulled, targeted] in order. */
function progressCounts(stderr: string): [number, number][] {
  return [...stderr.matchAll(/^\s+\S+ {2}(\d+)\/(\d+) nodes pulled/gm)].map((m) => [Number(m[1]), Number(m[2])]);
}

/** A run's DaemonSet as a killed `run` leaves it (listing a node that does not exist: no pods). */
function leftover(namespace: string, id: string, expiresAt: number): k8s.V1DaemonSet {
  const spec: RunSpec = {
    images: runImages(["example.com/ci/crashed:1"]),
    namespace,
    placement: {},
    pullSecrets: [],
    maxParallel: { kind: "percent", value: 100 },
    timeoutSeconds: 60,
    pod: { helperImage: TEST_HELPER_IMAGE, extraLabels: {}, extraAnnotations: {} },
  };
  return renderRunDaemonSet({ id, spec, nodeNames: ["no-such-node"], expiresAt: new Date(expiresAt) });
}

function expectNoDaemonSet(namespace: string): Promise<void> {
  return runDaemonSets(namespace).then((left) => assert.deepEqual(left.map((d) => d.metadata?.name), [], "no run DaemonSet left"));
}

describe("kube-prepull run against 100 simulated nodes", () => {
  let nodes: string[];
  let ns: { name: string; remove: () => Promise<void> };

  before(async () => {
    nodes = await createNodes(core, NODES, { prefix: POOL, labels: { pool: POOL, type: "kwok-run-test" }, taints: [TAINT], concurrency: 16 });
    await waitForSchedulableNodes(core, `pool=${POOL}`, NODES);
    // Prepull pods must pass Pod Security "restricted" (spec §3): enforced here.
    ns = await createNamespace(kc, "run", { "pod-security.kubernetes.io/enforce": "restricted" });
  });

  after(async () => {
    await ns?.remove();
    for (const name of nodes ?? []) await core.deleteNode({ name }).catch(() => undefined);
  });

  it("pulls on all 100 nodes in waves with simulated pull delays, reports progress up to 100/100, exits 0 and deletes its DaemonSet", async () => {
    const { code, stdout, stderr } = await run(ns.name, ["example.com/ci/app:1.0", "--max-parallel", "50%", "--output", "json", ...delay("1s", "4s")]);
    assert.equal(code, 0, stderr);
    const summary = JSON.parse(stdout) as RunSummary;
    assert.equal(summary.result, "succeeded", summary.message);
    assert.deepEqual(summary.nodes, { targeted: NODES, pulled: NODES, failed: 0, skipped: 0, unsupported: 0 });
    assert.deepEqual(summary.images, ["example.com/ci/app:1.0"]);
    assert.equal(summary.namespace, ns.name);
    assert.match(summary.daemonSet ?? "", /^prepull-run-[0-9a-f]{12}$/);
    assert.match(stderr, /pulling example\.com\/ci\/app:1\.0 on 100 nodes, 50 at a time with daemonset\/prepull-run-/);
    const counts = progressCounts(stderr);
    assert.deepEqual(counts[0], [0, NODES]);
    assert.match(stderr, /0\/100 nodes pulled \(50 pulling, 50 waiting\)/, "the second wave waits for free slots");
    assert.deepEqual(counts.at(-1), [NODES, NODES], "the final line says 100/100");
    for (let i = 1; i < counts.length; i++) assert.ok(counts[i]![0] >= counts[i - 1]![0], "pulled never goes down");
    await expectNoDaemonSet(ns.name);
  });

  it("exits 3 and names each failing node with its reason when pulls fail on some nodes", async () => {
    const failing = nodes.slice(0, 3);
    const { code, stdout, stderr } = await run(ns.name, [
      "example.com/ci/app:2.0",
      "--prepull-pod-annotation", "sim.kube-prepull.io/pull-error=ErrImagePull",
      "--prepull-pod-annotation", `sim.kube-prepull.io/pull-error-nodes=^(${failing.join("|")})$`,
      // The image fails, not the helper the pod runs first.
      "--prepull-pod-annotation", "sim.kube-prepull.io/pull-error-images=^example\\.com/",
    ]);
    assert.equal(code, 3, stderr);
    const lines = stdout.trim().split("\n");
    assert.match(lines[0]!, /^failed: 3 of 100 nodes could not pull example\.com\/ci\/app:2\.0 \(97 pulled, /);
    for (const node of failing) {
      const line = new RegExp(`^  ${node}  (ErrImagePull: Failed to pull image "example\\.com/ci/app:2\\.0": simulated pull failure on node ${node}|ImagePullBackOff: Back-off pulling image "example\\.com/ci/app:2\\.0")$`);
      assert.ok(lines.some((l) => line.test(l)), `${node} is listed with its reason:\n${stdout}`);
    }
    assert.match(lines.at(-1)!, /^daemonset\/prepull-run-[0-9a-f]{12} deleted$/);
    await expectNoDaemonSet(ns.name);
  });

  it("exits 4 at --timeout and deletes its DaemonSet", async () => {
    const { code, stdout, stderr } = await run(ns.name, ["example.com/ci/slow:1", "--timeout", "5s", "--output", "json", ...delay("10m")]);
    assert.equal(code, 4, stderr);
    const summary = JSON.parse(stdout) as RunSummary;
    assert.equal(summary.result, "timed-out");
    assert.match(summary.message, /^not pulled on every node within 5s \(0\/100 pulled\)$/);
    assert.deepEqual(summary.nodes, { targeted: NODES, pulled: 0, failed: 0, skipped: 0, unsupported: 0 });
    assert.notEqual(summary.daemonSet, null);
    await expectNoDaemonSet(ns.name);
  });

  it("on Ctrl-C (SIGINT) mid-pull deletes its DaemonSet and its pods go, then exits 130", async () => {
    const { child, finished } = startRun(ns.name, ["example.com/ci/interrupted:1", "--output", "json", ...delay("10m")]);
    const daemonSet = await waitUntil(async () => (await runDaemonSets(ns.name))[0], { what: "the run's DaemonSet" });
    const id = daemonSet.metadata!.labels![RUN_SELECTOR]!;
    await waitUntil(async () => (await core.listNamespacedPod({ namespace: ns.name, labelSelector: `${RUN_SELECTOR}=${id}` })).items.length > 0,
      { what: "the run's pods to be pulling" });
    child.kill("SIGINT");
    const { code, stdout, stderr } = await finished;
    assert.equal(code, 130, stderr);
    const summary = JSON.parse(stdout) as RunSummary;
    assert.equal(summary.result, "interrupted");
    assert.equal(summary.message, "SIGINT received");
    assert.equal(summary.daemonSet, daemonSet.metadata!.name);
    assert.match(stderr, /SIGINT: stopping, deleting the prepull DaemonSet/);
    await expectNoDaemonSet(ns.name);
    await waitUntil(async () => (await core.listNamespacedPod({ namespace: ns.name, labelSelector: `${RUN_SELECTOR}=${id}` })).items.length === 0,
      { what: "the run's pods to be deleted with its DaemonSet" });
  });

  it("skips nodes that already report the image, with the tag's pull policy deciding", async () => {
    const image = "example.com/ci/present:1.0";
    for (const name of nodes.slice(0, 2)) {
      await core.patchNodeStatus({ name, body: { status: { images: [{ names: [image, "example.com/ci/present:latest"], sizeBytes: 1000 }] } } }, merge);
    }
    try {
      const present = JSON.parse((await run(ns.name, [image, "--output", "json"])).stdout) as RunSummary;
      assert.equal(present.result, "succeeded", present.message);
      assert.deepEqual(present.nodes, { targeted: NODES - 2, pulled: NODES - 2, failed: 0, skipped: 2, unsupported: 0 });
      // :latest is pulled with Always: a tag that may have moved never counts as present.
      const latest = JSON.parse((await run(ns.name, ["example.com/ci/present:latest", "--output", "json", "--max-parallel", "100"])).stdout) as RunSummary;
      assert.deepEqual(latest.nodes, { targeted: NODES, pulled: NODES, failed: 0, skipped: 0, unsupported: 0 });
    } finally {
      for (const name of nodes.slice(0, 2)) await core.patchNodeStatus({ name, body: { status: { images: [] } } }, merge).catch(() => undefined);
    }
  });

  it("works with only the permissions of manifests/ci/run-rbac.yaml (its ServiceAccount's token), waves included", async () => {
    const manifest = path.join(packageRoot(), "manifests", "ci", "run-rbac.yaml");
    await kubectl(["apply", "-f", manifest]);
    try {
      const { stdout: token } = await kubectl(["create", "token", "kube-prepull-run", "-n", "ci-prepull", "--duration=1h"]);
      const kubeconfig = path.join(mkdtempSync(path.join(tmpdir(), "kube-prepull-run-")), "kubeconfig");
      const sa = new k8s.KubeConfig();
      sa.loadFromOptions({
        clusters: [{ ...kc.getCurrentCluster()!, name: "test" }],
        users: [{ name: "ci", token: token.trim() }],
        contexts: [{ name: "ci", cluster: "test", user: "ci", namespace: "ci-prepull" }],
        currentContext: "ci",
      });
      writeFileSync(kubeconfig, sa.exportConfig());
      const { code, stdout, stderr } = await run("ci-prepull", ["example.com/ci/rbac:1", "--output", "json", "--max-parallel", "50%", "--timeout", "2m"], kubeconfig);
      assert.equal(code, 0, `${stdout}\n${stderr}`);
      assert.deepEqual((JSON.parse(stdout) as RunSummary).nodes, { targeted: NODES, pulled: NODES, failed: 0, skipped: 0, unsupported: 0 });
      await expectNoDaemonSet("ci-prepull");
    } finally {
      await kubectl(["delete", "-f", manifest, "--wait=false"]).catch(() => undefined);
    }
  });

  it("deletes an expired DaemonSet a crashed run left behind, and exits 0 when no node matches", async () => {
    await apps.createNamespacedDaemonSet({ namespace: ns.name, body: leftover(ns.name, "00000000dead", Date.now() - 1000) });
    const { code, stdout, stderr } = await run(ns.name, ["example.com/ci/app:3", "--node-selector", "zone=none"]);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /deleted daemonset\/prepull-run-00000000dead left behind by an earlier run/);
    assert.equal(stdout, "succeeded: nothing to pull (no Ready, schedulable node can run these pods)\n");
    await expectNoDaemonSet(ns.name);
  });
});

describe("the controller and DaemonSets of kube-prepull run", () => {
  let serve: RunningServe | undefined;
  let ns: { name: string; remove: () => Promise<void> };

  before(async () => {
    ns = await createNamespace(kc, "run-expiry");
    serve = await startTestServe({});
  });
  after(async () => {
    await serve?.stop();
    await ns?.remove();
  });

  it("leaves a live run's DaemonSet alone and deletes one left behind once it expires", async () => {
    const expiring = leftover(ns.name, "0000000000aa", Date.now() + 3000);
    const live = leftover(ns.name, "0000000000bb", Date.now() + 3600_000);
    for (const body of [expiring, live]) await apps.createNamespacedDaemonSet({ namespace: ns.name, body });
    await waitUntil(async () => (await runDaemonSets(ns.name)).length === 1, { what: "the expired DaemonSet to be deleted by the controller", timeoutMs: 30_000 });
    assert.deepEqual((await runDaemonSets(ns.name)).map((d) => d.metadata?.name), [live.metadata!.name]);
  });
});
