// The benefit, measured on a real node (issue 11): a kubelet + containerd pulling a large image
// through the throttled local registry. A Deployment of 2 replicas changes its image
//   cold: without kube-prepull (a namespace it does not cover): set image → rollout complete;
//   held: with kube-prepull.io/hold: set image → hold released → rollout complete;
// pairs alternate their order. Also: how long a prepull pod takes from create to Ready with its
// images already present, per CPU limit — the measurement the pods' resources were chosen by.
import * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import { ensureControlPlaneBinaries } from "../src/local-cluster/binaries.js";
import type { RunningCluster } from "../src/local-cluster/cluster.js";
import { bigImage, buildHelperBinaries, HELPER_IMAGE_NAME, pushImage } from "../src/local-cluster/real-node/images.js";
import { ON_REAL_NODES } from "../src/local-cluster/real-node/node.js";
import { pollUntil } from "../src/local-cluster/wait.js";
import { PREPULL_RESOURCES, renderDaemonSet } from "../src/prepull/daemonset.js";
import { decodeStatus } from "../src/prepull/progress.js";
import { startServe, type RunningServe } from "../src/serve.js";
import { STATE_ROOT, startInterruptibleCluster } from "./support/cluster.js";
import { interruption } from "./support/interruption.js";
import { log } from "./support/machine.js";

export interface RealNodeOptions {
  bytesPerSecond: number;
  imageMiB: number;
  pairs: number;
  /** CPU limits to compare for the prepull pod's start ("none" = no CPU limit). */
  cpuLimits: string[];
  startRepeats: number;
  /** Folder of the cluster's state (default .cluster). */
  stateRoot?: string;
}

export interface RolloutRun {
  mode: "cold" | "held";
  image: string;
  /** set image → rollout complete. */
  totalMs: number;
  /** held: set image → hold released. */
  releasedMs?: number;
  /** held: hold released → rollout complete. */
  afterReleaseMs?: number;
  /** The kubelet's own pull time (its Pulled Event), for the first pod that pulled. */
  kubeletPullMs?: number;
}

export interface StartRun {
  cpuLimit: string;
  images: number;
  /** create → Ready, each repeat. */
  ms: number[];
}

export interface RealNodeResult {
  rollouts: RolloutRun[];
  starts: StartRun[];
  imageBytes: number;
  bytesPerSecond: number;
}


function appDeployment(name: string, image: string, hold: boolean): k8s.V1Deployment {
  return {
    metadata: { name, ...(hold ? { annotations: { "kube-prepull.io/hold": "true" } } : {}) },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { ...ON_REAL_NODES, terminationGracePeriodSeconds: 0, containers: [{ name: "app", image }] } },
    },
  };
}

/** "Successfully pulled image "x" in 8.123s (8.123s including waiting)…" → 8123. */
export function kubeletPullMs(message: string): number | undefined {
  const m = /Successfully pulled image "[^"]+" in ([\d.]+)(ms|s)/.exec(message);
  if (!m) return undefined;
  return m[2] === "ms" ? Number(m[1]) : Number(m[1]) * 1000;
}

async function pulledMs(core: k8s.CoreV1Api, namespace: string, image: string, podPrefix: string): Promise<number | undefined> {
  const events = await core.listNamespacedEvent({ namespace, fieldSelector: "involvedObject.kind=Pod,reason=Pulled" });
  const times = events.items
    .filter((e) => e.involvedObject.name?.startsWith(podPrefix) && e.message?.includes(`"${image}"`))
    .map((e) => kubeletPullMs(e.message ?? ""))
    .filter((t): t is number => t !== undefined);
  return times.length ? Math.max(...times) : undefined;
}

const rolloutComplete = (d: k8s.V1Deployment, image: string): boolean =>
  d.status?.observedGeneration === d.metadata?.generation && d.status?.updatedReplicas === 2 && d.status.availableReplicas === 2 &&
  d.status.replicas === 2 && d.spec?.template.spec?.containers[0]?.image === image && !d.spec?.paused;

