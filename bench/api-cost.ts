// API cost and end-to-end timings of one prepull: a local cluster with N simulated nodes whose
// apiserver audits every request of kube-prepull's ServiceAccount; `kube-prepull serve` as its own
// process (the CLI, as deployed, with that ServiceAccount's token); one held Deployment created,
// followed until its DaemonSet is deleted. Requests are counted from the audit log (one per audit
// ID, so a watch counts once however long it stays open). The same cluster then runs the scripted
// way (bench/scripted.ts) and the burst (bench/burst.ts), when asked for.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { SYSTEM_ANNOTATIONS } from "../src/prepull/annotations.js";
import { pollUntil, waitForPrepullWebhook, waitForServiceAccount } from "../src/local-cluster/wait.js";
import { measureBurst, type BurstRun } from "./burst.js";
import { measureScripted, type ScriptedRun } from "./scripted.js";
import { AUDIT_POLICY, auditedRequests, countBetween, OWN_NAMESPACE, SCRIPT_ACCOUNT, SERVE_ACCOUNT, serviceAccountKubeconfig } from "./support/audit.js";
import { STATE_ROOT, startBenchCluster } from "./support/cluster.js";
import { stopOnInterrupt } from "./support/interruption.js";
import { apiserverCounter, apiserverMetrics, largestWatchEvents, openWatches, watchEventBytes, type WatchEventShare } from "./support/apiserver-metrics.js";
import { startByteCounter, type ByteCounter } from "./support/byte-counter.js";
import { cpuSeconds, log, peakMemoryBytes } from "./support/machine.js";
import { sampleServeMemory, type MemorySample } from "./support/serve-memory.js";

const NAMESPACE = "bench";

export interface PrepullRun {
  nodes: number;
  pullDelay: string;
  /** Requests by "verb resource[/subresource]", from the moment serve was ready until the DaemonSet was deleted. */
  perPrepull: Map<string, number>;
  /** Requests from serve's start until it was ready (registration, lists, watches). */
  startup: Map<string, number>;
  /** Milliseconds from the Deployment's create to each milestone. */
  milestones: Array<[string, number]>;
  servePeakRss: number;
  /** serve's memory at its highest sampled RSS during the prepull: what the peak is made of. */
  serveMemoryAtPeak?: MemorySample;
  serveCpuSeconds: number;
  /** Increase of apiserver_terminated_watchers_total{resource="pods"} (all clients) over the prepull. */
  podWatchersTerminated: number;
  /** ... of every resource. */
  watchersTerminated: number;
  /** Bytes serve received from the apiserver over the prepull (counted at serve's side). */
  bytesReceived: number;
  /**
   * The apiserver's watch-event bytes over the prepull to every watcher, by resource, largest first,
   * with the cluster-wide watches of that resource open at the end: which resource the bytes are.
   */
  watchEvents?: WatchEventShare[];
  /** The prepull DaemonSet as first seen (to run it again without kube-prepull). */
  daemonSet?: k8s.V1DaemonSet;
}

/** One side-by-side pair: kube-prepull's held prepull and the scripted way, in the order run. */
export interface Pair {
  prepull: PrepullRun;
  scripted: ScriptedRun;
  scriptedFirst: boolean;
}

/** kube-prepull's DaemonSet applied by hand with serve stopped: when all its pods were Ready. */
export interface BareDaemonSetRun {
  allReadyMs: number;
}

/** What one cluster measured: kube-prepull's single prepull, then the scripted way, then the burst (each if asked for). */
export interface ClusterRun {
  nodes: number;
  prepull?: PrepullRun;
  scripted?: ScriptedRun;
  /** With kube-prepull and the script both asked for: every pair, alternating which goes first. */
  pairs: Pair[];
  bare?: BareDaemonSetRun;
  /** The script's run before the pairs, not counted (ms to done), when pairs were measured. */
  warmupMs?: number;
  burst?: BurstRun;
  /** serve's start: until /readyz (caches synced), its peak RSS by then, and the Deployments it had to cache. */
  startup?: { syncedMs: number; peakRss: number; deployments: number };
}

