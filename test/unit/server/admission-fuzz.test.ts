// The admission fuzzer, short: 5,000 generated AdmissionReviews over the real HTTPS edge (the full
// 100,000: `npm run fuzz`, figures in docs/reliability.md). A fixed seed, so a failure here replays
// with `npm run fuzz -- --seed 20261203 --case <index>`.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memoryGrowth, runFuzz } from "../../fuzz/admission-fuzz.js";

const SEED = 20261203;
const COUNT = 5000;

describe("admission fuzzing (short run)", () => {
  it(`answers ${COUNT} fuzzed reviews without a crash, a 5xx or a wrong answer, in bounded memory`, { timeout: 600_000 }, async () => {
    const report = await runFuzz({ seed: SEED, count: COUNT, concurrency: 4 });
    const growth = memoryGrowth(report);
    console.log(`seed ${SEED}: ${report.count} cases in ${report.seconds.toFixed(0)}s; answers ${JSON.stringify(report.statuses)}; ${growth.explanation}`);
    assert.equal(report.crashed, undefined);
    assert.deepEqual(report.failures, [], report.failures.map((f) => `${f.reason}\n  ${f.minimised}\n  ${f.replay}\n  ${f.body}`).join("\n"));
    assert.equal(report.count, COUNT);
    assert.equal(report.errorLogs, 0, "error-level log lines in the server");
    // Every kind and operation was sent, and most answers were AdmissionReviews.
    assert.equal(Object.keys(report.kinds).length, 20, Object.keys(report.kinds).join(", "));
    assert.ok((report.statuses["200"] ?? 0) > COUNT * 0.3, JSON.stringify(report.statuses));
    assert.ok(growth.bounded, growth.explanation);
  });
});

describe("admission memory under distinct long image names", () => {
  it("stays bounded over 600 reviews whose every image has a different long name", { timeout: 600_000 }, async () => {
    // Image names are remembered (the image-key cache): only short ones may be, or any user who may
    // dry-run a workload write grows the server by the size of the names sent.
    const report = await runFuzz({ seed: SEED, count: 600, concurrency: 4, only: { layer: "tree", name: "distinct huge images" } });
    const growth = memoryGrowth(report);
    console.log(`seed ${SEED}: ${report.count} cases; ${(report.bytesSent / 2 ** 20).toFixed(0)} MiB sent; ${growth.explanation}`);
    assert.deepEqual(report.failures, []);
    assert.ok(report.bytesSent > 100 * 2 ** 20, "sends enough image names to show growth");
    assert.ok(growth.bounded, growth.explanation);
  });
});
