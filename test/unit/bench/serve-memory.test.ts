// What the scale benchmark says serve's memory peak is made of, read from serve's /metrics text.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMetrics } from "../../../src/observability/metrics.js";
import { describeSample, parseHeapMetrics } from "../../../bench/support/serve-memory.js";

describe("serve memory sample", () => {
  it("reads the heap spaces, heap used and external memory from serve's own metrics", async () => {
    const text = await createMetrics({ defaultMetrics: true }).registry.metrics();
    const sample = parseHeapMetrics(text, 300 * 2 ** 20);
    assert.ok(sample.heapSpaces.has("old") && sample.heapSpaces.has("new"), `spaces: ${[...sample.heapSpaces.keys()].join(", ")}`);
    assert.ok(sample.heapUsed > 0 && sample.external > 0);
    const committed = [...sample.heapSpaces.values()].reduce((a, b) => a + b, 0);
    assert.ok(sample.heapUsed <= committed, "used fits in what is committed");
  });

  it("describes the sample in MiB, largest space first, leaving out spaces under 1 MiB", () => {
    const MiB = 2 ** 20;
    const sample = { rss: 240 * MiB, heapSpaces: new Map([["new", 32 * MiB], ["old", 130 * MiB], ["read_only", 0.1 * MiB]]), heapUsed: 150 * MiB, external: 5 * MiB };
    assert.equal(describeSample(sample), "RSS 240 MiB: V8 heap 162 MiB committed (old 130, new 32), 150 MiB of it in use; external 5 MiB");
  });
});
