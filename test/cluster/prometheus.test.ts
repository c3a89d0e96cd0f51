// A real Prometheus (Debian's package, 127.0.0.1 only, storage in a temporary directory) with the
// PrometheusRule's rules loaded, scraping a `serve` started here every second and the local
// apiserver's admission webhook metrics: a real prepull is read back through its HTTP API, every
// dashboard query runs on it, and a webhook the apiserver skips (fail open) fires
// KubePrepullWebhookFailOpen (issue 13, monitoring).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import type { RunningServe } from "../../src/serve.js";
import { decodeStatus } from "../../src/prepull/progress.js";
import { createNamespace, kubectl, startTestServe, testKubeConfig, waitForPrepullWebhook, waitUntil } from "../support/cluster.js";
import { APISERVER_METRICS, dashboardQueries, metricNamesIn, readDashboard, readPrometheusRule, rulesFileOf, withGrafanaVariables } from "../support/monitoring.js";
import { freePort, startPrometheus, type RunningPrometheus, type ScrapeJob } from "../support/prometheus.js";

const kc = testKubeConfig();
const apps = kc.makeApiClient(k8s.AppsV1Api);
const core = kc.makeApiClient(k8s.CoreV1Api);
const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);

/** The local apiserver as a scrape target, authenticated with the test kubeconfig's client certificate; only its admission webhook metrics are kept. */
function apiserverJob(): { job: ScrapeJob; files: Record<string, string> } {
  const cluster = kc.getCurrentCluster()!;
  const user = kc.getCurrentUser()!;
  const pem = (data: string | undefined, file: string | undefined): string => (data ? Buffer.from(data, "base64").toString("utf8") : readFileSync(file!, "utf8"));
  return {
    files: {
      "apiserver-ca.crt": pem(cluster.caData, cluster.caFile),
      "apiserver-client.crt": pem(user.certData, user.certFile),
      "apiserver-client.key": pem(user.keyData, user.keyFile),
    },
    job: {
      job: "apiserver",
      targets: [new URL(cluster.server).host],
      config: {
        scheme: "https",
        scrape_interval: "3s",
        scrape_timeout: "3s",
        tls_config: { ca_file: "apiserver-ca.crt", cert_file: "apiserver-client.crt", key_file: "apiserver-client.key" },
        metric_relabel_configs: [{ source_labels: ["__name__"], regex: "apiserver_admission_webhook_.*", action: "keep" }],
      },
    },
  };
}

