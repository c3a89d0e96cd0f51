// The chaos soak (issue 15 item 1, docs/reliability.md "Chaos soak"): two `serve` replicas (real
// processes, leader election) behind the test balancer; Deployments with `hold` changing images
// again and again (some images fail to pull, some updates supersede a pull, some Deployments are
// deleted mid-pull); a random replica SIGKILLed every 5–30 s and started again; the apiserver and
// etcd each restarted once. A watcher checks the invariants (invariants.ts) every second and at the
// end. Used by `npm run soak` (bench/soak.ts, its own cluster) and the short cluster test
// (test/cluster/soak.test.ts, the suite's cluster). Every choice comes from the printed seed.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { renderWebhookConfigurations, WEBHOOK_TIMEOUT_SECONDS } from "../../src/admission/webhook-configuration.js";
import { componentHealthy, restartComponent } from "../../src/local-cluster/restart.js";
import { pollUntil as waitUntil, waitForPrepullWebhook, waitForServiceAccount } from "../../src/local-cluster/wait.js";
import { LABELS, MANAGED_BY, parseDuration } from "../../src/prepull/annotations.js";
import { isTerminal } from "../../src/prepull/progress.js";
import { generateLocalTls } from "../../src/serve.js";
import { startBalancer, startReplica, stopReplicas, type Replica } from "../../test/support/replicas.js";
import {
  daemonSetView, duplicateDaemonSets, eventView, finalViolations, HoldTracker, missingTerminalEvents, seededRandom, workloadView,
  type WorkloadView,
} from "./invariants.js";

export interface SoakOptions {
  /** Admin kubeconfig file of the cluster, and its state folder (to restart components). */
  kubeconfig: string;
  stateDir: string;
  durationMs: number;
  deployments: number;
  seed: number;
  /** Hold timeouts the Deployments cycle through (≥ 30 s each). */
  holdTimeouts: string[];
  apiserverDownMs: number;
  etcdDownMs: number;
  /** A replica is killed every [min, max] ms. */
  killEveryMs: [number, number];
  cleanupTtl: string;
  /** When set, replicas log at info and each one's output is written here as NAME.log when it exits. */
  replicaLogDir?: string;
  log: (line: string) => void;
}

export interface SoakReport {
  seed: number;
  durationMs: number;
  deployments: number;
  writes: { updates: number; supersedes: number; deletes: number; failingImages: number; errors: number };
  holds: number;
  releases: number;
  maxReleaseLatenessMs: number;
  /** The same, not moved past outages and leaderless times. */
  maxRawReleaseLatenessMs: number;
  /** Kills of the replica holding the Lease, and the time until another one held it, ms. */
  leaderKills: number[];
  kills: number;
  restarts: string[];
  missingTerminalEvents: number;
  finalPhases: Record<string, number>;
  violations: string[];
}

const FAILING_REGISTRY = "example.com/fail";
/** Prepull pods pull for 2–15 s; images under FAILING_REGISTRY fail (docs/local-cluster.md simulation annotations). */
const SIMULATION = [
  "sim.kube-prepull.io/pull-delay=2s", "sim.kube-prepull.io/pull-jitter=15s",
  "sim.kube-prepull.io/pull-error=ErrImagePull", `sim.kube-prepull.io/pull-error-images=^${FAILING_REGISTRY.replaceAll(".", "\\.")}/`,
];

/** Everything the soak started, for the final checks and the cleanup. */
interface Soak {
  o: SoakOptions;
  kc: k8s.KubeConfig;
  apps: k8s.AppsV1Api;
  core: k8s.CoreV1Api;
  coordination: k8s.CoordinationV1Api;
  ns: string;
  systemNs: string;
  webhook: string;
  dir: string;
  replicas: Replica[];
  replicaArgs: string[];
  balancer: { port: number; close: () => Promise<void> };
  random: () => number;
  tracker: HoldTracker;
  violations: Set<string>;
  /** A component is being restarted: no kills meanwhile (a replica cannot start without the apiserver). */
  outage: boolean;
  stopping: boolean;
  report: SoakReport;
}

/** Every replica process started and not yet stopped, for a soak interrupted by a signal. */
const live = new Set<Replica>();