/** FILLER_NAMESPACES namespaces, covered by kube-prepull, with `count` Deployments of replicas 0 in all. */
const FILLER_NAMESPACES = 20;
async function createFillerDeployments(kc: k8s.KubeConfig, count: number): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const t0 = Date.now();
  for (let n = 0; n < FILLER_NAMESPACES; n++) {
    await core.createNamespace({ body: { metadata: { name: `filler-${n}`, labels: { "kube-prepull.io/enabled": "true" } } } });
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      const name = `app-${i}`;
      await apps.createNamespacedDeployment({
        namespace: `filler-${i % FILLER_NAMESPACES}`,
        body: {
          metadata: { name, labels: { app: name, team: `team-${i % 50}` } },
          spec: {
            replicas: 0,
            selector: { matchLabels: { app: name } },
            template: {
              metadata: { labels: { app: name } },
              spec: {
                containers: [{
                  name: "app", image: `registry.example.com/filler/app-${i}:v1`,
                  env: [{ name: "MODE", value: "production" }, { name: "LOG_LEVEL", value: "info" }],
                  ports: [{ containerPort: 8080, name: "http" }],
                  resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
                  readinessProbe: { httpGet: { path: "/healthz", port: 8080 } },
                }],
              },
            },
          },
        },
      });
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  log(`${count} filler Deployments in ${FILLER_NAMESPACES} namespaces created in ${Date.now() - t0} ms`);
}

/** Until the apiserver has sent no watch event of `resource` for 10 s (at most 15 min). */
async function waitForQuietWatches(kubectl: string, kubeconfig: string, resource: string): Promise<void> {
  const t0 = Date.now();
  let last = -1;
  await pollUntil(async () => {
    const sent = watchEventBytes(await apiserverMetrics(kubectl, kubeconfig)).get(resource) ?? 0;
    const quiet = sent === last;
    last = sent;
    return quiet;
  }, { what: `the apiserver's ${resource} watch events to stop`, timeoutMs: 900_000, intervalMs: 10_000 });
  log(`${resource}: no watch event for 10 s, ${Date.now() - t0} ms after the filler was created`);
}

/** Ends serve (SIGTERM: it stops and exits) and waits for it. */
async function stopServeProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill();
  await exited;
}

/** serve as its own process, stopped by an interruption from its spawn on (`release` once stopped otherwise). */
async function startServeProcess(kubeconfig: string, pullDelay: string): Promise<{ child: ChildProcess; opsPort: number; release: () => void }> {
  const main = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
  const child = spawn(process.execPath, [main, "serve", "--kubeconfig", kubeconfig, "--port", "0", "--ops-port", "0",
    "--register", "--webhook-name", "kube-prepull-bench", "--namespace", OWN_NAMESPACE, "--no-leader-elect",
    "--prepull-pod-annotation", `sim.kube-prepull.io/pull-delay=${pullDelay}`, "--log-level", "info"],
  { stdio: ["ignore", "pipe", "inherit"] });
  const release = stopOnInterrupt(() => stopServeProcess(child));
  for await (const line of createInterface({ input: child.stdout })) {
    const entry = JSON.parse(line) as { msg?: string; ops?: string };
    if (entry.msg === "serving" && entry.ops) {
      child.stdout.resume(); // keep draining the logs
      return { child, opsPort: Number(new URL(entry.ops).port), release };
    }
  }
  release();
  throw new Error("kube-prepull serve exited before serving");
}

function heldDeployment(name: string, nodes: number, holdTimeout?: string): k8s.V1Deployment {
  return {
    metadata: { name, annotations: { "kube-prepull.io/hold": "true", ...(holdTimeout ? { "kube-prepull.io/hold-timeout": holdTimeout } : {}) } },
    spec: {
      replicas: Math.min(10, nodes),
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "app", image: "registry.example.com/shop/app:v1" }, { name: "sidecar", image: "registry.example.com/shop/sidecar:v1" }] },
      },
    },
  };
}

