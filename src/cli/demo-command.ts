// `kube-prepull demo`: everything on the embedded local cluster (spec §5): boot it, start
// kube-prepull against it, opt a namespace in, create a Deployment with the hold annotation, show
// the prepull and the release live, print a summary, tear everything down.
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { Command } from "commander";
import { pino } from "pino";
import { ensureControlPlaneBinaries, packageRoot } from "../local-cluster/binaries.js";
import { startCluster, type RunningCluster } from "../local-cluster/cluster.js";
import { waitForPrepullWebhook, waitForServiceAccount } from "../local-cluster/wait.js";
import { decodeStatus, type PrepullStatus } from "../prepull/progress.js";
import { SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { startServe, type RunningServe } from "../serve.js";
import { parsePositiveInteger, type CliContext } from "./cluster-command.js";
import { progressBar } from "./run-output.js";
import { DEFAULT_HELPER_IMAGE } from "./serve-command.js";

const NAMESPACE = "demo";
const IMAGES = ["registry.example.com/shop/web:2.0", "registry.example.com/shop/metrics-agent:1.4"];

interface DemoFlags {
  nodes: number;
  pullSeconds: number;
}

export function demoCommand(ctx: CliContext, isTty: boolean): Command {
  return new Command("demo")
    .description("run kube-prepull on the embedded local cluster and show a held rollout released after its images are pulled")
    .option("--nodes <n>", "simulated nodes", (v) => parsePositiveInteger(v, 1000), 8)
    .option("--pull-seconds <n>", "longest simulated pull time per node", (v) => parsePositiveInteger(v, 600), 8)
    .action(async (flags: DemoFlags) => runDemo(ctx, isTty, flags));
}

async function runDemo(ctx: CliContext, isTty: boolean, flags: DemoFlags): Promise<void> {
  const say = (line: string): void => ctx.out(line);
  const t0 = Date.now();
  const at = (): string => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
  let cluster: RunningCluster | undefined;
  let serve: RunningServe | undefined;
  try {
    say("kube-prepull demo: building (first run only) and starting the local cluster…");
    const binaries = await ensureControlPlaneBinaries({ progress: ctx.err, env: ctx.env });
    cluster = await startCluster({
      name: "demo",
      stateRoot: path.join(packageRoot(), ".cluster"),
      binaries,
      nodes: flags.nodes,
      env: ctx.env,
      progress: (line) => ctx.err(`  [cluster] ${line}`),
    });
    say(`${at()}  cluster up: ${cluster.state.server}, ${flags.nodes} simulated nodes`);

    const kc = cluster.kubeConfig;
    serve = await startServe({
      kubeConfig: kc,
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
          extraAnnotations: { "sim.kube-prepull.io/pull-delay": "2s", "sim.kube-prepull.io/pull-jitter": `${Math.max(2, flags.pullSeconds)}s` },
        },
        cleanupTtlSeconds: 600,
        schedulingGraceSeconds: 30,
        maxConcurrentPrepulls: 20,
      },
      log: pino({ level: "warn" }),
    });
    say(`${at()}  kube-prepull serving on https://127.0.0.1:${serve.admissionPort} (webhook registered with the apiserver)`);

    const core = kc.makeApiClient(k8s.CoreV1Api);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE, labels: { "kube-prepull.io/enabled": "true" } } } });
    await waitForServiceAccount(core, NAMESPACE);
    say(`${at()}  namespace ${NAMESPACE} opted in (label kube-prepull.io/enabled=true)`);
    await waitForPrepullWebhook(apps, NAMESPACE);

    const created = await apps.createNamespacedDeployment({
      namespace: NAMESPACE,
      body: {
        metadata: { name: "shop", annotations: { "kube-prepull.io/hold": "true" } },
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: "shop" } },
          template: {
            metadata: { labels: { app: "shop" } },
            spec: { containers: IMAGES.map((image, i) => ({ name: ["web", "metrics"][i]!, image })) },
          },
        },
      },
    });
    say(`${at()}  created deployment/shop (3 replicas, kube-prepull.io/hold: "true") with ${IMAGES.join(", ")}`);
    say(`${at()}  admitted with spec.paused=${String(created.spec?.paused)} and held-by=${created.metadata?.annotations?.[SYSTEM_ANNOTATIONS.heldBy] ?? "-"}: the rollout waits`);

    const timeline = await followRollout(apps, say, at, isTty);
    const events = await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: "involvedObject.kind=Deployment,involvedObject.name=shop" });
    say("");
    say("summary");
    say(`  prepull:        ${timeline.status?.phase ?? "?"} — ${timeline.status?.message ?? ""}`);
    say(`  rollout held:   ${timeline.releasedAt !== undefined ? `${timeline.releasedAt.toFixed(1)} s (until every node had the images)` : "not released"}`);
    say(`  rollout done:   ${timeline.completedAt !== undefined ? `${timeline.completedAt.toFixed(1)} s after create, its pods started on nodes that already had the images` : "not completed"}`);
    say(`  DaemonSet gone: ${timeline.cleanedAt !== undefined ? `${timeline.cleanedAt.toFixed(1)} s after create` : "not yet"}`);
    say("  events:");
    const ours = events.items.filter((e) => e.source?.component === "kube-prepull");
    ours.sort((a, b) => new Date(a.firstTimestamp ?? 0).getTime() - new Date(b.firstTimestamp ?? 0).getTime());
    for (const e of ours) {
      say(`    ${(e.type ?? "").padEnd(7)} ${(e.reason ?? "").padEnd(17)} ${e.message ?? ""}`);
    }
  } finally {
    say(`${at()}  tearing down…`);
    await serve?.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    say(`${at()}  done`);
  }
}

