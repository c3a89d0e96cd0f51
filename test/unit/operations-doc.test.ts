// docs/operations.md's metrics table names the metrics createMetrics() registers, no more and no
// fewer.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { createMetrics } from "../../src/observability/metrics.js";

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
});
