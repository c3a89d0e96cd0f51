// `kube-prepull demo`: everything on the embedded local cluster (spec §5): boot it, start
// kube-prepull against it, opt a namespace in, create a Deployment with the hold annotation, show
// the prepull and the release live, print a summary, tear everything down.
import path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { Command } from "commander";
import { pino } from "pino";
import { ensureControlPlaneBinaries, packageRoot } from "../local-cluster/binaries.js";
import { startCluster, type RunningCluster } from "../local-cluster/cluster.js";
import { Interrupted, pause, throwIfInterrupted, waitForPrepullWebhook, waitForServiceAccount } from "../local-cluster/wait.js";
import { decodeStatus, type PrepullStatus } from "../prepull/progress.js";
import { SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { startServe, type RunningServe, type ServeOptions } from "../serve.js";
import { parsePositiveInteger, type CliContext } from "./cluster-command.js";
import { createdLines, DEMO_REPLICAS, demoSummaryLines, isRolledOut, releasedPhase, rolloutLine, type RolloutTimeline } from "./demo-output.js";
import { DEFAULT_HELPER_IMAGE } from "../version.js";

const NAMESPACE = "demo";
const IMAGES = ["registry.example.com/shop/web:2.0", "registry.example.com/shop/metrics-agent:1.4"];

interface DemoFlags {
  nodes: number;
  pullSeconds: number;
}

/** `interruption`: SIGINT/SIGTERM as an AbortSignal; the demo then tears down what it started and exits 130/143. */
export function demoCommand(ctx: CliContext, isTty: boolean, interruption: () => AbortSignal): Command {
  return new Command("demo")
    .description("run kube-prepull on the embedded local cluster and show a held rollout released after its images are pulled")
    .option("--nodes <n>", "simulated nodes", (v) => parsePositiveInteger(v, 1000), 8)
    .option("--pull-seconds <n>", "longest simulated pull time per node", (v) => parsePositiveInteger(v, 600), 8)
    .action(async (flags: DemoFlags) => runDemo(ctx, isTty, flags, interruption()));
}

type Say = (line: string) => void;

async function runDemo(ctx: CliContext, isTty: boolean, flags: DemoFlags, signal: AbortSignal): Promise<void> {
  const say: Say = (line) => ctx.out(line);
  const t0 = Date.now();
  const at = (): string => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
  let cluster: RunningCluster | undefined;
  let serve: RunningServe | undefined;
  const onInterrupt = (): void => ctx.err(`${String(signal.reason)}: interrupted, stopping kube-prepull and the cluster it started`);
  signal.addEventListener("abort", onInterrupt, { once: true });
  try {
    say("kube-prepull demo: building (first run only) and starting the local cluster…");
    cluster = await startDemoCluster(ctx, flags.nodes, signal);
    say(`${at()}  cluster up: ${cluster.state.server}, ${flags.nodes} simulated nodes`);

    const kc = cluster.kubeConfig;
    serve = await startServe(demoServeOptions(kc, flags.pullSeconds));
    say(`${at()}  kube-prepull serving on https://127.0.0.1:${serve.admissionPort} (webhook registered with the apiserver)`);
    await showHeldRollout(kc, { say, at, isTty, signal });
  } catch (error) {
    // An interruption ends whatever step ran (often with an error from a stopped request).
    if (signal.aborted) throw new Interrupted(signal.reason, "stopped kube-prepull and the demo cluster");
    throw error;
  } finally {
    signal.removeEventListener("abort", onInterrupt);
    say(`${at()}  tearing down…`);
    await serve?.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    say(`${at()}  done`);
  }
}

interface Display {
  say: Say;
  at: () => string;
  isTty: boolean;
  signal: AbortSignal;
}

/** The demo proper: an opted-in namespace, a held Deployment, its prepull and release followed live, a summary. */
async function showHeldRollout(kc: k8s.KubeConfig, { say, at, isTty, signal }: Display): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  throwIfInterrupted(signal);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE, labels: { "kube-prepull.io/enabled": "true" } } } });
  await waitForServiceAccount(core, NAMESPACE, 60_000, signal);
  say(`${at()}  namespace ${NAMESPACE} opted in (label kube-prepull.io/enabled=true)`);
  await waitForPrepullWebhook(apps, NAMESPACE, 60_000, signal);

  throwIfInterrupted(signal);
  const created = await apps.createNamespacedDeployment({ namespace: NAMESPACE, body: heldDeployment() });
  for (const line of createdLines(created, IMAGES, SYSTEM_ANNOTATIONS.heldBy)) say(`${at()}  ${line}`);

  const timeline = await followRollout(apps, say, at, isTty, signal);
  const events = await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: "involvedObject.kind=Deployment,involvedObject.name=shop" });
  for (const line of demoSummaryLines(timeline, events.items)) say(line);
}

