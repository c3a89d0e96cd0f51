// The PrometheusRule in manifests/monitoring/alerts checked by the real promtool (Debian's
// prometheus package): `promtool check rules` on its spec, and `promtool test rules` with
// alerts.promtool.yaml, series in and alerts out for every alert.
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "yaml";
import { packageRoot } from "../../../src/local-cluster/binaries.js";
import { APISERVER_METRICS, exportedMetricNames, metricNamesIn, readPrometheusRule, rulesFileOf, type PrometheusRule } from "../../support/monitoring.js";
import { promtool } from "../../support/prometheus.js";

const UNIT_TESTS = path.join(packageRoot(), "test", "unit", "monitoring", "alerts.promtool.yaml");

interface PromtoolTests {
  tests: Array<{ name: string; alert_rule_test?: Array<{ alertname: string; exp_alerts: Array<{ exp_labels?: Record<string, string> }> }> }>;
}

describe("PrometheusRule kube-prepull", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kube-prepull-promtool-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const rule = readPrometheusRule();
  const alerts = rule.spec.groups.flatMap((g) => g.rules);

  /** Writes `rule`'s spec where alerts.promtool.yaml expects it, and a copy of the unit tests beside it. */
  const prepare = (subdir: string, prometheusRule: PrometheusRule): string => {
    const cwd = mkdtempSync(path.join(dir, `${subdir}-`));
    writeFileSync(path.join(cwd, "prometheus-rules.yaml"), rulesFileOf(prometheusRule));
    copyFileSync(UNIT_TESTS, path.join(cwd, "alerts.promtool.yaml"));
    return cwd;
  };
  /** The rule with one alert's expression replaced. */
  const withExpr = (index: number, expr: string): PrometheusRule => {
    const copy = structuredClone(rule);
    copy.spec.groups[0]!.rules[index]!.expr = expr;
    return copy;
  };

  it("is a monitoring.coreos.com/v1 PrometheusRule named kube-prepull in kube-prepull's namespace", () => {
    assert.equal(rule.apiVersion, "monitoring.coreos.com/v1");
    assert.equal(rule.kind, "PrometheusRule");
    assert.deepEqual(rule.metadata, {
      name: "kube-prepull",
      namespace: "kube-prepull",
      labels: { "app.kubernetes.io/name": "kube-prepull", "app.kubernetes.io/managed-by": "kube-prepull" },
    });
  });

  it("passes `promtool check rules` (syntax, templates, lint)", async () => {
    const cwd = prepare("check", rule);
    const { code, output } = await promtool(["check", "rules", "prometheus-rules.yaml"], cwd);
    assert.equal(code, 0, output);
    assert.match(output, new RegExp(`SUCCESS: ${alerts.length} rules found`));
  });

  it("`promtool check rules` rejects a broken expression", async () => {
    const cwd = prepare("broken", withExpr(0, "max(kube_prepull_leader) <"));
    const { code, output } = await promtool(["check", "rules", "prometheus-rules.yaml"], cwd);
    assert.notEqual(code, 0, output);
    assert.match(output, /parse error/);
  });

  it("passes its `promtool test rules` unit tests", async () => {
    const cwd = prepare("test", rule);
    const { code, output } = await promtool(["test", "rules", "alerts.promtool.yaml"], cwd);
    assert.equal(code, 0, output);
    assert.match(output, /SUCCESS/);
  });

  it("the unit tests fail when an alert is wrong", async () => {
    const backlog = alerts.findIndex((a) => a.alert === "KubePrepullQueueBacklog");
    const cwd = prepare("wrong", withExpr(backlog, "max(kube_prepull_queue_depth) > 20"));
    const { code, output } = await promtool(["test", "rules", "alerts.promtool.yaml"], cwd);
    assert.notEqual(code, 0, output);
    assert.match(output, /name: queue backlog,\s+alertname: KubePrepullQueueBacklog/);
  });

  it("the unit tests see every alert fire and every alert stay silent", () => {
    const tests = (parse(readFileSync(UNIT_TESTS, "utf8")) as PromtoolTests).tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of alerts) {
      const firing = tests.some((t) => t.alertname === alert.alert && t.exp_alerts.some((e) =>
        Object.entries(alert.labels ?? {}).every(([k, v]) => e.exp_labels?.[k] === v)));
      assert.ok(firing, `no unit test where ${alert.alert} ${JSON.stringify(alert.labels)} fires`);
      assert.ok(tests.some((t) => t.alertname === alert.alert && t.exp_alerts.length === 0), `no unit test where ${alert.alert} stays silent`);
    }
  });

  it("names only metrics that exist: kube-prepull's and the apiserver's fail-open count", async () => {
    const { names } = await exportedMetricNames();
    for (const alert of alerts) {
      for (const name of metricNamesIn(alert.expr)) {
        assert.ok(names.has(name) || APISERVER_METRICS.includes(name), `${alert.alert}: no metric ${name}`);
      }
    }
    const failOpen = alerts.find((a) => a.alert === "KubePrepullWebhookFailOpen");
    assert.deepEqual(metricNamesIn(failOpen!.expr), ["apiserver_admission_webhook_fail_open_count"]);
  });

  it("has a no-leader alert for no replica leading and for no replica scraped", () => {
    const noLeader = alerts.filter((a) => a.alert === "KubePrepullNoLeader");
    assert.deepEqual(noLeader.map((a) => a.labels?.reason), ["none-leading", "none-scraped"]);
    assert.match(noLeader[1]!.expr, /^absent\(kube_prepull_leader\)$/);
  });
});
