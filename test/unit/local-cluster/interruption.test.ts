// An interruption (SIGINT/SIGTERM as an AbortSignal) ends a start at its next step: the decisions
// and the waits, without a cluster (test/cluster/interrupt.test.ts interrupts real starts).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { exitCodeOfError, exitCodeOfSignal } from "../../../src/cli/exit-codes.js";
import { ensureControlPlaneBinaries, binariesIn } from "../../../src/local-cluster/binaries.js";
import { startCluster } from "../../../src/local-cluster/cluster.js";
import { createNodes, waitForNodesReady } from "../../../src/local-cluster/nodes.js";
import { Interrupted, pause, pollUntil, throwIfInterrupted } from "../../../src/local-cluster/wait.js";

const aborted = (reason: string): AbortSignal => AbortSignal.abort(reason);

describe("an interruption's exit code", () => {
  it("is 130 for SIGINT and 143 for SIGTERM, as shells report a death by the signal", () => {
    assert.equal(exitCodeOfSignal("SIGINT"), 130);
    assert.equal(exitCodeOfSignal("SIGTERM"), 143);
    assert.equal(exitCodeOfError(new Interrupted("SIGINT")), 130);
    assert.equal(exitCodeOfError(new Interrupted("SIGTERM", "stopped the cluster it was starting")), 143);
  });

  it("names the signal and what was done about it", () => {
    assert.equal(new Interrupted("SIGTERM").message, "interrupted by SIGTERM");
    assert.equal(new Interrupted("SIGINT", "stopped the cluster").message, "interrupted by SIGINT: stopped the cluster");
  });
});

describe("waits under an AbortSignal", () => {
  it("throwIfInterrupted passes without a signal or before it fires, throws Interrupted after", () => {
    throwIfInterrupted(undefined);
    throwIfInterrupted(new AbortController().signal);
    assert.throws(() => throwIfInterrupted(aborted("SIGTERM")), (e: unknown) => e instanceof Interrupted && e.reason === "SIGTERM");
  });

  it("pause ends early with Interrupted when the signal fires", async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort("SIGINT"), 20);
    await assert.rejects(pause(10_000, controller.signal), (e: unknown) => e instanceof Interrupted && e.reason === "SIGINT");
    assert.ok(Date.now() - started < 2000, "well before the pause's end");
    await pause(1, undefined); // without a signal: an ordinary pause
  });

  it("pollUntil stops polling once the signal fires, however long its timeout", async () => {
    const controller = new AbortController();
    let checks = 0;
    setTimeout(() => controller.abort("SIGTERM"), 50);
    await assert.rejects(
      pollUntil(() => {
        checks++;
        return Promise.resolve(false);
      }, { what: "never", timeoutMs: 60_000, intervalMs: 10, signal: controller.signal }),
      Interrupted,
    );
    const after = checks;
    await pause(50, undefined);
    assert.equal(checks, after, "no check after the interruption");
  });

  it("node creation and the wait for Ready nodes make no request once interrupted", async () => {
    let requests = 0;
    const core = {
      createNode: () => Promise.resolve(void requests++),
      listNode: () => Promise.resolve(void requests++),
    } as unknown as k8s.CoreV1Api;
    await assert.rejects(createNodes(core, 5, { signal: aborted("SIGINT") }), Interrupted);
    await assert.rejects(waitForNodesReady(core, 5, { timeoutMs: 60_000, progress: () => undefined, stillRunning: () => undefined, signal: aborted("SIGINT") }), Interrupted);
    assert.equal(requests, 0);
  });
});

describe("a start interrupted before it begins", () => {
  it("does not build, launches nothing, leaves no state folder and says so", async () => {
    await assert.rejects(ensureControlPlaneBinaries({ progress: () => undefined, env: {}, signal: aborted("SIGTERM") }), Interrupted);

    const root = mkdtempSync(path.join(os.tmpdir(), "kp-interrupted-start-"));
    const lines: string[] = [];
    try {
      await assert.rejects(startCluster({
        name: "never", stateRoot: root, binaries: binariesIn("/nonexistent"), nodes: 1, env: {},
        progress: (line) => lines.push(line), signal: aborted("SIGTERM"),
      }), (e: unknown) => e instanceof Interrupted && e.reason === "SIGTERM");
      assert.equal(existsSync(path.join(root, "never")), false, "no state folder");
      assert.deepEqual(lines, ["SIGTERM: interrupted, stopping what it started"]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