/** Follows the Deployment (as the admin, not audited) and returns when each milestone was first seen. */
async function followPrepull(kc: k8s.KubeConfig, nodes: number, name: string, holdTimeout?: string): Promise<{ milestones: Array<[string, number]>; daemonSet?: k8s.V1DaemonSet }> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const seen = new Map<string, number>();
  let firstSeen: k8s.V1DaemonSet | undefined;
  let lastLog = 0;
  const t0 = Date.now();
  await apps.createNamespacedDeployment({ namespace: NAMESPACE, body: heldDeployment(name, nodes, holdTimeout) });
  const mark = (what: string, reached: boolean): void => {
    if (reached && !seen.has(what)) {
      seen.set(what, Date.now() - t0);
      log(`${nodes} nodes: ${what} after ${Date.now() - t0} ms`);
    }
  };
  await pollUntil(async () => {
    const [deployment, daemonSets] = await Promise.all([
      apps.readNamespacedDeployment({ name, namespace: NAMESPACE }),
      apps.listNamespacedDaemonSet({ namespace: NAMESPACE, labelSelector: `kube-prepull.io/deployment=${name}` }),
    ]);
    const daemonSet = daemonSets.items[0];
    firstSeen ??= daemonSet;
    const status = JSON.parse(deployment.metadata?.annotations?.[SYSTEM_ANNOTATIONS.status] ?? "{}") as { phase?: string; nodes?: { pulled?: number } };
    mark("DaemonSet created", daemonSet !== undefined);
    // The cluster's view (DaemonSet status) next to kube-prepull's (its status annotation).
    mark("DaemonSet status: all pods Ready", (daemonSet?.status?.numberReady ?? 0) >= nodes);
    mark("status annotation: half the nodes pulled", (status.nodes?.pulled ?? 0) >= nodes / 2);
    mark(`all ${nodes} nodes pulled (status Succeeded)`, status.phase === "Succeeded");
    mark("hold released", seen.has("DaemonSet created") && deployment.spec?.paused !== true);
    const replicas = deployment.spec?.replicas ?? 0;
    const s = deployment.status;
    mark("rollout complete", seen.has("hold released") && s?.observedGeneration === deployment.metadata?.generation
      && s?.updatedReplicas === replicas && s?.availableReplicas === replicas && s?.replicas === replicas);
    mark("DaemonSet deleted", seen.has("DaemonSet created") && daemonSet === undefined);
    if (daemonSet && Date.now() - lastLog > 15_000) {
      lastLog = Date.now();
      log(`${nodes} nodes: DaemonSet ${daemonSet.status?.numberReady ?? 0}/${daemonSet.status?.desiredNumberScheduled ?? 0} Ready; status ${status.phase ?? "none"} ${status.nodes?.pulled ?? 0} pulled`);
    }
    return seen.has("DaemonSet deleted");
  }, { what: "the prepull to finish and its DaemonSet to be deleted", timeoutMs: 600_000 + 300 * nodes, intervalMs: 100 });
  return { milestones: [...seen], ...(firstSeen ? { daemonSet: firstSeen } : {}) };
}

/**
 * kube-prepull's DaemonSet (as it created it) applied by the admin with serve stopped, under
 * another name: the DaemonSet controller's and the kubelets' own time for the same pods.
 */
async function measureBareDaemonSet(kc: k8s.KubeConfig, captured: k8s.V1DaemonSet, nodes: number, namespace: string): Promise<BareDaemonSetRun> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const name = "prepull-bare";
  const labels = { "bench.kube-prepull.io/bare": name };
  const template = captured.spec!.template;
  const body: k8s.V1DaemonSet = {
    metadata: { name, labels },
    spec: { ...captured.spec!, selector: { matchLabels: labels }, template: { ...template, metadata: { ...template.metadata, labels } } },
  };
  const t0 = Date.now();
  await apps.createNamespacedDaemonSet({ namespace, body });
  await pollUntil(async () => ((await apps.readNamespacedDaemonSet({ name, namespace })).status?.numberReady ?? 0) >= nodes,
    { what: "the bare DaemonSet to be all Ready", timeoutMs: 600_000, intervalMs: 100 });
  const allReadyMs = Date.now() - t0;
  log(`${nodes} nodes: kube-prepull's DaemonSet without kube-prepull all Ready after ${allReadyMs} ms`);
  await apps.deleteNamespacedDaemonSet({ name, namespace, propagationPolicy: "Foreground" });
  await pollUntil(async () => (await apps.listNamespacedDaemonSet({ namespace })).items.length === 0, { what: "the bare DaemonSet to go", timeoutMs: 300_000 });
  return { allReadyMs };
}

