// docs/configuration.md names every flag of every command and every annotation and label.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import type { Command } from "commander";
import { testProgram } from "../support/cli.js";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { LABELS, SYSTEM_ANNOTATIONS, USER_ANNOTATIONS } from "../../src/prepull/annotations.js";

const doc = readFileSync(path.join(packageRoot(), "docs", "configuration.md"), "utf8");

/**
 * Every kube-prepull.io/ key the code names, as a literal or as `${PREFIX}name`, wherever it is
 * defined (not only in annotations.ts: every-target lives in targets.ts). The embedded local
 * cluster's own keys (src/local-cluster/) belong to docs/local-cluster.md.
 */
function keysInSource(dir = path.join(packageRoot(), "src")): string[] {
  const keys: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "local-cluster") keys.push(...keysInSource(file));
      continue;
    }
    if (!entry.name.endsWith(".ts")) continue;
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/["'`]kube-prepull\.io\/([a-z0-9-]+)["'`]|`\$\{PREFIX\}([a-z0-9-]+)`/g)) keys.push(`kube-prepull.io/${m[1] ?? m[2]}`);
  }
  return [...new Set(keys)].sort();
}

function flags(command: Command): string[] {
  return [
    ...command.options.map((o) => o.long).filter((f): f is string => f !== undefined && f !== "--help"),
    ...command.commands.flatMap(flags),
  ];
}

describe("docs/configuration.md", () => {
  it("documents every command-line flag", () => {
    const all = flags(testProgram());
    assert.ok(all.length > 25, `found ${all.length} flags`);
    for (const flag of all) assert.ok(doc.includes(`\`${flag}\``), `${flag} is missing`);
  });
  it("documents every kube-prepull.io/ key named anywhere in src/", () => {
    const keys = keysInSource();
    for (const key of ["kube-prepull.io/every-target", "kube-prepull.io/expires-at", "kube-prepull.io/keep-warm-spec", "kube-prepull.io/hold"]) {
      assert.ok(keys.includes(key), `the scan finds ${key} (found: ${keys.join(", ")})`);
    }
    for (const key of keys) assert.ok(doc.includes(`\`${key}`), `${key} is missing`);
  });
  it("documents every annotation and label", () => {
    for (const key of [...Object.values(USER_ANNOTATIONS), ...Object.values(SYSTEM_ANNOTATIONS), ...Object.values(LABELS)]) {
      assert.ok(doc.includes(`\`${key}`), `${key} is missing`);
    }
  });
});
