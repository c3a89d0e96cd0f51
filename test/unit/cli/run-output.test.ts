import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatElapsed, lineDue, lineView, progressBar, progressBarLine, progressLine, startedLine, summaryLines } from "../../../src/cli/run-output.js";
import type { Progress } from "../../../src/prepull/progress.js";
import type { RunSummary } from "../../../src/prepull/run.js";

function progress(pulled: number, desired: number, options: { failed?: number; inFlight?: number; waiting?: number } = {}): Progress {
  return {
    desired,
    pulled,
    failures: Array.from({ length: options.failed ?? 0 }, (_, i) => ({ node: `n${i}`, reason: "ErrImagePull", message: "" })),
    permanentFailure: false,
    settling: false,
    inFlight: options.inFlight ?? 0,
    waiting: Array.from({ length: options.waiting ?? 0 }, (_, i) => `w${i}`),
    skipped: 0,
    unsupported: 0,
  };
}

const SUMMARY: RunSummary = {
  result: "succeeded",
  message: "pulled on 100 nodes",
  images: ["registry.example/app:v2"],
  namespace: "ci",
  daemonSet: "prepull-run-0123456789ab",
  nodes: { targeted: 100, pulled: 100, failed: 0, skipped: 2, unsupported: 0 },
  failures: [],
  durationSeconds: 23.44,
};

describe("run output: progress", () => {
  it("draws a bar of pulled over targeted nodes", () => {
    assert.equal(progressBar(0, 100, 10), "[----------]");
    assert.equal(progressBar(40, 100, 10), "[####------]");
    assert.equal(progressBar(100, 100, 10), "[##########]");
    assert.equal(progressBar(0, 0, 4), "[----]");
  });
  it("writes elapsed time in seconds, minutes or hours", () => {
    assert.deepEqual([0, 59.9, 125, 3720].map(formatElapsed), ["0s", "59s", "2m05s", "1h02m"]);
  });
  it("writes plain lines with the counts and what is in flight", () => {
    assert.equal(progressLine(progress(40, 100, { failed: 2, inFlight: 25, waiting: 33 }), 12.4), "   12s  40/100 nodes pulled, 2 failed (25 pulling, 33 waiting)");
    assert.equal(progressLine(progress(100, 100), 61), " 1m01s  100/100 nodes pulled");
  });
  it("cuts the terminal line to the terminal's width", () => {
    assert.equal(progressBarLine(progress(50, 100), 3, 200), "[############------------] 50/100 nodes pulled  3s");
    assert.equal(progressBarLine(progress(50, 100), 3, 21).length, 20);
  });
  it("says what is pulled where, and in waves", () => {
    const info = { images: ["a:1", "b:2"], namespace: "ci", daemonSet: "prepull-run-x", targets: 98, skipped: 2, unsupported: 0, limit: 25 };
    assert.equal(startedLine(info), "pulling a:1, b:2 on 98 nodes (2 already have them), 25 at a time with daemonset/prepull-run-x in namespace ci");
    assert.equal(startedLine({ ...info, images: ["a:1"], targets: 1, skipped: 0, limit: 1 }), "pulling a:1 on 1 node with daemonset/prepull-run-x in namespace ci");
    assert.equal(
      startedLine({ ...info, images: ["a:1"], targets: 3, skipped: 0, unsupported: 2, limit: 3 }),
      "pulling a:1 on 3 nodes with daemonset/prepull-run-x in namespace ci; 2 nodes skipped: not Linux on amd64 or arm64",
    );
  });
});

describe("run output: plain lines at most every interval", () => {
  it("prints the first line at once, a change after the interval, nothing unchanged", () => {
    assert.equal(lineDue(undefined, "0/10", 1000, 2000), 0);
    assert.equal(lineDue({ counts: "0/10", at: 1000 }, "0/10", 9000, 2000), undefined);
    assert.equal(lineDue({ counts: "0/10", at: 1000 }, "1/10", 1500, 2000), 1500);
    assert.equal(lineDue({ counts: "0/10", at: 1000 }, "1/10", 5000, 2000), 0);
  });
  it("ends with a final line", () => {
    const lines: string[] = [];
    let now = 0;
    const view = lineView((l) => lines.push(l), { images: ["a:1"], namespace: "ci", now: () => now, startedAt: 0, intervalMs: 2000 });
    view.progress(progress(0, 10, { inFlight: 10 }));
    now = 100;
    view.progress(progress(0, 10, { inFlight: 10 }));
    now = 900;
    view.progress(progress(3, 10, { inFlight: 7 }));
    view.close();
    assert.deepEqual(lines, ["    0s  0/10 nodes pulled (10 pulling)", "    0s  3/10 nodes pulled (7 pulling)"]);
  });
});

describe("run output: summary", () => {
  it("says what was pulled where and that the DaemonSet is gone", () => {
    assert.deepEqual(summaryLines(SUMMARY), [
      "succeeded: registry.example/app:v2 pulled on 100/100 nodes in 23.4s, 2 already had it",
      "daemonset/prepull-run-0123456789ab deleted",
    ]);
    assert.deepEqual(summaryLines({ ...SUMMARY, daemonSet: null, message: "already present on all 4 nodes" }), ["succeeded: nothing to pull (already present on all 4 nodes)"]);
  });
  it("says how many nodes were skipped for their OS or architecture", () => {
    const nodes = { ...SUMMARY.nodes, skipped: 0, unsupported: 1 };
    assert.equal(summaryLines({ ...SUMMARY, nodes })[0], "succeeded: registry.example/app:v2 pulled on 100/100 nodes in 23.4s; 1 node skipped: not Linux on amd64 or arm64");
    assert.equal(
      summaryLines({ ...SUMMARY, result: "failed", nodes: { ...nodes, pulled: 99, failed: 1 } })[0],
      "failed: 1 of 100 nodes could not pull registry.example/app:v2 (99 pulled, 23.4s); 1 node skipped: not Linux on amd64 or arm64",
    );
  });
  it("lists failing nodes with their reasons, up to 20", () => {
    const failures = Array.from({ length: 23 }, (_, i) => ({ node: `node-${i}`, reason: "ImagePullBackOff", message: 'Back-off pulling image "x"' }));
    const lines = summaryLines({ ...SUMMARY, result: "failed", nodes: { targeted: 100, pulled: 77, failed: 23, skipped: 0, unsupported: 0 }, failures });
    assert.equal(lines[0], "failed: 23 of 100 nodes could not pull registry.example/app:v2 (77 pulled, 23.4s)");
    assert.equal(lines[1], '  node-0  ImagePullBackOff: Back-off pulling image "x"');
    assert.equal(lines[21], "  … and 3 more (--output json lists every node)");
  });
  it("says why a run ended early", () => {
    assert.equal(summaryLines({ ...SUMMARY, result: "timed-out", message: "not pulled on every node within 60s (3/100 pulled)" })[0], "timed out: not pulled on every node within 60s (3/100 pulled)");
    assert.equal(summaryLines({ ...SUMMARY, result: "interrupted", message: "SIGINT received", nodes: { ...SUMMARY.nodes, pulled: 3 } })[0], "interrupted: SIGINT received after 23.4s (3/100 nodes pulled)");
    assert.deepEqual(summaryLines({ ...SUMMARY, result: "error", daemonSet: null, message: "cannot list nodes: Forbidden" }), ["error: cannot list nodes: Forbidden"]);
  });
});