export async function measureOnCluster(options: {
  nodes: number; pullDelay: string; prepull: boolean; scripted: boolean; burstDeployments: number; scriptedFirst?: boolean;
  /** Side-by-side pairs when both kube-prepull and the script are measured (order alternates). */
  pairs?: number;
  /** Also run kube-prepull's DaemonSet with serve stopped (at the end). */
  bare?: boolean;
  /** Deployments (replicas 0, in covered namespaces) created before serve starts: its caches' size. */
  fillerDeployments?: number;
  /** Folder of the cluster's state (default .cluster). */
  stateRoot?: string;
  /** The held Deployment's hold-timeout annotation (default: none, kube-prepull's 10m). */
  holdTimeout?: string;
}): Promise<ClusterRun> {
  const stateRoot = options.stateRoot ?? STATE_ROOT;
  // Beside the cluster's state directory, which startCluster empties first.
  const policy = path.join(stateRoot, "bench-audit-policy.yaml");
  const auditLog = path.join(stateRoot, "bench-audit.log");
  mkdirSync(stateRoot, { recursive: true });
  writeFileSync(policy, AUDIT_POLICY);
  writeFileSync(auditLog, "");
  const { cluster } = await startBenchCluster({
    name: "bench-api", nodes: options.nodes, stateRoot,
    extraApiserverArgs: [`--audit-policy-file=${policy}`, `--audit-log-path=${auditLog}`, "--audit-log-format=json", "--audit-log-mode=blocking"],
  });
  let serve: ChildProcess | undefined;
  let releaseServe = (): void => undefined;
  let counter: ByteCounter | undefined;
  const run: ClusterRun = { nodes: options.nodes, pairs: [] };
  try {
    const kc = cluster.kubeConfig;
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const stateDir = cluster.state.stateDir;
    const kubectl = path.join(cluster.state.binDir, "kubectl");
    const kubeconfig = path.join(stateDir, "kube-prepull.kubeconfig");
    const scriptKubeconfig = path.join(stateDir, "scripted-prepull.kubeconfig");
    counter = await startByteCounter(kc.getCurrentCluster()!.server);
    await core.createNamespace({ body: { metadata: { name: OWN_NAMESPACE } } });
    await serviceAccountKubeconfig(kc, SERVE_ACCOUNT, kubeconfig, counter.url);
    await serviceAccountKubeconfig(kc, SCRIPT_ACCOUNT, scriptKubeconfig);
    for (const [name, enabled] of [[NAMESPACE, true], ["scripted", false], ["burst", true]] as const) {
      await core.createNamespace({ body: { metadata: { name, labels: enabled ? { "kube-prepull.io/enabled": "true" } : {} } } });
      await waitForServiceAccount(core, name);
    }

    if (options.fillerDeployments) {
      await createFillerDeployments(kc, options.fillerDeployments);
      // The controller-manager then writes every new Deployment's status (its ReplicaSet, conditions):
      // ~100 MB of Deployment events that would otherwise land in the prepull's byte count.
      await waitForQuietWatches(kubectl, cluster.state.kubeconfig, "deployments");
    }

    const serveStarted = Date.now();
    const started = await startServeProcess(kubeconfig, options.pullDelay);
    serve = started.child;
    releaseServe = started.release;
    const pid = serve.pid!;
    await pollUntil(async () => (await fetch(`http://127.0.0.1:${started.opsPort}/readyz`)).ok, { what: "serve /readyz", timeoutMs: 600_000 });
    run.startup = { syncedMs: Date.now() - serveStarted, peakRss: peakMemoryBytes(pid) ?? 0, deployments: options.fillerDeployments ?? 0 };
    await waitForPrepullWebhook(kc.makeApiClient(k8s.AppsV1Api), NAMESPACE);
    await sleep(2000); // let the initial lists and watches settle
    const ready = auditedRequests(auditLog, SERVE_ACCOUNT);
    const watchersTerminated = (labels: Record<string, string> = {}): Promise<number> =>
      apiserverCounter(kubectl, cluster.state.kubeconfig, "apiserver_terminated_watchers_total", labels);
    const bytes = counter;

    const measurePrepull = async (index: number): Promise<PrepullRun> => {
      const before = auditedRequests(auditLog, SERVE_ACCOUNT);
      const [podsBefore, allBefore, bytesBefore] = [await watchersTerminated({ resource: "pods" }), await watchersTerminated(), bytes.received()];
      const watchBytesBefore = watchEventBytes(await apiserverMetrics(kubectl, cluster.state.kubeconfig));
      const memory = sampleServeMemory(pid, started.opsPort);
      const followed = await followPrepull(kc, options.nodes, `shop-${index}`, options.holdTimeout);
      await sleep(3000); // anything the controller still does after the delete
      const serveMemoryAtPeak = memory.stop();
      const metricsAfter = await apiserverMetrics(kubectl, cluster.state.kubeconfig);
      const watchEvents = largestWatchEvents(watchBytesBefore, watchEventBytes(metricsAfter), openWatches(metricsAfter));
      return {
        nodes: options.nodes, pullDelay: options.pullDelay,
        perPrepull: countBetween(before, auditedRequests(auditLog, SERVE_ACCOUNT)),
        startup: countBetween(new Map(), ready),
        milestones: followed.milestones,
        servePeakRss: peakMemoryBytes(pid) ?? 0,
        ...(serveMemoryAtPeak ? { serveMemoryAtPeak } : {}),
        serveCpuSeconds: cpuSeconds(pid),
        podWatchersTerminated: (await watchersTerminated({ resource: "pods" })) - podsBefore,
        watchersTerminated: (await watchersTerminated()) - allBefore,
        bytesReceived: bytes.received() - bytesBefore,
        watchEvents,
        ...(followed.daemonSet ? { daemonSet: followed.daemonSet } : {}),
      };
    };
    const measureScriptedWay = async (index: number): Promise<ScriptedRun> => {
      log(`${options.nodes} nodes: the scripted way (bench/scripted-prepull.sh), run ${index + 1}`);
      return measureScripted({
        kc, kubectl, kubeconfig: scriptKubeconfig, auditLog, stateDir, namespace: "scripted", nodes: options.nodes, pullDelay: options.pullDelay, name: `prepull-scripted-${index}`,
      });
    };
    const pairs = options.prepull && options.scripted ? Math.max(1, options.pairs ?? 1) : 1;
    if (options.prepull && options.scripted) {
      // The first DaemonSet on a cluster whose nodes have just become Ready is the slowest of a run,
      // whoever applies it (docs/benchmarks.md): one uncounted run first, so no side pays for it.
      run.warmupMs = (await measureScripted({
        kc, kubectl, kubeconfig: scriptKubeconfig, auditLog, stateDir, namespace: "scripted", nodes: options.nodes, pullDelay: options.pullDelay, name: "prepull-warmup",
      })).doneMs;
      log(`${options.nodes} nodes: warm-up (the script, not counted) done after ${run.warmupMs} ms`);
    }
    for (let i = 0; i < pairs; i++) {
      // Alternate which goes first (the first runs on a cluster whose nodes have just become Ready);
      // --scripted-first starts with the script.
      const scriptedFirst = (i % 2 === 1) !== (options.scriptedFirst ?? false);
      const prepullStep = async (): Promise<PrepullRun | undefined> => (options.prepull ? measurePrepull(i) : undefined);
      const scriptedStep = async (): Promise<ScriptedRun | undefined> => (options.scripted ? measureScriptedWay(i) : undefined);
      let prepull: PrepullRun | undefined;
      let scripted: ScriptedRun | undefined;
      if (scriptedFirst) {
        scripted = await scriptedStep();
        prepull = await prepullStep();
      } else {
        prepull = await prepullStep();
        scripted = await scriptedStep();
      }
      run.prepull ??= prepull;
      run.scripted ??= scripted;
      if (prepull && scripted) run.pairs.push({ prepull, scripted, scriptedFirst });
    }
    if (options.burstDeployments > 0) {
      run.burst = await measureBurst({
        kc, kubectl, adminKubeconfig: cluster.state.kubeconfig, auditLog, namespace: "burst",
        servePid: pid, opsPort: started.opsPort, deployments: options.burstDeployments,
      });
    }
    const captured = run.prepull?.daemonSet;
    if (options.bare && captured) {
      await stopServeProcess(serve);
      releaseServe();
      serve = undefined;
      run.bare = await measureBareDaemonSet(kc, captured, options.nodes, "scripted");
    }
    return run;
  } finally {
    if (serve) await stopServeProcess(serve);
    releaseServe();
    await counter?.stop();
    await cluster.stop();
  }
}
