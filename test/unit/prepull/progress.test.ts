// Progress as a real kubelet reports it: once a node has pulled, it lists the images in
// node.status.images, so it leaves the plan's targets and joins its "already present" nodes.
// Progress comes from the DaemonSet's status counts, plus its pending pods when a stall listed them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { decodeStatus, failureCounts, outcomeOf, progressOf, STATUS_FAILED_NODES, type NodeFailure } from "../../../src/prepull/progress.js";
import { EVERY_TARGET_ANNOTATION, planNodes, restrictToNodes } from "../../../src/prepull/targets.js";
import { withPods } from "../support/daemonset-status.js";

const IMAGE = "registry.example/app:v2";

const node = (name: string, options: { hasImage?: boolean; cordoned?: boolean } = {}): k8s.V1Node => ({
  metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" } },
  spec: options.cordoned ? { unschedulable: true } : {},
  status: { conditions: [{ type: "Ready", status: "True" }], images: options.hasImage ? [{ names: [IMAGE], sizeBytes: 1 }] : [] },
});

const pod = (nodeName: string, state: "ready" | "failed"): k8s.V1Pod => ({
  metadata: { name: `ds-${nodeName}` },
  spec: { nodeName, containers: [{ name: "pause", image: "helper" }] },
  status: {
    conditions: [{ type: "Ready", status: state === "ready" ? "True" : "False" }],
    initContainerStatuses: [{ name: "pull-0", image: IMAGE, imageID: "", ready: state === "ready", restartCount: 0,
      state: state === "ready" ? { terminated: { exitCode: 0 } } : { waiting: { reason: "ErrImagePull", message: "rpc error: 500" } } }],
  },
});

function daemonSet(nodeList: string[] | undefined): k8s.V1DaemonSet {
  return {
    metadata: { name: "ds", generation: 1, annotations: nodeList ? {} : { [EVERY_TARGET_ANNOTATION]: "true" } },
    spec: { selector: {}, template: { spec: { containers: [], ...(nodeList ? { affinity: restrictToNodes(undefined, nodeList) } : {}) } } },
    status: { observedGeneration: 1, desiredNumberScheduled: 2, currentNumberScheduled: 2, numberMisscheduled: 0, numberReady: 1 },
  };
}

describe("progress on nodes that report the images after pulling them", () => {
  const images = [{ image: IMAGE }];
  const before = planNodes({}, [node("a"), node("b")], images);
  const afterPull = planNodes({}, [node("a", { hasImage: true }), node("b")], images);

  for (const [kind, ds] of [["every target", daemonSet(undefined)], ["a node list", daemonSet(["a", "b"])]] as const) {
    it(`counts such a node as pulled, not as already present (DaemonSet with ${kind})`, () => {
      const seen = withPods(ds, [pod("a", "ready")]); // b has no pod yet: in flight through desired − current
      const was = progressOf({ ...seen, plan: before, graceOver: false });
      const now = progressOf({ ...seen, plan: afterPull, graceOver: false });
      assert.deepEqual([was.desired, was.pulled, was.skipped], [2, 1, 0]);
      assert.deepEqual([now.desired, now.pulled, now.skipped], [2, 1, 0]);
    });
  }

  it("still leaves out a failing node that was cordoned meanwhile", () => {
    const plan = planNodes({}, [node("a"), node("b", { cordoned: true })], images);
    const progress = progressOf({ ...withPods(daemonSet(undefined), [pod("a", "ready"), pod("b", "failed")]), plan, graceOver: false });
    assert.deepEqual([progress.desired, progress.pulled, progress.failures.length], [1, 1, 0]);
    // Only the pending-pod detail tells that b's pod is on a node that stopped being a target: until a stall lists it, it is in flight.
    const counted = progressOf({ ...withPods(daemonSet(undefined), [pod("a", "ready"), pod("b", "failed")], { detail: false }), plan, graceOver: false });
    assert.deepEqual([counted.desired, counted.pulled, counted.inFlight, counted.failures.length], [2, 1, 1, 0]);
  });
});

describe("a node that reports every image while its prepull pod still initialises", () => {
  it("has pulled: the images are there, whatever the pod's own state", () => {
    const images = [{ image: IMAGE }];
    const plan = planNodes({}, [node("a", { hasImage: true }), node("b")], images);
    const initialising = pod("a", "ready");
    initialising.status!.conditions = [{ type: "Ready", status: "False" }];
    initialising.status!.initContainerStatuses![0]!.state = { running: {} };
    const progress = progressOf({ ...withPods(daemonSet(undefined), [initialising]), plan, graceOver: false });
    assert.deepEqual([progress.desired, progress.pulled, progress.skipped, progress.inFlight], [2, 1, 0, 1]);
  });
});