async function setImage(apps: k8s.AppsV1Api, namespace: string, name: string, image: string): Promise<void> {
  await apps.patchNamespacedDeployment({ name, namespace, body: [{ op: "replace", path: "/spec/template/spec/containers/0/image", value: image }] },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch));
}

async function waitRollout(apps: k8s.AppsV1Api, namespace: string, name: string, image: string, onPoll?: (d: k8s.V1Deployment) => void): Promise<void> {
  await pollUntil(async () => {
    const d = await apps.readNamespacedDeployment({ name, namespace });
    onPoll?.(d);
    return rolloutComplete(d, image);
  }, { what: `deployment ${namespace}/${name} to roll out ${image}`, timeoutMs: 600_000, intervalMs: 100 });
}

async function measureRollout(cluster: RunningCluster, mode: "cold" | "held", namespace: string, image: string): Promise<RolloutRun> {
  const apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const started = Date.now();
  let releasedAt: number | undefined;
  await setImage(apps, namespace, "app", image);
  await waitRollout(apps, namespace, "app", image, (d) => {
    const status = decodeStatus(d.metadata?.annotations?.["kube-prepull.io/status"]);
    if (releasedAt === undefined && mode === "held" && !d.spec?.paused && status?.images.includes(image) && status.phase === "Succeeded") releasedAt = Date.now();
  });
  const done = Date.now();
  const kubelet = await pulledMs(core, namespace, image, mode === "held" ? "prepull-app-" : "app-");
  log(`real node: ${mode} rollout of ${image}: ${((done - started) / 1000).toFixed(1)} s` + (releasedAt ? `, released at ${((releasedAt - started) / 1000).toFixed(1)} s` : ""));
  return {
    mode, image, totalMs: done - started,
    ...(releasedAt !== undefined ? { releasedMs: releasedAt - started, afterReleaseMs: done - releasedAt } : {}),
    ...(kubelet !== undefined ? { kubeletPullMs: kubelet } : {}),
  };
}

async function measurePodStart(cluster: RunningCluster, namespace: string, images: string[], cpuLimit: string, helperImage: string): Promise<number> {
  const apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const memory = { memory: PREPULL_RESOURCES.limits!.memory! };
  const resources: k8s.V1ResourceRequirements = { requests: PREPULL_RESOURCES.requests, limits: cpuLimit === "none" ? memory : { ...memory, cpu: cpuLimit } };
  const name = `start-${cpuLimit.replace(/\W/g, "")}-${images.length}`;
  const ds = renderDaemonSet({
    subject: { name, namespace, labels: {}, annotations: {}, images: images.map((image) => ({ image })), placement: { tolerations: ON_REAL_NODES.tolerations, nodeSelector: ON_REAL_NODES.nodeSelector } },
    nodeNames: undefined,
    config: { helperImage, extraLabels: {}, extraAnnotations: {}, resources },
  });
  const started = Date.now();
  await apps.createNamespacedDaemonSet({ namespace, body: ds });
  await pollUntil(async () => (await apps.readNamespacedDaemonSet({ name, namespace })).status?.numberReady === 1,
    { what: `prepull-shaped DaemonSet ${name} to be Ready`, timeoutMs: 300_000, intervalMs: 100 });
  const ms = Date.now() - started;
  await apps.deleteNamespacedDaemonSet({ name, namespace });
  await pollUntil(async () => (await core.listNamespacedPod({ namespace, labelSelector: `kube-prepull.io/prepull=${name}` })).items.length === 0,
    { what: `the pods of ${name} to go`, timeoutMs: 120_000 });
  return ms;
}

async function configureProxy(control: string, bytesPerSecond: number): Promise<void> {
  const res = await fetch(control, { method: "PUT", body: JSON.stringify({ bytesPerSecond }) });
  if (!res.ok) throw new Error(`registry proxy: ${res.status} ${await res.text()}`);
}

