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
import { apiserverCounter } from "./support/apiserver-metrics.js";
import { cpuSeconds, log, peakMemoryBytes } from "./support/machine.js";

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
  serveCpuSeconds: number;
  /** Increase of apiserver_terminated_watchers_total{resource="pods"} (all clients) over the prepull. */
  podWatchersTerminated: number;
}

/** What one cluster measured: kube-prepull's single prepull, then the scripted way, then the burst (each if asked for). */
export interface ClusterRun {
  nodes: number;
  prepull?: PrepullRun;
  scripted?: ScriptedRun;
  burst?: BurstRun;
}

async function startServeProcess(kubeconfig: string, pullDelay: string): Promise<{ child: ChildProcess; opsPort: number }> {
  const main = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
  const child = spawn(process.execPath, [main, "serve", "--kubeconfig", kubeconfig, "--port", "0", "--ops-port", "0",
    "--register", "--webhook-name", "kube-prepull-bench", "--namespace", OWN_NAMESPACE, "--no-leader-elect",
    "--prepull-pod-annotation", `sim.kube-prepull.io/pull-delay=${pullDelay}`, "--log-level", "info"],
  { stdio: ["ignore", "pipe", "inherit"] });
  for await (const line of createInterface({ input: child.stdout })) {
    const entry = JSON.parse(line) as { msg?: string; ops?: string };
    if (entry.msg === "serving" && entry.ops) {
      child.stdout.resume(); // keep draining the logs
      return { child, opsPort: Number(new URL(entry.ops).port) };
    }
  }
  throw new Error("kube-prepull serve exited before serving");
}

function heldDeployment(nodes: number): k8s.V1Deployment {
  return {
    metadata: { name: "shop", annotations: { "kube-prepull.io/hold": "true" } },
    spec: {
      replicas: Math.min(10, nodes),
      selector: { matchLabels: { app: "shop" } },
      template: {
        metadata: { labels: { app: "shop" } },
        spec: { containers: [{ name: "app", image: "registry.example.com/shop/app:v1" }, { name: "sidecar", image: "registry.example.com/shop/sidecar:v1" }] },
      },
    },
  };
}

/** Follows the Deployment (as the admin, not audited) and returns when each milestone was first seen. */
async function followPrepull(kc: k8s.KubeConfig, nodes: number): Promise<Array<[string, number]>> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const seen = new Map<string, number>();
  const t0 = Date.now();
  await apps.createNamespacedDeployment({ namespace: NAMESPACE, body: heldDeployment(nodes) });
  const mark = (what: string, reached: boolean): void => {
    if (reached && !seen.has(what)) {
      seen.set(what, Date.now() - t0);
      log(`${nodes} nodes: ${what} after ${Date.now() - t0} ms`);
    }
  };
  await pollUntil(async () => {
    const [deployment, daemonSets] = await Promise.all([
      apps.readNamespacedDeployment({ name: "shop", namespace: NAMESPACE }),
      apps.listNamespacedDaemonSet({ namespace: NAMESPACE }),
    ]);
    const daemonSet = daemonSets.items[0];
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
    return seen.has("DaemonSet deleted");
  }, { what: "the prepull to finish and its DaemonSet to be deleted", timeoutMs: 600_000, intervalMs: 100 });
  return [...seen];
}

