// Which pull secrets `kube-prepull run`'s pods get (docs/ci-pipelines.md, "Permissions"): the
// namespace's default ServiceAccount's imagePullSecrets when --pull-secret is not given, and only
// the --pull-secret ones when it is (Kubernetes adds a ServiceAccount's pull secrets to a pod that
// names none). The real ServiceAccount admission plugin decides; the node is this file's own.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { createNodes } from "../../src/local-cluster/nodes.js";
import { createNamespace, testKubeConfig, testKubeconfigPath, waitForSchedulableNodes, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const MAIN = path.join(packageRoot(), "dist", "src", "cli", "main.js");
const POOL = `secrets-${process.pid}`;
const TAINT: k8s.V1Taint = { key: "kube-prepull.io/test-pool", value: POOL, effect: "NoSchedule" };

/** The imagePullSecrets of a run's pod (the pull never ends; the run is stopped once its pod is seen). */
async function podPullSecrets(namespace: string, image: string, extra: string[]): Promise<string[]> {
  const child = spawn(process.execPath, [
    MAIN, "run", image, "--kubeconfig", testKubeconfigPath(), "-n", namespace,
    "--node-selector", `pool=${POOL}`, "--toleration", `${TAINT.key}=${TAINT.value}:${TAINT.effect}`,
    "--prepull-pod-annotation", "sim.kube-prepull.io/pull-delay=10m", ...extra,
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const finished = new Promise<number | null>((resolve) => child.on("close", resolve));
  try {
    const pod = await waitUntil(async () => (await core.listNamespacedPod({ namespace, labelSelector: "kube-prepull.io/run" })).items[0],
      { what: `the run's pod (stderr: ${stderr})`, timeoutMs: 60_000 });
    return (pod.spec?.imagePullSecrets ?? []).map((s) => s.name ?? "").sort();
  } finally {
    child.kill("SIGTERM");
    assert.equal(await finished, 143, stderr);
    await waitUntil(async () => (await core.listNamespacedPod({ namespace, labelSelector: "kube-prepull.io/run" })).items.length === 0,
      { what: "the run's pods to be deleted" });
  }
}

describe("kube-prepull run and pull secrets", () => {
  let nodes: string[] = [];
  let ns: { name: string; remove: () => Promise<void> } | undefined;

  before(async () => {
    nodes = await createNodes(core, 1, { prefix: POOL, labels: { pool: POOL, type: "kwok-secrets-test" }, taints: [TAINT] });
    await waitForSchedulableNodes(core, `pool=${POOL}`, 1);
    ns = await createNamespace(kc, "secrets");
    // The secrets need not exist for admission; the simulated node never pulls.
    await core.patchNamespacedServiceAccount(
      { name: "default", namespace: ns.name, body: { imagePullSecrets: [{ name: "from-service-account" }] } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
  });

  after(async () => {
    await ns?.remove();
    for (const name of nodes) await core.deleteNode({ name }).catch(() => undefined);
  });

  it("without --pull-secret: the default ServiceAccount's pull secrets", async () => {
    assert.deepEqual(await podPullSecrets(ns!.name, "example.com/secrets/app:1", []), ["from-service-account"]);
  });

  it("with --pull-secret: only those, not the ServiceAccount's", async () => {
    assert.deepEqual(await podPullSecrets(ns!.name, "example.com/secrets/app:2", ["--pull-secret", "ci-a", "--pull-secret", "ci-b"]), ["ci-a", "ci-b"]);
  });
});
