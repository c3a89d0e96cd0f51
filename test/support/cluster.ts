// Access to the local cluster started by test/run-with-cluster.ts for the whole test run.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import type { ControllerConfig } from "../../src/controller/reconcile.js";
import { parseAllDocuments } from "yaml";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { readClusterState } from "../../src/local-cluster/cluster.js";
import { HELPER_IMAGE_NAME } from "../../src/local-cluster/real-node/images.js";
import type { RealNodeState } from "../../src/local-cluster/real-node/node.js";
import type { RealNodesState } from "../../src/local-cluster/real-node/real-nodes.js";
import { isNodeSchedulable } from "../../src/local-cluster/nodes.js";
import { pollUntil, waitForServiceAccount } from "../../src/local-cluster/wait.js";
import type { PrepullPodConfig } from "../../src/prepull/daemonset.js";
import { startServe, type RunningServe, type ServeOptions } from "../../src/serve.js";
import { DEFAULT_HELPER_IMAGE } from "../../src/version.js";

export { pollUntil as waitUntil, waitForPrepullWebhook } from "../../src/local-cluster/wait.js";
export { apiErrorMessage } from "../../src/kube/cluster-actions.js";
export { httpStatusOf as apiErrorCode } from "../../src/kube/api-errors.js";

const run = promisify(execFile);

export function testKubeconfigPath(): string {
  const file = process.env.KUBE_PREPULL_TEST_KUBECONFIG;
  if (!file) {
    throw new Error("KUBE_PREPULL_TEST_KUBECONFIG is not set: cluster tests run through `npm test` (test/run-with-cluster.ts)");
  }
  return file;
}

/**
 * Waits until `count` nodes of the label selector are Ready and schedulable (kwok set Ready and the
 * node lifecycle controller lifted the not-ready taint). A prepull plans only on usable nodes
 * (spec §4), so a test that acts on new nodes before this gets "nothing to pull".
 */
export async function waitForSchedulableNodes(core: k8s.CoreV1Api, labelSelector: string, count: number, timeoutMs = 120_000): Promise<void> {
  await pollUntil(async () => (await core.listNode({ labelSelector })).items.filter(isNodeSchedulable).length === count,
    { what: `${count} node(s) with ${labelSelector} to be Ready and schedulable`, timeoutMs });
}

export function testKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(testKubeconfigPath());
  return kc;
}

/** Runs the version-matched kubectl built with the control plane against the test cluster. */
export async function kubectl(args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  const binDir = process.env.KUBE_PREPULL_TEST_BIN_DIR ?? "";
  const child = run(path.join(binDir, "kubectl"), ["--kubeconfig", testKubeconfigPath(), ...args], {
    maxBuffer: 64 * 1024 * 1024,
  });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  return child;
}

/**
 * The objects `kubectl kustomize manifests/overlays/<overlay>` builds; with components (paths under
 * manifests/, e.g. "monitoring/pod-monitor"), what a user's overlay of that overlay plus those
 * kustomize Components builds.
 */