export async function measureOnCluster(options: {
  nodes: number; pullDelay: string; prepull: boolean; scripted: boolean; burstDeployments: number; scriptedFirst?: boolean;
}): Promise<ClusterRun> {
  // Beside the cluster's state directory, which startCluster empties first.
  const policy = path.join(STATE_ROOT, "bench-audit-policy.yaml");
  const auditLog = path.join(STATE_ROOT, "bench-audit.log");
  mkdirSync(STATE_ROOT, { recursive: true });
  writeFileSync(policy, AUDIT_POLICY);
  writeFileSync(auditLog, "");
  const { cluster } = await startBenchCluster({
    name: "bench-api", nodes: options.nodes,
    extraApiserverArgs: [`--audit-policy-file=${policy}`, `--audit-log-path=${auditLog}`, "--audit-log-format=json", "--audit-log-mode=blocking"],
  });
  let serve: ChildProcess | undefined;
  const run: ClusterRun = { nodes: options.nodes };
  try {
    const kc = cluster.kubeConfig;
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const stateDir = cluster.state.stateDir;
    const kubeconfig = path.join(stateDir, "kube-prepull.kubeconfig");
    const scriptKubeconfig = path.join(stateDir, "scripted-prepull.kubeconfig");
    await core.createNamespace({ body: { metadata: { name: OWN_NAMESPACE } } });
    await serviceAccountKubeconfig(kc, SERVE_ACCOUNT, kubeconfig);
    await serviceAccountKubeconfig(kc, SCRIPT_ACCOUNT, scriptKubeconfig);
    for (const [name, enabled] of [[NAMESPACE, true], ["scripted", false], ["burst", true]] as const) {
      await core.createNamespace({ body: { metadata: { name, labels: enabled ? { "kube-prepull.io/enabled": "true" } : {} } } });
      await waitForServiceAccount(core, name);
    }

    const started = await startServeProcess(kubeconfig, options.pullDelay);
    serve = started.child;
    const pid = serve.pid!;
    await pollUntil(async () => (await fetch(`http://127.0.0.1:${started.opsPort}/readyz`)).ok, { what: "serve /readyz", timeoutMs: 120_000 });
    await waitForPrepullWebhook(kc.makeApiClient(k8s.AppsV1Api), NAMESPACE);
    await sleep(2000); // let the initial lists and watches settle
    const ready = auditedRequests(auditLog, SERVE_ACCOUNT);
    const kubectl = path.join(cluster.state.binDir, "kubectl");
    const podWatchersTerminated = (): Promise<number> =>
      apiserverCounter(kubectl, cluster.state.kubeconfig, "apiserver_terminated_watchers_total", { resource: "pods" });

    const measurePrepull = async (): Promise<void> => {
      const before = auditedRequests(auditLog, SERVE_ACCOUNT);
      const terminatedBefore = await podWatchersTerminated();
      const milestones = await followPrepull(kc, options.nodes);
      await sleep(3000); // anything the controller still does after the delete
      run.prepull = {
        nodes: options.nodes, pullDelay: options.pullDelay,
        perPrepull: countBetween(before, auditedRequests(auditLog, SERVE_ACCOUNT)),
        startup: countBetween(new Map(), ready),
        milestones,
        servePeakRss: peakMemoryBytes(pid) ?? 0,
        serveCpuSeconds: cpuSeconds(pid),
        podWatchersTerminated: (await podWatchersTerminated()) - terminatedBefore,
      };
    };
    const measureScriptedWay = async (): Promise<void> => {
      log(`${options.nodes} nodes: the scripted way (bench/scripted-prepull.sh)`);
      run.scripted = await measureScripted({
        kc, kubectl, kubeconfig: scriptKubeconfig, auditLog, stateDir, namespace: "scripted", nodes: options.nodes, pullDelay: options.pullDelay,
      });
    };
    // kube-prepull first by default; --scripted-first swaps them (the first runs on a cluster whose
    // nodes have just become Ready).
    const order = options.scriptedFirst ? [options.scripted && measureScriptedWay, options.prepull && measurePrepull]
      : [options.prepull && measurePrepull, options.scripted && measureScriptedWay];
    for (const step of order) if (step) await step();
    if (options.burstDeployments > 0) {
      run.burst = await measureBurst({
        kc, kubectl, adminKubeconfig: cluster.state.kubeconfig, auditLog, namespace: "burst",
        servePid: pid, opsPort: started.opsPort, deployments: options.burstDeployments,
      });
    }
    return run;
  } finally {
    serve?.kill();
    await cluster.stop();
  }
}
