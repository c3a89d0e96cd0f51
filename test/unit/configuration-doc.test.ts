// docs/configuration.md names every flag of every command and every annotation and label.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import type { Command } from "commander";
import { testProgram } from "../support/cli.js";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { LABELS, SYSTEM_ANNOTATIONS, USER_ANNOTATIONS } from "../../src/prepull/annotations.js";

const doc = readFileSync(path.join(packageRoot(), "docs", "configuration.md"), "utf8");

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
  it("documents every annotation and label", () => {
    for (const key of [...Object.values(USER_ANNOTATIONS), ...Object.values(SYSTEM_ANNOTATIONS), ...Object.values(LABELS)]) {
      assert.ok(doc.includes(`\`${key}`), `${key} is missing`);
    }
  });
});
