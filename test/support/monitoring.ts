// The monitoring objects in manifests/monitoring as the tests read them: the PrometheusRule, the
// rules file Prometheus and promtool load (its `spec`), the Grafana dashboard's queries, the
// metric names those queries name, and the metric names that exist.
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse, stringify } from "yaml";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { createMetrics } from "../../src/observability/metrics.js";

export const MONITORING_DIR = path.join(packageRoot(), "manifests", "monitoring");

export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface PrometheusRule {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  spec: { groups: Array<{ name: string; rules: AlertingRule[] }> };
}

export function readPrometheusRule(): PrometheusRule {
  return parse(readFileSync(path.join(MONITORING_DIR, "alerts", "prometheus-rule.yaml"), "utf8")) as PrometheusRule;
}

/** A Prometheus rules file (https://prometheus.io/docs/prometheus/latest/configuration/recording_rules/): the PrometheusRule's spec. */
export function rulesFileOf(rule: PrometheusRule): string {
  return stringify(rule.spec);
}

export interface DashboardQuery {
  panel: string;
  expr: string;
}

interface DashboardPanel {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: DashboardPanel[];
}

export function readDashboard(): { panels: DashboardPanel[] } {
  return JSON.parse(readFileSync(path.join(MONITORING_DIR, "grafana-dashboard.json"), "utf8")) as { panels: DashboardPanel[] };
}

/** Every query of every panel, rows' nested panels included. */
export function dashboardQueries(dashboard: { panels: DashboardPanel[] }): DashboardQuery[] {
  return dashboard.panels.flatMap((panel): DashboardQuery[] => [
    ...(panel.targets ?? []).map((target) => ({ panel: panel.title ?? "(untitled)", expr: target.expr ?? "" })),
    ...dashboardQueries({ panels: panel.panels ?? [] }),
  ]);
}

/** Grafana's interval variables, as a Prometheus without Grafana needs them. */
export function withGrafanaVariables(expr: string, interval = "1m"): string {
  return expr.replaceAll("$__rate_interval", interval).replaceAll("$__interval", interval).replaceAll("$__range", interval);
}

const PROMQL_KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "atan2"]);

/**
 * The metric names a PromQL expression selects. Not a parser: strings, label matchers, ranges and
 * grouping label lists are removed first; what is left that is no function call, keyword or number
 * is a metric name. `{__name__=…}` selectors are not supported (none are used).
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w.$])[a-zA-Z_:][\w:]*(?![\w:]*\s*\()/g)) {
    if (!PROMQL_KEYWORDS.has(match[0].toLowerCase())) names.add(match[0]);
  }
  return [...names];
}

/**
 * The series names kube-prepull exports, from the real registry (default process metrics
 * included): a histogram as its _bucket, _sum and _count series, a summary as itself, _sum, _count.
 */
export async function exportedMetricNames(): Promise<{ names: Set<string>; families: Array<{ name: string; type: string }> }> {
  const families = (await createMetrics({ defaultMetrics: true }).registry.getMetricsAsJSON()).map((m) => ({ name: m.name, type: String(m.type) }));
  const names = new Set<string>();
  for (const { name, type } of families) {
    if (type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(name + suffix);
    else if (type === "summary") for (const suffix of ["", "_sum", "_count"]) names.add(name + suffix);
    else names.add(name);
  }
  return { names, families };
}

/**
 * The API server's metrics the alerts and the dashboard use (Kubernetes' admission webhook
 * metrics, https://kubernetes.io/docs/reference/instrumentation/metrics/); the Prometheus cluster
 * test reads each from the local apiserver's /metrics.
 */
export const APISERVER_METRICS = ["apiserver_admission_webhook_fail_open_count", "apiserver_admission_webhook_admission_duration_seconds_bucket"];