describe("image volumes on a runtime without them", () => {
  it("fail at once with a reason that says so, even though the kubelet pulled the images", () => {
    const images = [{ image: IMAGE }];
    const plan = planNodes({}, [node("a", { hasImage: true })], images);
    const stuck = pod("a", "ready");
    stuck.status!.conditions = [{ type: "Ready", status: "False" }];
    stuck.status!.initContainerStatuses = [];
    stuck.status!.containerStatuses = [{ name: "pause", image: "helper", imageID: "", ready: false, restartCount: 0,
      state: { waiting: { reason: "CreateContainerError", message: 'failed to generate container "5d51" spec: failed to generate spec: failed to mkdir "": mkdir : no such file or directory' } } }];
    const progress = progressOf({ ...withPods(daemonSet(undefined), [stuck]), plan, graceOver: false });
    assert.equal(progress.pulled, 0);
    assert.equal(progress.failures[0]?.reason, "ImageVolumesUnsupported");
    assert.match(progress.failures[0].message, /containerd >= 2\.1/);
    assert.equal(progress.permanentFailure, true);
  });
});

describe("a prepull pod whose pull containers were all created", () => {
  it("has pulled before it is Ready: the kubelet creates a container only once its image is there", () => {
    const images = [{ image: IMAGE }];
    const plan = planNodes({}, [node("a"), node("b")], images);
    const started = pod("a", "ready");
    started.status!.conditions = [{ type: "Ready", status: "False" }];
    started.status!.initContainerStatuses![0]!.state = { running: {} };
    const waiting = pod("b", "ready");
    waiting.status!.conditions = [{ type: "Ready", status: "False" }];
    waiting.status!.initContainerStatuses![0]!.state = { waiting: { reason: "PodInitializing" } };
    const progress = progressOf({ ...withPods(daemonSet(undefined), [started, waiting]), plan, graceOver: false });
    assert.deepEqual([progress.desired, progress.pulled, progress.inFlight], [2, 1, 1]);
  });
});

/** A DaemonSet with these status counts, listing `nodeList` (undefined: every target). */
function counted(counts: { desired: number; current: number; ready: number; misscheduled?: number; settling?: boolean }, nodeList?: string[]): k8s.V1DaemonSet {
  const ds = daemonSet(nodeList);
  ds.metadata!.generation = 2;
  ds.status = {
    observedGeneration: counts.settling ? 1 : 2,
    desiredNumberScheduled: counts.desired,
    currentNumberScheduled: counts.current,
    numberReady: counts.ready,
    numberMisscheduled: counts.misscheduled ?? 0,
  };
  return ds;
}

const pending = (nodeName: string, state: "pulling" | "pulled" | "unschedulable" | { waiting: string; message: string }): k8s.V1Pod => ({
  metadata: { name: `ds-${nodeName}` },
  spec: {
    containers: [{ name: "pause", image: "helper" }],
    ...(state === "unschedulable" ? {} : { nodeName }),
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: [nodeName] }] }] } } },
  },
  status: {
    phase: "Pending",
    conditions: state === "unschedulable" ? [{ type: "PodScheduled", status: "False", reason: "Unschedulable" }] : [{ type: "Ready", status: "False" }],
    ...(state === "unschedulable" ? {} : {
      initContainerStatuses: [{ name: "pull-0", image: IMAGE, imageID: "", ready: false, restartCount: 0,
        state: state === "pulling" ? { waiting: { reason: "PodInitializing" } } : state === "pulled" ? { running: {} } : { waiting: { reason: state.waiting, message: state.message } } }],
    }),
  },
});

