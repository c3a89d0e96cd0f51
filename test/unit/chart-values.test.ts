// The chart's values.yaml, values.schema.json and docs/install.md name the same values: every value
// has a default and a schema, and the docs' values table names it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { packageRoot } from "../../src/local-cluster/binaries.js";

interface Schema {
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
}

const chart = path.join(packageRoot(), "charts", "kube-prepull");
const values = parse(readFileSync(path.join(chart, "values.yaml"), "utf8")) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(path.join(chart, "values.schema.json"), "utf8")) as Schema;
const doc = readFileSync(path.join(packageRoot(), "docs", "install.md"), "utf8");

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Dotted paths of the values the schema spells out key by key; a free-form map, and an object
 * whose default is empty (certificates.certManager.issuerRef), is one value.
 */
function schemaPaths(s: Schema, at: unknown, prefix = ""): string[] {
  if (!s.properties || s.additionalProperties !== false || (prefix && isMap(at) && Object.keys(at).length === 0)) return [prefix];
  return Object.entries(s.properties).flatMap(([key, child]) =>
    schemaPaths(child, isMap(at) ? at[key] : undefined, prefix ? `${prefix}.${key}` : key));
}

function valueAt(dotted: string): unknown {
  let at: unknown = values;
  for (const key of dotted.split(".")) {
    assert.ok(at !== null && typeof at === "object" && key in at, `values.yaml has no ${dotted}`);
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

describe("the chart's values", () => {
  const paths = schemaPaths(schema, values).filter((p) => p !== "global"); // Helm's, shared with a parent chart

  it("each has a default in values.yaml, and values.yaml has nothing the schema lacks", () => {
    assert.ok(paths.length > 40, `only ${paths.length} values`);
    for (const p of paths) valueAt(p);
    const leaves = (v: unknown, prefix: string, s: Schema | undefined): string[] =>
      s?.properties && s.additionalProperties === false && isMap(v) && Object.keys(v).length > 0
        ? Object.entries(v).flatMap(([k, child]) => {
          assert.ok(s.properties![k], `values.yaml has ${prefix}${k}, the schema does not`);
          return leaves(child, `${prefix}${k}.`, s.properties![k]);
        })
        : [prefix.slice(0, -1)];
    assert.deepEqual(leaves(values, "", schema).sort(), paths.sort());
  });

  it("each is named in docs/install.md's values table", () => {
    const table = doc.slice(doc.indexOf("### Values"), doc.indexOf("### Upgrade with Helm"));
    for (const p of paths) {
      const last = p.split(".").pop()!;
      // Written out (`serve.cleanupTTL`) or continuing the cell's first path (`.cleanupTTL`).
      assert.ok(table.includes(`\`${p}\``) || table.includes(`\`.${last}\``), `${p} is missing`);
    }
  });
});
