// The Grafana dashboard manifests/monitoring/grafana-dashboard.json: every query parses (the real
// promtool) and names only metrics that exist (kube-prepull's registry, the apiserver's), and
// every kube-prepull metric has a panel.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { stringify } from "yaml";
import { createMetrics } from "../../../src/observability/metrics.js";
import { APISERVER_METRICS, dashboardQueries, exportedMetricNames, metricNamesIn, readDashboard, withGrafanaVariables } from "../../support/monitoring.js";
import { promtool } from "../../support/prometheus.js";

describe("metricNamesIn", () => {
  it("finds the metric names and nothing else", () => {
    assert.deepEqual(metricNamesIn('histogram_quantile(0.99, sum by (le, name) (rate(a_bucket{name=~".+\\\\.x\\\\.io", le!="1"}[$__rate_interval])))'), ["a_bucket"]);
    assert.deepEqual(metricNamesIn("sum(increase(a_sum[30m])) / sum(increase(a_count[30m] offset 5m)) > bool 1e3"), ["a_sum", "a_count"]);
    assert.deepEqual(metricNamesIn("max(up) < 1 or absent(leader) unless on (instance) group_left (pod) info"), ["up", "leader", "info"]);
    assert.deepEqual(metricNamesIn('label_replace(x, "dst", "$1", "src", "(.*)")'), ["x"]);
  });
});

describe("Grafana dashboard", () => {
  const dashboard = readDashboard();
  const queries = dashboardQueries(dashboard);
  const dir = mkdtempSync(path.join(os.tmpdir(), "kube-prepull-dashboard-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("has queries, each naming at least one metric", () => {
    assert.ok(queries.length >= 15, `${queries.length} queries`);
    for (const q of queries) assert.ok(metricNamesIn(q.expr).length > 0, `${q.panel}: ${q.expr}`);
  });

  it("names only metrics that exist: kube-prepull's registry (histograms as _bucket/_sum/_count) and the apiserver's", async () => {
    const { names } = await exportedMetricNames();
    const unknown = queries.flatMap((q) => metricNamesIn(q.expr).filter((n) => !names.has(n) && !APISERVER_METRICS.includes(n)).map((n) => `${q.panel}: ${n}`));
    assert.deepEqual(unknown, []);
  });

  it("charts every kube-prepull metric (info metrics, joined rather than charted, aside)", async () => {
    const own = (await createMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !n.endsWith("_info"));
    const used = new Set(queries.flatMap((q) => metricNamesIn(q.expr)).map((n) => n.replace(/_(bucket|sum|count)$/, "")));
    assert.deepEqual(own.filter((n) => !used.has(n)), []);
  });

  it("every query parses (promtool check rules, each as a recording rule)", async () => {
    const rules = { groups: [{ name: "dashboard", rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: withGrafanaVariables(q.expr) })) }] };
    writeFileSync(path.join(dir, "dashboard-rules.yaml"), stringify(rules));
    const { code, output } = await promtool(["check", "rules", "--lint=none", "dashboard-rules.yaml"], dir);
    assert.equal(code, 0, output);
  });

  it("asks for its Prometheus data source on import", () => {
    const panels = dashboard.panels as Array<{ type: string; datasource?: { uid: string } }>;
    for (const p of panels.filter((p) => p.type !== "row")) assert.equal(p.datasource?.uid, "${datasource}");
  });
});