describe("a real Prometheus scraping serve", () => {
  const alerts = readPrometheusRule().spec.groups.flatMap((g) => g.rules);
  const failOpenConfig = `kube-prepull-fail-open-test-${process.pid}`;
  const failOpenWebhook = `fail-open-${process.pid}.test.kube-prepull.io`;
  let ns: { name: string; remove: () => Promise<void> } | undefined;
  let serve: RunningServe | undefined;
  let prometheus: RunningPrometheus;
  /** One instant query's single value (NaN when the result is empty). */
  const value = async (expr: string): Promise<number> => Number((await prometheus.query(expr))[0]?.value[1] ?? NaN);

  before(async () => {
    ns = await createNamespace(kc, "prometheus", { "kube-prepull.io/enabled": "true" });
    // Holds last a pull of 10 s: the controller's gauges (every 5 s) and the 1 s scrapes see them.
    serve = await startTestServe({ name: `kube-prepull-prometheus-${process.pid}`, pullDelay: "10s" });
    await waitForPrepullWebhook(apps, ns.name);
    const apiserver = apiserverJob();
    prometheus = await startPrometheus({
      jobs: [{ job: "kube-prepull", targets: [`127.0.0.1:${serve.opsPort}`] }, apiserver.job],
      files: apiserver.files,
      rules: rulesFileOf(readPrometheusRule()),
      interval: "1s",
    });
  });

  after(async () => {
    await prometheus?.stop();
    await serve?.stop();
    await admission.deleteValidatingWebhookConfiguration({ name: failOpenConfig }).catch(() => undefined);
    await ns?.remove();
  });

  it("loads the PrometheusRule's alerts, every one evaluated without error", async () => {
    type Rule = { name: string; query: string; health: string; labels: Record<string, string>; lastError?: string };
    const group = await waitUntil(async () => {
      const data = await prometheus.api<{ groups: Array<{ name: string; rules: Rule[] }> }>("/api/v1/rules?type=alert");
      const found = data.groups.find((g) => g.name === "kube-prepull");
      return found?.rules.every((r) => r.health === "ok") ? found : undefined;
    }, { what: "the kube-prepull rule group to be evaluated", timeoutMs: 30_000 });
    assert.deepEqual(group.rules.map((r) => [r.name, r.labels.reason]), alerts.map((a) => [a.alert, a.labels?.reason]));
    for (const [i, r] of group.rules.entries()) assert.equal(r.query, alerts[i]!.expr);
  });

  it("scrapes serve: one leader, every prepull result exported from 0, no KubePrepullNoLeader", async () => {
    await waitUntil(async () => (await value('up{job="kube-prepull"}')) === 1, { what: "serve to be scraped", timeoutMs: 30_000 });
    assert.equal(await value("kube_prepull_leader"), 1);
    const results = await prometheus.query("kube_prepull_prepulls_total");
    assert.deepEqual(results.map((r) => r.metric.result).sort(), ["Failed", "Succeeded", "Superseded", "TimedOut"]);
    // Before the first scrape absent() was pending; with the leader scraped, nothing is.
    await waitUntil(async () => {
      const data = await prometheus.api<{ alerts: Array<{ labels: Record<string, string> }> }>("/api/v1/alerts");
      return !data.alerts.some((a) => a.labels.alertname === "KubePrepullNoLeader");
    }, { what: "no KubePrepullNoLeader alert", timeoutMs: 15_000 });
  });

  it("reads a held prepull back through the HTTP API: counters, durations, gauges, admissions", async () => {
    const succeededBefore = await value('kube_prepull_prepulls_total{result="Succeeded"}');
    const nodes = (await core.listNode({ labelSelector: "type=kwok" })).items.length;
    await apps.createNamespacedDeployment({
      namespace: ns!.name,
      body: {
        metadata: { name: "web", annotations: { "kube-prepull.io/hold": "true" } },
        spec: { replicas: 1, selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web", image: "example.com/monitoring/web:1" }] } } },
      },
    });
    const released = await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "web", namespace: ns!.name });
      return d.spec?.paused !== true ? d : undefined;
    }, { what: "the hold to be released", timeoutMs: 90_000 });
    assert.equal(decodeStatus(released.metadata?.annotations?.["kube-prepull.io/status"])?.phase, "Succeeded");

    await waitUntil(async () => (await value('kube_prepull_prepulls_total{result="Succeeded"}')) >= succeededBefore + 1,
      { what: "Prometheus to see the prepull succeed", timeoutMs: 20_000 });
    // What the alerts and the dashboard compute: increase() sees the first increment (from 0).
    assert.ok(await value('increase(kube_prepull_prepulls_total{result="Succeeded"}[5m])') > 0);
    assert.ok(await value('kube_prepull_prepull_duration_seconds_count{result="Succeeded"}') >= 1);
    assert.ok(await value('kube_prepull_prepull_duration_seconds_sum{result="Succeeded"}') >= 10, "the 10 s pull");
    assert.ok(await value("kube_prepull_nodes_pulled_total") >= nodes, `${nodes} nodes pulled`);
    assert.ok(await value('max_over_time(kube_prepull_held_workloads{kind="Deployment"}[5m])') >= 1, "the Deployment was held");
    assert.ok(await value("max_over_time(kube_prepull_active_prepulls[5m])") >= 1, "a prepull was active");
    assert.ok(await value('sum(kube_prepull_admissions_total{webhook="mutate"})') >= 1, "admissions counted");
    assert.ok(await value("sum(kube_prepull_admission_duration_seconds_count)") >= 1);
  });

  it("the apiserver's fail-open count for a kube-prepull.io webhook fires KubePrepullWebhookFailOpen", async () => {
    // A webhook nothing listens for, covering ConfigMaps in this namespace only: the apiserver
    // fails to call it and, with failurePolicy Ignore, admits the write (fails open).
    await admission.createValidatingWebhookConfiguration({
      body: {
        metadata: { name: failOpenConfig },
        webhooks: [{
          name: failOpenWebhook,
          clientConfig: { url: `https://127.0.0.1:${await freePort()}/validate` },
          rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"], scope: "Namespaced" }],
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns!.name } },
          failurePolicy: "Ignore", sideEffects: "None", admissionReviewVersions: ["v1"], timeoutSeconds: 2,
        }],
      },
    });
    let n = 0;
    const createConfigMap = (): Promise<unknown> => core.createNamespacedConfigMap({ namespace: ns!.name, body: { metadata: { name: `fail-open-${++n}` } } });
    const raw = await waitUntil(async () => {
      await createConfigMap();
      const { stdout } = await kubectl(["get", "--raw", "/metrics"]);
      return stdout.includes(`apiserver_admission_webhook_fail_open_count{name="${failOpenWebhook}"`) ? stdout : undefined;
    }, { what: "the apiserver to count a fail-open", timeoutMs: 30_000, intervalMs: 1000 });
    // The apiserver metrics the alerts and the dashboard name exist, kube-prepull's webhooks measured.
    for (const name of APISERVER_METRICS) assert.match(raw, new RegExp(`^${name}\\{`, "m"), name);
    assert.match(raw, /^apiserver_admission_webhook_admission_duration_seconds_bucket\{[^}]*name="prepull\.deployments\.kube-prepull\.io"/m);

    // Once Prometheus has the series, one more fail-open is an increase, and the alert fires.
    const series = `apiserver_admission_webhook_fail_open_count{name="${failOpenWebhook}"}`;
    await waitUntil(async () => (await prometheus.query(series)).length > 0, { what: "Prometheus to scrape the fail-open count", timeoutMs: 30_000 });
    await createConfigMap();
    await waitUntil(async () => {
      const data = await prometheus.api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>("/api/v1/alerts");
      return data.alerts.some((a) => a.labels.alertname === "KubePrepullWebhookFailOpen" && a.labels.name === failOpenWebhook && a.state === "firing");
    }, { what: "KubePrepullWebhookFailOpen to fire", timeoutMs: 30_000 });
  });

  it("runs every dashboard query, and each shows data (keep-warm lists aside: none here)", async () => {
    const empty: string[] = [];
    for (const q of dashboardQueries(readDashboard())) {
      const result = await prometheus.query(withGrafanaVariables(q.expr, "1m"));
      if (result.length === 0 && !metricNamesIn(q.expr).includes("kube_prepull_keep_warm_nodes")) empty.push(`${q.panel}: ${q.expr}`);
    }
    assert.deepEqual(empty, []);
  });
});
