// docs/operations.md's tables name what exists, no more and no fewer: the metrics table the metrics
// createMetrics() registers, the alerts table the PrometheusRule's alerts.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { createMetrics } from "../../src/observability/metrics.js";
import { readPrometheusRule } from "../support/monitoring.js";

const doc = readFileSync(path.join(packageRoot(), "docs", "operations.md"), "utf8");

/** The cells of each body row of the table whose header row is `header` (`\|` inside a cell is no separator). */
function tableRows(header: string): string[][] {
  const lines = doc.split("\n");
  const start = lines.indexOf(header);
  assert.ok(start >= 0, `no table with header ${header}`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.slice(1, -1).split(/(?<!\\)\|/).map((cell) => cell.trim()));
  }
  return rows;
}

describe("docs/operations.md", () => {
  it("names in its metrics table every metric kube-prepull registers, with its type, and no other", () => {
    const registered = new Map(createMetrics({ defaultMetrics: false }).registry.getMetricsAsArray().map((m) => [m.name, String(m.type)]));
    const documented = new Map<string, string>();
    for (const [names = "", type = ""] of tableRows("| metric | type | labels | meaning |")) {
      for (const m of names.matchAll(/`(kube_prepull_\w+)`/g)) documented.set(m[1]!, type);
    }
    assert.ok(registered.size > 10, `only ${registered.size} metrics registered`);
    for (const [name, type] of registered) assert.equal(documented.get(name), type, `${name} (${type}) in the metrics table`);
    for (const name of documented.keys()) assert.ok(registered.has(name), `the metrics table names ${name}, which is not registered`);
  });

  it("names in its alerts table every alert of the PrometheusRule, with its severity, and no other", () => {
    // An alert as the table's first column names it: `Name`, and its labels other than severity, e.g. (`reason: none-leading`).
    const inRule = readPrometheusRule().spec.groups.flatMap((g) => g.rules).map(({ alert, labels = {} }) => {
      const { severity = "", ...others } = labels;
      const extra = Object.entries(others).map(([k, v]) => ` (\`${k}: ${v}\`)`).join("");
      return `\`${alert}\`${extra} | ${severity}`;
    });
    const inTable = tableRows("| alert | severity | fires when | look at |").map(([alert = "", severity = ""]) => `${alert} | ${severity}`);
    assert.ok(inRule.length >= 6, `only ${inRule.length} alerts in the rule`);
    for (const alert of inRule) assert.ok(inTable.includes(alert), `${alert} in the alerts table`);
    for (const alert of inTable) assert.ok(inRule.includes(alert), `the alerts table names ${alert}, which the PrometheusRule has not`);
    assert.equal(inTable.length, inRule.length, "one row per alert");
  });
});
