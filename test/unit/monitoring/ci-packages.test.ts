// CI installs the monitoring tests' tools: promtool and Prometheus come from Debian's prometheus
// package, listed apart from the real node's packages in .ci/run.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../../src/local-cluster/binaries.js";

describe("the monitoring tests' Debian packages", () => {
  it("are the ones .ci/run installs", () => {
    const ci = readFileSync(path.join(packageRoot(), ".ci", "run"), "utf8");
    const listed = /monitoring_packages=\(([^)]*)\)/.exec(ci)?.[1]?.split(/\s+/).filter(Boolean);
    assert.deepEqual(listed, ["prometheus"]);
  });
});
