import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { createdLines, demoSummaryLines, isRolledOut, releasedPhase, rolloutLine } from "../../../src/cli/demo-output.js";
import type { PrepullStatus } from "../../../src/prepull/progress.js";

function status(phase: PrepullStatus["phase"], pulled: number, desired: number): PrepullStatus {
  return { phase, images: [], nodes: { desired, pulled, failed: 0 }, startedAt: "", request: "r", daemonSet: "ds", message: `${phase} message` };
}

const deployment = (paused: boolean, replicas: { ready?: number; available?: number; updated?: number } = {}): k8s.V1Deployment => ({
  spec: { paused, selector: {}, template: {} },
  status: { readyReplicas: replicas.ready, availableReplicas: replicas.available, updatedReplicas: replicas.updated },
});

describe("demo output", () => {
  it("shows progress, phase, hold and readiness on one line", () => {
    assert.equal(rolloutLine(deployment(true), status("Pulling", 4, 8)), "[############------------] 4/8 nodes pulled  Pulling  rollout HELD  ready 0/3");
    assert.equal(rolloutLine(deployment(false, { ready: 2 }), undefined), "[------------------------] 0/0 nodes pulled  Pending  rollout running  ready 2/3");
  });

  it("sees the hold released only once unpaused with a finished prepull", () => {
    assert.equal(releasedPhase(deployment(true), status("Succeeded", 8, 8)), undefined);
    assert.equal(releasedPhase(deployment(false), status("Pulling", 4, 8)), undefined);
    assert.equal(releasedPhase(deployment(false), undefined), undefined);
    assert.equal(releasedPhase(deployment(false), status("Succeeded", 8, 8)), "Succeeded");
  });

  it("calls the rollout done when every replica is available and updated", () => {
    assert.equal(isRolledOut(deployment(false, { available: 3, updated: 2 })), false);
    assert.equal(isRolledOut(deployment(false, { available: 3, updated: 3 })), true);
    assert.equal(isRolledOut(deployment(false)), false);
  });

  it("reports what admission did", () => {
    const created: k8s.V1Deployment = { metadata: { annotations: { held: "kube-prepull" } }, spec: { paused: true, selector: {}, template: {} } };
    assert.deepEqual(createdLines(created, ["a:1", "b:2"], "held"), [
      'created deployment/shop (3 replicas, kube-prepull.io/hold: "true") with a:1, b:2',
      "admitted with spec.paused=true and held-by=kube-prepull: the rollout waits",
    ]);
    assert.equal(createdLines({}, [], "held")[1], "admitted with spec.paused=undefined and held-by=-: the rollout waits");
  });

  it("summarises the timeline and kube-prepull's own events, oldest first", () => {
    const events: k8s.CoreV1Event[] = [
      { involvedObject: {}, metadata: {}, type: "Normal", reason: "Released", message: "second", source: { component: "kube-prepull" }, firstTimestamp: new Date(2000) },
      { involvedObject: {}, metadata: {}, type: "Normal", reason: "ScalingReplicaSet", message: "not ours", source: { component: "deployment-controller" } },
      { involvedObject: {}, metadata: {}, type: "Normal", reason: "Held", message: "first", source: { component: "kube-prepull" }, firstTimestamp: new Date(1000) },
    ];
    assert.deepEqual(demoSummaryLines({ status: status("Succeeded", 8, 8), releasedAt: 12.34, completedAt: 20 }, events), [
      "",
      "summary",
      "  prepull:        Succeeded — Succeeded message",
      "  rollout held:   12.3 s (until every node had the images)",
      "  rollout done:   20.0 s after create, its pods started on nodes that already had the images",
      "  DaemonSet gone: not yet",
      "  events:",
      "    Normal  Held              first",
      "    Normal  Released          second",
    ]);
    assert.deepEqual(demoSummaryLines({}, []).slice(2, 6), [
      "  prepull:        ? — ",
      "  rollout held:   not released",
      "  rollout done:   not completed",
      "  DaemonSet gone: not yet",
    ]);
  });
});
