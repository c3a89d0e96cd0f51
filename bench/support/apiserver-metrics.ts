// The apiserver's own Prometheus metrics (kubectl get --raw /metrics, as an admin): what the cluster
// saw, independent of what kube-prepull reports about itself.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

/** The sum of a counter's samples whose labels contain every `labels` pair (e.g. code="429"). */
export async function apiserverCounter(kubectl: string, kubeconfig: string, name: string, labels: Record<string, string> = {}, contains = ""): Promise<number> {
  const { stdout } = await promisify(execFile)(kubectl, ["--kubeconfig", kubeconfig, "get", "--raw", "/metrics"], { maxBuffer: 256 * 2 ** 20 });
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  return stdout.split("\n")
    .filter((line) => (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && wanted.every((pair) => line.includes(pair)) && line.includes(contains))
    .reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
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