describe("progress from the DaemonSet's counts alone (no pending-pod detail)", () => {
  const images = [{ image: IMAGE }];
  const names = ["a", "b", "c", "d"];
  const plan = planNodes({}, names.map((n) => node(n)), images);

  it("counts R of D Ready as pulled and the rest in flight", () => {
    const progress = progressOf({ daemonSet: counted({ desired: 4, current: 3, ready: 2 }), pendingPods: undefined, plan, graceOver: false });
    assert.deepEqual([progress.desired, progress.pulled, progress.inFlight, progress.failures.length, progress.settling], [4, 2, 2, 0, false]);
    assert.deepEqual(progress.waiting, []);
    assert.equal(progress.skipped, 0);
  });

  it("never fails on counts: a pod that is not Ready may still be pulling, grace over or not", () => {
    for (const graceOver of [false, true]) {
      const progress = progressOf({ daemonSet: counted({ desired: 4, current: 4, ready: 0 }), pendingPods: undefined, plan, graceOver });
      assert.deepEqual([progress.failures, progress.permanentFailure, progress.inFlight, progress.desired], [[], false, 4, 4]);
      assert.deepEqual(outcomeOf(progress), { kind: "pulling" });
    }
  });

  it("succeeds only once every wanted pod is Ready and the DaemonSet controller has caught up", () => {
    const almost = progressOf({ daemonSet: counted({ desired: 4, current: 4, ready: 3 }), pendingPods: undefined, plan, graceOver: true });
    assert.deepEqual(outcomeOf(almost), { kind: "pulling" });
    const done = progressOf({ daemonSet: counted({ desired: 4, current: 4, ready: 4 }), pendingPods: undefined, plan, graceOver: false });
    assert.deepEqual([done.pulled, done.desired], [4, 4]);
    assert.deepEqual(outcomeOf(done), { kind: "succeeded" });
    const settling = progressOf({ daemonSet: counted({ desired: 4, current: 4, ready: 4, settling: true }), pendingPods: undefined, plan, graceOver: false });
    assert.equal(settling.settling, true);
    assert.deepEqual(outcomeOf(settling), { kind: "pulling" });
  });

  it("reports a DaemonSet whose observedGeneration is behind its generation as settling", () => {
    assert.equal(progressOf({ daemonSet: counted({ desired: 0, current: 0, ready: 0, settling: true }), pendingPods: undefined, plan, graceOver: false }).settling, true);
    assert.equal(progressOf({ daemonSet: counted({ desired: 0, current: 0, ready: 0 }), pendingPods: undefined, plan, graceOver: false }).settling, false);
  });

  it("under waves, counts targets the node list does not name yet as waiting, in order", () => {
    const progress = progressOf({ daemonSet: counted({ desired: 1, current: 1, ready: 0 }, ["a"]), pendingPods: undefined, plan, graceOver: false });
    assert.deepEqual(progress.waiting, ["b", "c", "d"]);
    assert.deepEqual([progress.desired, progress.pulled, progress.inFlight], [4, 0, 1]);
  });
});

describe("progress with pending-pod detail", () => {
  const images = [{ image: IMAGE }];
  const plan = planNodes({}, [node("a"), node("b"), node("c")], images);

  it("names a pull failure, and one whose image is not found is permanent", () => {
    const failed = pending("b", { waiting: "ErrImagePull", message: 'rpc error: failed to resolve reference "registry.example/app:v2": not found' });
    const progress = progressOf({ daemonSet: counted({ desired: 3, current: 3, ready: 1 }), pendingPods: [failed, pending("c", "pulling")], plan, graceOver: false });
    assert.deepEqual(progress.failures.map((f) => [f.node, f.reason]), [["b", "ErrImagePull"]]);
    assert.equal(progress.permanentFailure, true);
    assert.deepEqual([progress.desired, progress.pulled, progress.inFlight], [3, 1, 1]);
    assert.equal(outcomeOf(progress).kind, "failed");
  });

  it("does not count a pending pod on a node that stopped being a target (cordoned)", () => {
    const withCordoned = planNodes({}, [node("a"), node("b"), node("c", { cordoned: true })], images);
    const progress = progressOf({ daemonSet: counted({ desired: 3, current: 3, ready: 2 }), pendingPods: [pending("c", "pulling")], plan: withCordoned, graceOver: false });
    assert.deepEqual([progress.desired, progress.pulled, progress.inFlight], [2, 2, 0]);
    assert.deepEqual(outcomeOf(progress), { kind: "succeeded" });
  });

  it("counts an unschedulable pending pod in flight during the grace, and not after it", () => {
    const input = { daemonSet: counted({ desired: 3, current: 3, ready: 2 }), pendingPods: [pending("c", "unschedulable")], plan };
    const early = progressOf({ ...input, graceOver: false });
    assert.deepEqual([early.desired, early.pulled, early.inFlight], [3, 2, 1]);
    const late = progressOf({ ...input, graceOver: true });
    assert.deepEqual([late.desired, late.pulled, late.inFlight], [2, 2, 0]);
  });

  it("counts a pending pod whose pull containers were created as pulled, but never more pulled nodes than pods", () => {
    const early = progressOf({ daemonSet: counted({ desired: 3, current: 3, ready: 1 }), pendingPods: [pending("b", "pulled"), pending("c", "pulling")], plan, graceOver: false });
    assert.deepEqual([early.desired, early.pulled, early.inFlight], [3, 2, 1]);
    // Stale detail: b and c became Ready (R = 3) while the list still shows b as pulled early: R + 1 > C + M.
    const stale = progressOf({ daemonSet: counted({ desired: 3, current: 3, ready: 3 }), pendingPods: [pending("b", "pulled")], plan, graceOver: false });
    assert.deepEqual([stale.desired, stale.pulled, stale.inFlight], [3, 3, 0]);
  });
});