/** Stops the replicas of a soak interrupted before its own clean-up (Ctrl-C of `npm run soak`). */
export function killReplicas(): void {
  for (const r of live) r.child.kill("SIGKILL");
}

async function launch(name: string, args: string[], logDir: string | undefined): Promise<Replica> {
  const replica = await startReplica(name, args);
  live.add(replica);
  replica.child.once("exit", () => {
    live.delete(replica);
    if (logDir) writeFileSync(path.join(logDir, `${name}.log`), replica.output());
  });
  return replica;
}

const between = (random: () => number, [min, max]: [number, number]): number => min + random() * (max - min);

async function setUp(o: SoakOptions): Promise<Soak> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(o.kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const [ns, systemNs, webhook] = [`soak-${process.pid}`, `soak-system-${process.pid}`, `kube-prepull-soak-${process.pid}`];
  await core.createNamespace({ body: { metadata: { name: ns, labels: { [LABELS.enabled]: "true" } } } });
  await core.createNamespace({ body: { metadata: { name: systemNs } } });
  await waitForServiceAccount(core, ns);
  const dir = mkdtempSync(path.join(os.tmpdir(), "kube-prepull-soak-"));
  const tls = generateLocalTls("127.0.0.1", new Date());
  writeFileSync(path.join(dir, "tls.crt"), tls.certPem);
  writeFileSync(path.join(dir, "tls.key"), tls.keyPem, { mode: 0o600 });
  const replicas: Replica[] = [];
  const balancer = await startBalancer(() => replicas.map((r) => r.admissionPort));
  const report: SoakReport = {
    seed: o.seed, durationMs: o.durationMs, deployments: o.deployments,
    writes: { updates: 0, supersedes: 0, deletes: 0, failingImages: 0, errors: 0 },
    holds: 0, releases: 0, maxReleaseLatenessMs: 0, maxRawReleaseLatenessMs: 0, leaderKills: [], kills: 0, restarts: [], missingTerminalEvents: 0, finalPhases: {}, violations: [],
  };
  const replicaArgs = [
    "--kubeconfig", o.kubeconfig, "--namespace", systemNs,
    "--tls-cert-file", path.join(dir, "tls.crt"), "--tls-key-file", path.join(dir, "tls.key"),
    ...SIMULATION.flatMap((a) => ["--prepull-pod-annotation", a]), "--cleanup-ttl", o.cleanupTtl, "--log-level", o.replicaLogDir ? "info" : "warn",
  ];
  const soak: Soak = {
    o, kc, apps: kc.makeApiClient(k8s.AppsV1Api), core, coordination: kc.makeApiClient(k8s.CoordinationV1Api), ns, systemNs, webhook, dir, replicas, replicaArgs, balancer,
    random: seededRandom(o.seed), tracker: new HoldTracker(), violations: new Set(), outage: false, stopping: false, report,
  };
  replicas.push(await launch("soak-replica-1", replicaArgs, o.replicaLogDir), await launch("soak-replica-2", replicaArgs, o.replicaLogDir));
  await registerWebhooks(soak, tls.caPem);
  await waitForPrepullWebhook(soak.apps, ns);
  return soak;
}

/** The webhook configurations, pointing at the balancer, for the soak's namespace only. */
async function registerWebhooks(soak: Soak, caBundlePem: string): Promise<void> {
  const admission = soak.kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  const { mutating, validating } = renderWebhookConfigurations({
    name: soak.webhook, mode: "opt-in", ownNamespace: soak.systemNs, target: { url: `https://127.0.0.1:${soak.balancer.port}`, caBundlePem }, timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
  });
  const onlyOurs = { matchLabels: { "kubernetes.io/metadata.name": soak.ns } };
  for (const w of [...mutating.webhooks!, ...validating.webhooks!]) w.namespaceSelector = onlyOurs;
  await admission.createMutatingWebhookConfiguration({ body: mutating });
  await admission.createValidatingWebhookConfiguration({ body: validating });
}

const nameOf = (index: number): string => `soak-${String(index).padStart(3, "0")}`;

