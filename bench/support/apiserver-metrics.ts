// The apiserver's own Prometheus metrics (kubectl get --raw /metrics, as an admin): what the cluster
// saw, independent of what kube-prepull reports about itself.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { sumBy, sumOf } from "./prometheus-text.js";

/** The apiserver's /metrics text, read as an admin. */
export async function apiserverMetrics(kubectl: string, kubeconfig: string): Promise<string> {
  const { stdout } = await promisify(execFile)(kubectl, ["--kubeconfig", kubeconfig, "get", "--raw", "/metrics"], { maxBuffer: 256 * 2 ** 20 });
  return stdout;
}

/** The sum of a counter's samples whose labels contain every `labels` pair (e.g. code="429"). */
export async function apiserverCounter(kubectl: string, kubeconfig: string, name: string, labels: Record<string, string> = {}, contains = ""): Promise<number> {
  return sumOf(await apiserverMetrics(kubectl, kubeconfig), name, labels, contains);
}

/** Bytes of watch events the apiserver has sent so far, to every watcher, by resource (from its /metrics text). */
export const watchEventBytes = (metrics: string): Map<string, number> => sumBy(metrics, "apiserver_watch_events_sizes_sum", "resource");

/** Cluster-wide watches open, by resource (a kubelet's watch of its own Node is scope "resource"). */
export const openWatches = (metrics: string): Map<string, number> =>
  sumBy(metrics, "apiserver_longrunning_requests", "resource", { verb: "WATCH", scope: "cluster" });

export interface WatchEventShare {
  resource: string;
  bytes: number;
  watchers: number;
}

/** The resources whose watch events grew the most between two readings, with their open watches. */
export function largestWatchEvents(before: Map<string, number>, after: Map<string, number>, watchers: Map<string, number>, count = 3): WatchEventShare[] {
  return [...after]
    .map(([resource, bytes]) => ({ resource, bytes: bytes - (before.get(resource) ?? 0), watchers: watchers.get(resource) ?? 0 }))
    .filter((share) => share.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, count);
}

/** Webhook calls the apiserver made to webhooks whose name contains `webhooks` (its own histogram). */
export async function webhookCalls(kubectl: string, kubeconfig: string, webhooks: string): Promise<{ calls: number; within25ms: number }> {
  const metric = "apiserver_admission_webhook_admission_duration_seconds";
  const [calls, within25ms] = await Promise.all([
    apiserverCounter(kubectl, kubeconfig, `${metric}_count`, {}, webhooks),
    apiserverCounter(kubectl, kubeconfig, `${metric}_bucket`, { le: "0.025" }, webhooks),
  ]);
  return { calls, within25ms };
}
