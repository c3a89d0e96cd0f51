// `kube-prepull run` and keep-warm lists on the real node (issue 11), in namespaces enforcing Pod
// Security "restricted": every image shape the prepull pod must cope with reaches Ready; an image
// for another platform and an unknown tag fail fast with the runtime's reason.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { decodeKeepWarmStatus, keepWarmDaemonSetName } from "../../src/keepwarm/keep-warm.js";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { REAL_NODE_LABEL, REAL_NODE_TAINT } from "../../src/local-cluster/real-node/node.js";
import type { RunSummary } from "../../src/prepull/run.js";
import type { RunningServe } from "../../src/serve.js";
import { createNamespace, imagesOnRealNode, realNodeHelperImage, startTestServe, testKubeConfig, testKubeconfigPath, testRealNodes, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const real = testRealNodes();
const node = real.nodes[0]!;
const REGISTRY = real.registry.addresses.pull;
const HELPER = realNodeHelperImage(real);
const MAIN = path.join(packageRoot(), "dist", "src", "cli", "main.js");

/** `kube-prepull run` on the real nodes; resolves with its exit code and JSON summary. */
function run(namespace: string, images: string[], timeout = "2m"): Promise<{ code: number | null; summary: RunSummary; stderr: string }> {
  const child = spawn(process.execPath, [
    MAIN, "run", ...images, "--kubeconfig", testKubeconfigPath(), "-n", namespace, "--output", "json", "--timeout", timeout,
    "--helper-image", HELPER, "--node-selector", `${REAL_NODE_LABEL}=true`,
    "--toleration", `${REAL_NODE_TAINT.key}=${REAL_NODE_TAINT.value}:${REAL_NODE_TAINT.effect}`,
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, summary: JSON.parse(stdout || "{}") as RunSummary, stderr })));
}

describe("kube-prepull run on the real node, under Pod Security restricted", () => {
  let ns: { name: string; remove: () => Promise<void> };
  before(async () => {
    ns = await createNamespace(kc, "real-run", { "pod-security.kubernetes.io/enforce": "restricted" });
  });
  after(async () => ns?.remove());

  it("pulls images with no shell, USER root, a numeric user, an ENTRYPOINT/CMD and a manifest list: the pod reaches Ready", async () => {
    const images = ["no-shell:1", "user-root:1", "numeric-user:1", "entrypoint:1", "multi-arch:1"].map((i) => `${REGISTRY}/test/${i}`);
    const { code, summary, stderr } = await run(ns.name, images);
    assert.equal(code, 0, stderr);
    assert.equal(summary.result, "succeeded", summary.message);
    assert.deepEqual(summary.nodes, { targeted: 1, pulled: 1, failed: 0, skipped: 0, unsupported: 0 });
    const present = await imagesOnRealNode(node);
    for (const image of images) assert.ok(present.includes(image), `${image} is in containerd's store`);
  });

  it("fails fast, naming the platform, on an image built for another platform only", async () => {
    const { code, summary, stderr } = await run(ns.name, [`${REGISTRY}/test/arm64-only:1`]);
    assert.equal(code, 3, `exit 3 (pull failures), not 4 (timeout): ${stderr}`);
    assert.equal(summary.failures[0]?.node, node.name);
    assert.match(summary.failures[0]?.message ?? "", /platform/, JSON.stringify(summary.failures));
  });

  it("reports the registry's 429 (served by the proxy) as the node's reason", async () => {
    const control = real.registry.addresses.pullControl;
    const configure = (config: unknown): Promise<Response> => fetch(control, { method: "PUT", body: JSON.stringify(config) });
    assert.equal((await configure({ faults: [{ path: "^/v2/test/app/manifests/busy$", status: 429, retryAfterSeconds: 30 }] })).status, 200);
    try {
      const { code, summary, stderr } = await run(ns.name, [`${REGISTRY}/test/app:busy`]);
      assert.equal(code, 3, stderr);
      assert.match(summary.failures[0]?.message ?? "", /429 Too Many Requests/, JSON.stringify(summary.failures));
    } finally {
      await configure({});
    }
  });

  it("fails fast on an unknown tag", async () => {
    const { code, summary, stderr } = await run(ns.name, [`${REGISTRY}/test/app:no-such-tag`]);
    assert.equal(code, 3, stderr);
    assert.match(summary.failures[0]?.message ?? "", /not found/, JSON.stringify(summary.failures));
  });
});

describe("a keep-warm list on the real node", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let running: RunningServe | undefined;
  before(async () => {
    ns = await createNamespace(kc, "real-keep-warm", { "pod-security.kubernetes.io/enforce": "restricted" });
    running = await startTestServe({ pod: { helperImage: HELPER, extraLabels: {}, extraAnnotations: {} }, controller: { keepWarm: { namespace: ns.name } } });
  });
  after(async () => {
    await running?.stop();
    await ns?.remove();
  });

  it("keeps its images in containerd's store on the real node", async () => {
    const image = `${REGISTRY}/test/app:3`;
    await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: {
        metadata: { name: "base", labels: { "kube-prepull.io/keep-warm": "true" } },
        data: { images: `${image}\n`, nodeSelector: `${REAL_NODE_LABEL}=true`, tolerateAllTaints: "true" },
      },
    });
    const warm = await waitUntil(async () => {
      const cm = await core.readNamespacedConfigMap({ name: "base", namespace: ns.name });
      const status = decodeKeepWarmStatus(cm.metadata?.annotations?.["kube-prepull.io/status"]);
      return status?.phase === "Warm" ? status : undefined;
    }, { what: "the keep-warm list to be Warm on the real node", timeoutMs: 120_000 });
    assert.deepEqual(warm.nodes, { desired: 1, warm: 1, failed: 0 });
    const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: "kube-prepull.io/keep-warm=base" });
    assert.deepEqual(pods.items.map((p) => p.spec?.nodeName), [node.name]);
    assert.ok((await imagesOnRealNode(node)).includes(image));
    const ds = await apps.readNamespacedDaemonSet({ name: keepWarmDaemonSetName("base"), namespace: ns.name });
    assert.equal(ds.status?.numberReady, 1);
  });
});
