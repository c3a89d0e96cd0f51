// Burst: many Deployments change images at the same moment while serve runs with its default cap on
// concurrent prepulls (20), so the queue fills and drains. Each Deployment's pods may run on its own
// group of nodes (required node affinity on kubernetes.io/hostname, which the prepull copies), so
// 100 Deployments on 1000 nodes mean 1000 prepull pods rather than 100 000.
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { SYSTEM_ANNOTATIONS, USER_ANNOTATIONS } from "../src/prepull/annotations.js";
import { decodeStatus } from "../src/prepull/progress.js";
import { pollUntil } from "../src/local-cluster/wait.js";
import { apiserverCounter, webhookCalls } from "./support/apiserver-metrics.js";
import { auditedRequests, countBetween, SERVE_ACCOUNT, total } from "./support/audit.js";
import { cpuSeconds, log, peakMemoryBytes } from "./support/machine.js";

export interface BurstRun {
  deployments: number;
  nodesPerDeployment: number;
  /** False when the wait for every prepull to finish timed out (10 min). */
  finished: boolean;
  /** Milliseconds from the burst until every Deployment's status was Succeeded and its hold released. */
  allSucceededMs: number;
  /** ... until the last prepull DaemonSet was deleted. */
  allCleanedUpMs: number;
  phases: Map<string, number>;
  stillHeld: number;
  peakQueueDepth: number;
  peakActivePrepulls: number;
  /** [seconds since the burst, queue depth, active prepulls], one per metrics scrape (every second). */
  samples: Array<[number, number, number]>;
  serveRequests: number;
  /** Requests of serve's user answered 429, from the audit log. */
  audit429: number;
  /** Increase of apiserver_request_total{code="429"} (all users) over the burst. */
  apiserver429: number;
  servePeakRss: number;
  serveCpuSeconds: number;
  /** kube-prepull's webhooks as the apiserver timed them over the burst (its histogram's increase). */
  webhookCalls: number;
  webhookCallsWithin25ms: number;
}

const metric = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);

const apiserver429 = (kubectl: string, kubeconfig: string): Promise<number> =>
  apiserverCounter(kubectl, kubeconfig, "apiserver_request_total", { code: "429" });

function burstDeployment(i: number, nodeNames: string[]): k8s.V1Deployment {
  const name = `burst-${i}`;
  return {
    metadata: { name, annotations: { [USER_ANNOTATIONS.prepull]: "false" } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [
            { matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: nodeNames }] }] } } },
          containers: [{ name: "app", image: `registry.example.com/burst/app-${i}:v1` }],
        },
      },
    },
  };
}

export async function measureBurst(options: {
  kc: k8s.KubeConfig; kubectl: string; adminKubeconfig: string; auditLog: string; namespace: string;
  servePid: number; opsPort: number; deployments: number;
}): Promise<BurstRun> {
  const { kc, namespace, deployments } = options;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const nodeNames = (await core.listNode()).items.map((n) => n.metadata!.name!).sort();
  const perDeployment = Math.floor(nodeNames.length / deployments);
  const groups = Array.from({ length: deployments }, (_, i) => nodeNames.slice(i * perDeployment, (i + 1) * perDeployment));
  // At v1 without a prepull (prepull: "false"), then the burst: v2, prepull on, held.
  await Promise.all(groups.map((group, i) => apps.createNamespacedDeployment({ namespace, body: burstDeployment(i, group) })));
  await sleep(3000);

  const before = auditedRequests(options.auditLog, SERVE_ACCOUNT);
  const cpuBefore = cpuSeconds(options.servePid);
  const errorsBefore = await apiserver429(options.kubectl, options.adminKubeconfig);
  const webhooksBefore = await webhookCalls(options.kubectl, options.adminKubeconfig, "kube-prepull.io");
  const samples: BurstRun["samples"] = [];
  let scraping = true;
  const t0 = Date.now();
  const scraper = (async () => {
    while (scraping) {
      const text = await fetch(`http://127.0.0.1:${options.opsPort}/metrics`).then((r) => r.text()).catch(() => "");
      samples.push([(Date.now() - t0) / 1000, metric(text, "kube_prepull_queue_depth"), metric(text, "kube_prepull_active_prepulls")]);
      await sleep(1000);
    }
  })();
  log(`burst: ${deployments} Deployments change images at once (${perDeployment} nodes each)`);
  await Promise.all(groups.map(async (_, i) => {
    const name = `burst-${i}`;
    await pollUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name, namespace });
      d.metadata!.annotations = { ...d.metadata!.annotations, [USER_ANNOTATIONS.prepull]: "true", [USER_ANNOTATIONS.hold]: "true" };
      d.spec!.template.spec!.containers[0]!.image = `registry.example.com/burst/app-${i}:v2`;
      return await apps.replaceNamespacedDeployment({ name, namespace, body: d }); // retried on a 409
    }, { what: `${name} updated`, intervalMs: 100 });
  }));

  let allSucceededMs = 0;
  let finished = true;
  let last = { phases: new Map<string, number>(), stillHeld: 0 };
  await pollUntil(async () => {
    const [list, daemonSets] = await Promise.all([apps.listNamespacedDeployment({ namespace }), apps.listNamespacedDaemonSet({ namespace })]);
    const phases = new Map<string, number>();
    for (const d of list.items) {
      const phase = decodeStatus(d.metadata?.annotations?.[SYSTEM_ANNOTATIONS.status])?.phase ?? "none";
      phases.set(phase, (phases.get(phase) ?? 0) + 1);
    }
    last = { phases, stillHeld: list.items.filter((d) => d.spec?.paused === true).length };
    if (!allSucceededMs && phases.get("Succeeded") === deployments && last.stillHeld === 0) {
      allSucceededMs = Date.now() - t0;
      log(`burst: all ${deployments} Succeeded and released after ${allSucceededMs} ms`);
    }
    return allSucceededMs > 0 && daemonSets.items.length === 0;
  }, { what: `all ${deployments} burst prepulls to finish`, timeoutMs: 600_000, intervalMs: 1000 }).catch((error: Error) => {
    finished = false;
    log(`burst: ${error.message}; phases ${JSON.stringify([...last.phases])}`);
  });
  const allCleanedUpMs = Date.now() - t0;
  scraping = false;
  await scraper;
  await sleep(1000);
  const after = auditedRequests(options.auditLog, SERVE_ACCOUNT);
  const peak = (column: 1 | 2): number => Math.max(0, ...samples.map((s) => s[column]).filter(Number.isFinite));
  return {
    deployments, nodesPerDeployment: perDeployment, finished, allSucceededMs, allCleanedUpMs,
    phases: last.phases, stillHeld: last.stillHeld,
    peakQueueDepth: peak(1), peakActivePrepulls: peak(2), samples,
    serveRequests: total(countBetween(before, after)),
    audit429: countBetween(before, after, "code").get("429") ?? 0,
    apiserver429: (await apiserver429(options.kubectl, options.adminKubeconfig)) - errorsBefore,
    servePeakRss: peakMemoryBytes(options.servePid) ?? 0,
    serveCpuSeconds: cpuSeconds(options.servePid) - cpuBefore,
    ...(await webhookCalls(options.kubectl, options.adminKubeconfig, "kube-prepull.io").then((after) => ({
      webhookCalls: after.calls - webhooksBefore.calls,
      webhookCallsWithin25ms: after.within25ms - webhooksBefore.within25ms,
    }))),
  };
}