async function followRollout(
  apps: k8s.AppsV1Api,
  say: (line: string) => void,
  at: () => string,
  isTty: boolean,
): Promise<{ status?: PrepullStatus; releasedAt?: number; completedAt?: number; cleanedAt?: number }> {
  const started = Date.now();
  const elapsed = (): number => (Date.now() - started) / 1000;
  const result: { status?: PrepullStatus; releasedAt?: number; completedAt?: number; cleanedAt?: number } = {};
  let lastLine = "";
  // The demo reads the Deployment twice a second for its display; kube-prepull itself only watches.
  while (elapsed() < 300) {
    const d = await apps.readNamespacedDeployment({ name: "shop", namespace: NAMESPACE });
    const status = decodeStatus(d.metadata?.annotations?.[SYSTEM_ANNOTATIONS.status]);
    result.status = status;
    const held = d.spec?.paused === true;
    const nodes = status?.nodes ?? { desired: 0, pulled: 0, failed: 0 };
    const line = `${progressBar(nodes.pulled, nodes.desired)} ${nodes.pulled}/${nodes.desired} nodes pulled  ${status?.phase ?? "Pending"}  ${held ? "rollout HELD" : "rollout running"}  ready ${d.status?.readyReplicas ?? 0}/3`;
    if (line !== lastLine) {
      if (isTty) process.stdout.write(`\r${at()}  ${line}\x1b[K`);
      else say(`${at()}  ${line}`);
      lastLine = line;
    }
    if (!held && result.releasedAt === undefined && status && status.phase !== "Pulling") {
      result.releasedAt = elapsed();
      if (isTty) process.stdout.write("\n");
      say(`${at()}  hold released: ${status.phase}`);
    }
    if (result.releasedAt !== undefined && result.completedAt === undefined && (d.status?.availableReplicas ?? 0) >= 3 && (d.status?.updatedReplicas ?? 0) >= 3) {
      result.completedAt = elapsed();
      if (isTty) process.stdout.write("\n");
      say(`${at()}  rollout complete: 3/3 replicas available`);
    }
    if (result.completedAt !== undefined) {
      const left = await apps.listNamespacedDaemonSet({ namespace: NAMESPACE, labelSelector: "app.kubernetes.io/managed-by=kube-prepull" });
      if (left.items.length === 0) {
        result.cleanedAt = elapsed();
        say(`${at()}  prepull DaemonSet deleted (the rollout has completed)`);
        return result;
      }
    }
    await sleep(500);
  }
  return result;
}