function deployment(soak: Soak, index: number, version: number): k8s.V1Deployment {
  const name = nameOf(index);
  // Every tenth Deployment's images always fail; the others fail now and then.
  const failing = index % 10 === 0 || soak.random() < 0.1;
  if (failing) soak.report.writes.failingImages++;
  const image = `${failing ? FAILING_REGISTRY : "example.com/soak"}/${name}:${version}`;
  return {
    metadata: { name, annotations: { "kube-prepull.io/hold": "true", "kube-prepull.io/hold-timeout": soak.o.holdTimeouts[index % soak.o.holdTimeouts.length]! } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { terminationGracePeriodSeconds: 0, containers: [{ name: "app", image }] } },
    },
  };
}

const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

/** Changes one Deployment's image (a new prepull request, superseding any in flight). */
async function update(soak: Soak, index: number, version: number): Promise<void> {
  const body = deployment(soak, index, version);
  await soak.apps.patchNamespacedDeployment({ name: body.metadata!.name!, namespace: soak.ns, body: { spec: { template: body.spec!.template } } }, mergePatch);
  soak.report.writes.updates++;
}

/** Deployments changing images until the end: updates, quick double updates, deletes and re-creates. */
async function drive(soak: Soak, until: number): Promise<void> {
  const versions = Array.from({ length: soak.o.deployments }, () => 1);
  const deleted = new Set<number>();
  for (let i = 0; i < soak.o.deployments; i++) await soak.apps.createNamespacedDeployment({ namespace: soak.ns, body: deployment(soak, i, 1) });
  while (Date.now() < until) {
    await sleep(between(soak.random, [200, 1200]) * Math.max(1, 20 / soak.o.deployments));
    const index = Math.floor(soak.random() * soak.o.deployments);
    const roll = soak.random();
    const version = ++versions[index]!;
    try {
      if (deleted.has(index)) {
        await soak.apps.createNamespacedDeployment({ namespace: soak.ns, body: deployment(soak, index, version) });
        deleted.delete(index);
      } else if (roll < 0.1) {
        await soak.apps.deleteNamespacedDeployment({ name: nameOf(index), namespace: soak.ns });
        soak.report.writes.deletes++;
        deleted.add(index);
      } else {
        await update(soak, index, version);
        if (roll < 0.3) {
          // Superseded mid-pull: a second change shortly after the first.
          await sleep(between(soak.random, [300, 3000]));
          await update(soak, index, ++versions[index]!);
          soak.report.writes.supersedes++;
        }
      }
    } catch {
      soak.report.writes.errors++; // the apiserver is down, or a write raced a delete
    }
  }
  for (const index of deleted) {
    await soak.apps.createNamespacedDeployment({ namespace: soak.ns, body: deployment(soak, index, ++versions[index]!) }).catch(() => soak.report.writes.errors++);
  }
}