export async function buildOverlay(overlay: string, components: string[] = []): Promise<k8s.KubernetesObject[]> {
  const manifests = path.join(packageRoot(), "manifests");
  if (components.length === 0) return parseObjects((await kubectl(["kustomize", path.join(manifests, "overlays", overlay)])).stdout);
  const dir = mkdtempSync(path.join(os.tmpdir(), "kube-prepull-overlay-"));
  try {
    const rel = (to: string): string => path.relative(dir, path.join(manifests, to));
    writeFileSync(path.join(dir, "kustomization.yaml"), JSON.stringify({
      apiVersion: "kustomize.config.k8s.io/v1beta1",
      kind: "Kustomization",
      resources: [rel(path.join("overlays", overlay))],
      components: components.map(rel),
    }));
    return parseObjects((await kubectl(["kustomize", dir])).stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const parseObjects = (yaml: string): k8s.KubernetesObject[] => parseAllDocuments(yaml).map((d) => d.toJS() as k8s.KubernetesObject);

let counter = 0;
/** A fresh namespace for one test file; delete it with the returned function. */
export async function createNamespace(
  kc: k8s.KubeConfig,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<{ name: string; remove: () => Promise<void> }> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const name = `${prefix}-${process.pid}-${++counter}`;
  await core.createNamespace({ body: { metadata: { name, labels } } });
  // Pods need the namespace's default ServiceAccount (ServiceAccount admission).
  await waitForServiceAccount(core, name);
  return {
    name,
    remove: async () => {
      await core.deleteNamespace({ name }).catch(() => undefined);
    },
  };
}

/** The default helper image (src/version.ts); kwok never pulls it, the real node gets it from the local registry. */
export const TEST_HELPER_IMAGE = DEFAULT_HELPER_IMAGE;

/**
 * `serve` for a cluster test: admission on a free 127.0.0.1 port, its webhooks registered under
 * `name` (opt-in), the controller on, prepull pods with a simulated pull delay, quiet logs
 * (KUBE_PREPULL_TEST_LOG=debug to see them). Overrides replace whole fields.
 */
export function startTestServe(options: {
  name?: string;
  pullDelay?: string;
  pod?: Partial<PrepullPodConfig>;
  controller?: Partial<Omit<ControllerConfig, "pod">>;
  removeOnStop?: boolean;
  serve?: Partial<ServeOptions>;
}): Promise<RunningServe> {
  return startServe({
    kubeConfig: testKubeConfig(),
    host: "127.0.0.1",
    port: 0,
    opsPort: 0,
    ...(options.name ? { register: { name: options.name, mode: "opt-in", ownNamespace: "kube-prepull", removeOnStop: options.removeOnStop ?? true } } : {}),
    runController: true,
    controller: {
      pod: {
        helperImage: TEST_HELPER_IMAGE,
        extraLabels: {},
        extraAnnotations: options.pullDelay ? { "sim.kube-prepull.io/pull-delay": options.pullDelay } : {},
        ...options.pod,
      },
      cleanupTtlSeconds: 600,
      schedulingGraceSeconds: 10,
      maxConcurrentPrepulls: 20,
      ...options.controller,
    },
    log: pino({ level: process.env.KUBE_PREPULL_TEST_LOG ?? "silent" }),
    ...options.serve,
  });
}

/** The test cluster's real nodes and registry (test/run-with-cluster.ts starts one real node). */
export function testRealNodes(): RealNodesState {
  const stateDir = process.env.KUBE_PREPULL_TEST_STATE_DIR ?? "";
  const real = readClusterState(stateDir)?.real;
  if (!real || real.nodes.length === 0) throw new Error(`the test cluster at ${stateDir} has no real node (KUBE_PREPULL_TEST_REAL_NODES=0?)`);
  return real;
}

/** The helper image as the test cluster's registry serves it to real nodes. */
export function realNodeHelperImage(real: RealNodesState): string {
  return `${real.registry.addresses.pull}/${HELPER_IMAGE_NAME}`;
}

/** Image references in a real node's containerd store (the CRI namespace), read with Debian's `ctr`. */
export async function imagesOnRealNode(node: RealNodeState): Promise<string[]> {
  const { stdout } = await run("ctr", ["--address", path.join(node.dir, "run", "containerd.sock"), "--namespace", "k8s.io", "images", "list", "--quiet"]);
  return stdout.split("\n").filter(Boolean);
}

/**
 * On the shared cluster every test's `serve --register` covers every namespace labelled
 * kube-prepull.io/enabled=true: this narrows the webhook configurations `name` to `namespaces` (by
 * name, unlabelled), so that only that serve answers there and a hung or failing one slows no
 * other test. serve registers once at start, so the narrowing stays.
 */
export async function scopeWebhooksTo(kc: k8s.KubeConfig, name: string, ...namespaces: string[]): Promise<void> {
  const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  const jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
  const selector = { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: namespaces }] };
  const mutating = await admission.readMutatingWebhookConfiguration({ name });
  const patch = mutating.webhooks!.map((_w, i) => ({ op: "replace", path: `/webhooks/${i}/namespaceSelector`, value: selector }));
  await admission.patchMutatingWebhookConfiguration({ name, body: patch }, jsonPatch);
  await admission.patchValidatingWebhookConfiguration({ name, body: patch }, jsonPatch);
}