describe("a node whose pod is Running but not Ready (its node went NotReady after the pull)", () => {
  const images = [{ image: IMAGE }];
  const plan = planNodes({}, [node("a"), { ...node("b"), status: { conditions: [{ type: "Ready", status: "False" }], images: [] } }], images);

  it("has pulled once a complete pending-pod list shows its pod is not pending", () => {
    const progress = progressOf({ daemonSet: daemonSet(undefined), pendingPods: [], plan, graceOver: false });
    assert.deepEqual([progress.desired, progress.pulled, progress.inFlight], [2, 2, 0]);
    assert.equal(outcomeOf(progress).kind, "succeeded");
  });

  it("counts in flight without a list: it may still be pending", () => {
    const progress = progressOf({ daemonSet: daemonSet(undefined), pendingPods: undefined, plan, graceOver: true });
    assert.deepEqual([progress.desired, progress.pulled, progress.inFlight], [2, 1, 1]);
    assert.equal(outcomeOf(progress).kind, "pulling");
  });
});

describe("failed nodes in the status annotation", () => {
  const failure = (node: string, reason: string, message = `${reason} on ${node}`): NodeFailure => ({ node, reason, message });

  it("counts every failed node by reason and names at most STATUS_FAILED_NODES, in turns across reasons", () => {
    const many = Array.from({ length: 150 }, (_, i) => failure(`node-${String(i).padStart(3, "0")}`, "ImagePullBackOff", "Back-off pulling image"));
    const few = [failure("node-x", "InvalidImageName"), failure("node-y", "InvalidImageName")];
    const counts = failureCounts([...few, ...many].reverse());
    assert.equal(STATUS_FAILED_NODES, 20);
    assert.deepEqual(counts.map((c) => [c.reason, c.count, c.nodes.length]), [["ImagePullBackOff", 150, 18], ["InvalidImageName", 2, 2]]);
    assert.deepEqual(counts[0]!.nodes.slice(0, 3), ["node-000", "node-001", "node-002"], "sorted, so the same failures give the same annotation");
    assert.equal(counts[0]!.message, "Back-off pulling image");
    assert.equal(counts.reduce((n, c) => n + c.nodes.length, 0), STATUS_FAILED_NODES);
  });

  it("names every node when they fit, and cuts long messages", () => {
    const counts = failureCounts([failure("b", "ErrImagePull", "x".repeat(1000)), failure("a", "ErrImagePull", "y")], 5);
    assert.deepEqual(counts.map((c) => c.nodes), [["a", "b"]]);
    assert.equal(counts[0]!.message, "y");
    assert.equal(failureCounts([failure("a", "ErrImagePull", "z".repeat(1000))])[0]!.message.length, 300);
    assert.deepEqual(failureCounts([]), []);
  });

  it("stays small at 5000 failed nodes", () => {
    const all = Array.from({ length: 5000 }, (_, i) => failure(`kwok-node-${i}`, i % 2 ? "ErrImagePull" : "ImagePullBackOff", "rpc error: code = NotFound desc = failed to pull and unpack image"));
    assert.ok(JSON.stringify(failureCounts(all)).length < 1000);
  });
});

describe("decoding the status annotation", () => {
  const base = { phase: "Failed", images: ["a:1"], nodes: { desired: 3, pulled: 1, failed: 2 }, startedAt: "2026-12-01T00:00:00Z", request: "r1", daemonSet: "prepull-web-1" };

  it("decodes annotations written before failures and superseded existed", () => {
    const old = decodeStatus(JSON.stringify({ ...base, message: "ErrImagePull on 2 nodes (a, b, c, d, e, …): x" }));
    assert.equal(old?.phase, "Failed");
    assert.equal(old?.failures, undefined);
    assert.equal(old?.superseded, undefined);
  });

  it("round-trips failures and superseded, and drops them when malformed instead of the whole status", () => {
    const failures = [{ reason: "ErrImagePull", count: 2, message: "m", nodes: ["a", "b"] }];
    const superseded = { count: 1, request: "r0", images: ["a:0"], at: "2026-12-01T00:00:00Z" };
    assert.deepEqual(decodeStatus(JSON.stringify({ ...base, failures, superseded })), { ...base, failures, superseded });
    const broken = decodeStatus(JSON.stringify({ ...base, failures: [{ reason: 1 }], superseded: "yes" }));
    assert.deepEqual(broken, base);
    assert.equal(decodeStatus("{not json"), undefined);
    assert.equal(decodeStatus(JSON.stringify({ phase: "Pulling" })), undefined);
  });
});