async function startBenchServe(cluster: RunningCluster, helperImage: string): Promise<RunningServe> {
  return startServe({
    kubeConfig: cluster.kubeConfig, host: "127.0.0.1", port: 0, opsPort: 0,
    register: { name: "kube-prepull-bench-real", mode: "opt-in", ownNamespace: "kube-prepull", removeOnStop: true },
    runController: true,
    controller: { pod: { helperImage, extraLabels: {}, extraAnnotations: {} }, cleanupTtlSeconds: 600, schedulingGraceSeconds: 10, maxConcurrentPrepulls: 20 },
    log: pino({ level: "silent" }),
  });
}

export async function benchmarkRealNode(options: RealNodeOptions): Promise<RealNodeResult> {
  const binaries = await ensureControlPlaneBinaries({ progress: log, env: process.env, signal: interruption });
  const cluster = await startInterruptibleCluster({ name: "bench-real", stateRoot: options.stateRoot ?? STATE_ROOT, binaries, nodes: 0, realNodes: 1 });
  let serve: RunningServe | undefined;
  try {
    const real = cluster.state.real!;
    const a = real.registry.addresses;
    const helperImage = `${a.pull}/${HELPER_IMAGE_NAME}`;
    const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
    const apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
    const half = Math.round((options.imageMiB / 2) * 2 ** 20);
    const helpers = await buildHelperBinaries(`${real.registry.dir}/build/helper`, process.env);
    const images: string[] = [];
    for (let i = 1; i <= options.pairs * 2; i++) {
      log(`real node: pushing a ${options.imageMiB} MiB image (${i}/${options.pairs * 2})`);
      await pushImage({ crane: binaries.crane, registry: a.push, recipe: bigImage(`bench/big:${i}`, 2, half), helpers, workDir: `${real.registry.dir}/build` });
      images.push(`${a.pull}/bench/big:${i}`);
    }
    for (const ns of ["cold", "held", "start"]) await core.createNamespace({ body: { metadata: { name: ns, labels: ns === "held" ? { "kube-prepull.io/enabled": "true" } : {} } } });
    await pollUntil(async () => Boolean(await core.readNamespacedServiceAccount({ name: "default", namespace: "start" })), { what: "default ServiceAccounts" });

    // Prepull pod start with images present: the images of a small app, already pulled.
    const small = ["no-shell:1", "user-root:1", "numeric-user:1", "entrypoint:1", "multi-arch:1", "app:1"].map((i) => `${a.pull}/test/${i}`);
    const starts: StartRun[] = [];
    await measurePodStart(cluster, "start", small, "none", helperImage); // pulls them once
    for (const cpuLimit of options.cpuLimits) {
      for (const count of [1, 6]) {
        const ms: number[] = [];
        for (let r = 0; r < options.startRepeats; r++) ms.push(await measurePodStart(cluster, "start", small.slice(0, count), cpuLimit, helperImage));
        log(`real node: prepull pod with ${count} present image(s), CPU limit ${cpuLimit}: ${ms.map((m) => (m / 1000).toFixed(1)).join(", ")} s`);
        starts.push({ cpuLimit, images: count, ms });
      }
    }

    serve = await startBenchServe(cluster, helperImage);
    for (const ns of ["cold", "held"]) {
      await apps.createNamespacedDeployment({ namespace: ns, body: appDeployment("app", `${a.pull}/test/app:1`, ns === "held") });
      await waitRollout(apps, ns, "app", `${a.pull}/test/app:1`);
    }
    await configureProxy(a.pullControl, options.bytesPerSecond);
    const rollouts: RolloutRun[] = [];
    for (let pair = 0; pair < options.pairs; pair++) {
      const order: ("cold" | "held")[] = pair % 2 === 0 ? ["cold", "held"] : ["held", "cold"];
      for (const [i, mode] of order.entries()) rollouts.push(await measureRollout(cluster, mode, mode, images[pair * 2 + i]!));
    }
    await configureProxy(a.pullControl, 0);
    return { rollouts, starts, imageBytes: half * 2, bytesPerSecond: options.bytesPerSecond };
  } finally {
    await serve?.stop();
    await cluster.stop();
  }
}