/** startReplica, or an error (and the process stopped) when it has not said it serves within `ms`. */
async function startReplicaWithin(name: string, args: string[], logDir: string | undefined, ms: number): Promise<Replica> {
  const starting = launch(name, args, logDir);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`replica ${name} did not serve within ${ms / 1000}s`)), ms)));
  try {
    return await Promise.race([starting, timeout]);
  } catch (error) {
    void starting.then((r) => r.child.kill("SIGKILL"), () => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Kills a random replica with SIGKILL every few seconds and starts a new one in its place. */
async function chaos(soak: Soak, until: number): Promise<void> {
  let started = soak.replicas.length;
  while (Date.now() < until && !soak.stopping) {
    await sleep(between(soak.random, soak.o.killEveryMs));
    if (Date.now() >= until) return;
    while (soak.outage) await sleep(500);
    const victim = soak.replicas[Math.floor(soak.random() * soak.replicas.length)]!;
    const wasLeader = (await leaseHolder(soak))?.startsWith(`${victim.name}_`) === true;
    victim.child.kill("SIGKILL");
    if (wasLeader) void untilAnotherLeads(soak, victim.name, Date.now());
    soak.replicas.splice(soak.replicas.indexOf(victim), 1);
    soak.report.kills++;
    for (let attempt = 1; ; attempt++) {
      try {
        soak.replicas.push(await startReplicaWithin(`soak-replica-${++started}`, soak.replicaArgs, soak.o.replicaLogDir, 60_000));
        break;
      } catch (error) {
        // A replica started while the control plane is down exits (serve's start checks the
        // Lease's namespace; test/unit/server/failed-start.test.ts) and the kubelet would restart
        // it: so does this, and a try that failed during an outage does not count.
        if (soak.outage) {
          while (soak.outage) await sleep(500);
          attempt = 0;
          continue;
        }
        if (attempt >= 5) throw error;
        await sleep(2000);
      }
    }
  }
}

/** The Lease's holder (`POD_NAME_pid`), or undefined when it cannot be read. */
async function leaseHolder(soak: Soak): Promise<string | undefined> {
  const lease = await soak.coordination.readNamespacedLease({ name: "kube-prepull", namespace: soak.systemNs }).catch(() => undefined);
  return lease?.spec?.holderIdentity ?? undefined;
}

/** The leader `killed` died at `from`: no replica leads until another one holds the Lease. */
async function untilAnotherLeads(soak: Soak, killed: string, from: number): Promise<void> {
  const window = soak.tracker.leaderless(from);
  try {
    for (;;) {
      const holder = await leaseHolder(soak);
      if ((holder && !holder.startsWith(`${killed}_`)) || soak.stopping) break;
      await sleep(250);
    }
    soak.report.leaderKills.push(Date.now() - from);
  } finally {
    window.end(Date.now());
  }
}

/** The apiserver, then etcd, restarted once each (a third and two thirds into the run). */
async function outages(soak: Soak, from: number): Promise<void> {
  const plan: [number, "kube-apiserver" | "etcd", number][] = [[1 / 3, "kube-apiserver", soak.o.apiserverDownMs], [2 / 3, "etcd", soak.o.etcdDownMs]];
  for (const [at, component, downForMs] of plan) {
    await sleep(Math.max(0, from + at * soak.o.durationMs - Date.now()));
    if (soak.stopping) return;
    soak.outage = true;
    const window = soak.tracker.outage(Date.now());
    try {
      const r = await restartComponent(soak.o.stateDir, component, { downForMs });
      // Back when the apiserver is ready again (after etcd's return it reconnects on its own backoff).
      await waitUntil(() => componentHealthy(soak.o.stateDir, "kube-apiserver"), { what: "the apiserver to be ready", timeoutMs: 180_000, intervalMs: 200 });
      window.end(Date.now());
      const line = `${component} down ${((r.readyAt - r.stoppedAt) / 1000).toFixed(1)}s (stop to ${component === "kube-apiserver" ? "/readyz" : "/health"}), control plane back after ${((Date.now() - r.stoppedAt) / 1000).toFixed(1)}s`;
      soak.report.restarts.push(line);
      soak.o.log(line);
    } finally {
      window.end(Date.now());
      soak.outage = false;
    }
  }
}

interface Snapshot {
  workloads: WorkloadView[];
  daemonSets: ReturnType<typeof daemonSetView>[];
}

async function snapshot(soak: Soak): Promise<Snapshot> {
  const [deployments, daemonSets] = await Promise.all([
    soak.apps.listNamespacedDeployment({ namespace: soak.ns }),
    soak.apps.listNamespacedDaemonSet({ namespace: soak.ns, labelSelector: `${LABELS.managedBy}=${MANAGED_BY}` }),
  ]);
  return { workloads: deployments.items.map(workloadView), daemonSets: daemonSets.items.map(daemonSetView) };
}

/** Every second: holds (and their lateness) and duplicate DaemonSets. Unreachable apiserver: skipped. */
async function watch(soak: Soak): Promise<void> {
  while (!soak.stopping) {
    try {
      const s = await snapshot(soak);
      soak.tracker.observe(s.workloads, Date.now());
      for (const problem of duplicateDaemonSets(s.daemonSets)) soak.violations.add(problem);
    } catch {
      // the apiserver is down: nothing to observe
    }
    await sleep(1000);
  }
}

const settled = (s: Snapshot): boolean =>
  s.workloads.every((w) => !w.heldBy && (!w.request || (w.status !== undefined && isTerminal(w.status.phase) && w.status.request === w.request.id)));

/** After the run: every prepull ended, then cleanup due; the final checks. */
async function finish(soak: Soak, cleanupTtlMs: number): Promise<void> {
  const giveUpAt = Date.now() + 180_000;
  let s = await snapshot(soak);
  while (!settled(s) && Date.now() < giveUpAt) {
    await sleep(2000);
    s = await snapshot(soak).catch(() => s);
  }
  const lastFinish = Math.max(0, ...s.workloads.map((w) => Date.parse(w.status?.finishedAt ?? "") || 0));
  // Cleanup is due cleanup-ttl after the last finish; the DaemonSet controller and GC get 20 s more.
  await sleep(Math.max(0, lastFinish + cleanupTtlMs + 20_000 - Date.now()));
  s = await snapshot(soak);
  soak.tracker.observe(s.workloads, Date.now());
  const events = (await soak.core.listNamespacedEvent({ namespace: soak.ns })).items
    .filter((e) => e.source?.component === "kube-prepull" || e.reportingComponent === "kube-prepull").map(eventView);
  for (const problem of finalViolations(s.workloads, s.daemonSets, events)) soak.violations.add(problem);
  const stats = soak.tracker.summary();
  for (const problem of stats.late) soak.violations.add(problem);
  Object.assign(soak.report, {
    holds: stats.holds, releases: stats.releases, maxReleaseLatenessMs: Number.isFinite(stats.maxLatenessMs) ? stats.maxLatenessMs : 0,
    maxRawReleaseLatenessMs: Number.isFinite(stats.maxRawLatenessMs) ? stats.maxRawLatenessMs : 0,
    missingTerminalEvents: missingTerminalEvents(s.workloads, events), violations: [...soak.violations],
  });
  for (const w of s.workloads) soak.report.finalPhases[w.status?.phase ?? "none"] = (soak.report.finalPhases[w.status?.phase ?? "none"] ?? 0) + 1;
}

async function tearDown(soak: Soak): Promise<void> {
  soak.stopping = true;
  await stopReplicas(soak.replicas);
  await soak.balancer.close();
  const admission = soak.kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  await admission.deleteMutatingWebhookConfiguration({ name: soak.webhook }).catch(() => undefined);
  await admission.deleteValidatingWebhookConfiguration({ name: soak.webhook }).catch(() => undefined);
  for (const name of [soak.ns, soak.systemNs]) await soak.core.deleteNamespace({ name }).catch(() => undefined);
  rmSync(soak.dir, { recursive: true, force: true });
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  o.log(`seed ${o.seed}: ${o.deployments} Deployments for ${(o.durationMs / 1000).toFixed(0)}s, a replica killed every ${o.killEveryMs.map((ms) => ms / 1000).join("–")}s`);
  const soak = await setUp(o);
  try {
    const started = Date.now();
    const until = started + o.durationMs;
    const watcher = watch(soak);
    await Promise.all([drive(soak, until), chaos(soak, until), outages(soak, started)]);
    o.log(`driving done (${soak.report.writes.updates} updates, ${soak.report.kills} kills); waiting for every prepull to end and cleanup`);
    await finish(soak, (parseDuration(o.cleanupTtl) ?? 0) * 1000);
    soak.stopping = true;
    await watcher;
    return soak.report;
  } finally {
    await tearDown(soak);
  }
}

/** The report as the lines `npm run soak` and the test print. */
export function reportLines(r: SoakReport): string[] {
  return [
    `seed ${r.seed}; ${r.deployments} Deployments; ${(r.durationMs / 1000).toFixed(0)} s of changes`,
    `writes: ${r.writes.updates} image updates (${r.writes.supersedes} superseding a pull just started), ${r.writes.deletes} deletes mid-run, ${r.writes.failingImages} failing images, ${r.writes.errors} refused (outages)`,
    `holds: ${r.holds}, releases: ${r.releases}, max release lateness vs. hold-timeout: ${(r.maxReleaseLatenessMs / 1000).toFixed(1)} s past outages and leaderless times (${(r.maxRawReleaseLatenessMs / 1000).toFixed(1)} s not taking them out)`,
    `replica kills (SIGKILL): ${r.kills}, ${r.leaderKills.length} of them the leader (no leader for ${r.leaderKills.map((ms) => (ms / 1000).toFixed(1)).join(", ") || "–"} s); restarts: ${r.restarts.join(", ") || "none"}`,
    `final phases: ${JSON.stringify(r.finalPhases)}; Deployments without a terminal Event (best effort): ${r.missingTerminalEvents}`,
    `violations: ${r.violations.length}${r.violations.map((v) => `\n  - ${v}`).join("")}`,
  ];
}