async function startDemoCluster(ctx: CliContext, nodes: number, signal: AbortSignal): Promise<RunningCluster> {
  const binaries = await ensureControlPlaneBinaries({ progress: ctx.err, env: ctx.env, signal });
  return startCluster({
    name: "demo",
    stateRoot: path.join(packageRoot(), ".cluster"),
    binaries,
    nodes,
    env: ctx.env,
    progress: (line) => ctx.err(`  [cluster] ${line}`),
    signal,
  });
}

/** kube-prepull as the demo runs it: webhook and controller, registered for opt-in namespaces, quiet logs. */
function demoServeOptions(kubeConfig: k8s.KubeConfig, pullSeconds: number): ServeOptions {
  return {
    kubeConfig,
    host: "127.0.0.1",
    port: 0,
    opsPort: 0,
    register: { name: "kube-prepull-demo", mode: "opt-in", ownNamespace: "kube-prepull", removeOnStop: true },
    runController: true,
    controller: {
      pod: {
        helperImage: DEFAULT_HELPER_IMAGE,
        extraLabels: {},
        // The simulated kubelets take 2 s to the chosen maximum to "pull" on each node.
        extraAnnotations: { "sim.kube-prepull.io/pull-delay": "2s", "sim.kube-prepull.io/pull-jitter": `${Math.max(2, pullSeconds)}s` },
      },
      cleanupTtlSeconds: 600,
      schedulingGraceSeconds: 30,
      maxConcurrentPrepulls: 20,
    },
    log: pino({ level: "warn" }),
  };
}

/** deployment/shop with the hold annotation: admission pauses it until its images are pulled. */
function heldDeployment(): k8s.V1Deployment {
  return {
    metadata: { name: "shop", annotations: { "kube-prepull.io/hold": "true" } },
    spec: {
      replicas: DEMO_REPLICAS,
      selector: { matchLabels: { app: "shop" } },
      template: {
        metadata: { labels: { app: "shop" } },
        spec: { containers: IMAGES.map((image, i) => ({ name: ["web", "metrics"][i]!, image })) },
      },
    },
  };
}

/** The live display: a progress line (redrawn in place on a terminal) and milestones on lines of their own. */
function rolloutDisplay(say: Say, at: () => string, isTty: boolean): { progress: Say; milestone: Say } {
  let lastLine = "";
  return {
    progress: (line) => {
      if (line === lastLine) return;
      if (isTty) process.stdout.write(`\r${at()}  ${line}\x1b[K`);
      else say(`${at()}  ${line}`);
      lastLine = line;
    },
    milestone: (line) => {
      if (isTty) process.stdout.write("\n"); // leave the progress line standing above it
      say(`${at()}  ${line}`);
    },
  };
}

/** Notes the hold's release, then the rollout's completion, the first time each is seen. */
function recordMilestones(result: RolloutTimeline, d: k8s.V1Deployment, status: PrepullStatus | undefined, elapsed: () => number, milestone: Say): void {
  const phase = result.releasedAt === undefined ? releasedPhase(d, status) : undefined;
  if (phase !== undefined) {
    result.releasedAt = elapsed();
    milestone(`hold released: ${phase}`);
  }
  if (result.releasedAt !== undefined && result.completedAt === undefined && isRolledOut(d)) {
    result.completedAt = elapsed();
    milestone(`rollout complete: ${DEMO_REPLICAS}/${DEMO_REPLICAS} replicas available`);
  }
}

async function prepullDaemonSetsGone(apps: k8s.AppsV1Api): Promise<boolean> {
  const left = await apps.listNamespacedDaemonSet({ namespace: NAMESPACE, labelSelector: "app.kubernetes.io/managed-by=kube-prepull" });
  return left.items.length === 0;
}

async function followRollout(apps: k8s.AppsV1Api, say: Say, at: () => string, isTty: boolean, signal: AbortSignal): Promise<RolloutTimeline> {
  const started = Date.now();
  const elapsed = (): number => (Date.now() - started) / 1000;
  const display = rolloutDisplay(say, at, isTty);
  const result: RolloutTimeline = {};
  // The demo reads the Deployment twice a second for its display; kube-prepull itself only watches.
  while (elapsed() < 300) {
    const d = await apps.readNamespacedDeployment({ name: "shop", namespace: NAMESPACE });
    const status = decodeStatus(d.metadata?.annotations?.[SYSTEM_ANNOTATIONS.status]);
    result.status = status;
    display.progress(rolloutLine(d, status));
    recordMilestones(result, d, status, elapsed, display.milestone);
    if (result.completedAt !== undefined && (await prepullDaemonSetsGone(apps))) {
      result.cleanedAt = elapsed();
      say(`${at()}  prepull DaemonSet deleted (the rollout has completed)`);
      return result;
    }
    await pause(500, signal);
  }
  return result;
}
