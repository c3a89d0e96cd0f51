// Progress as a real kubelet reports it: once a node has pulled, it lists the images in
// node.status.images, so it leaves the plan's targets and joins its "already present" nodes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { progressOf } from "../../../src/prepull/progress.js";
import { EVERY_TARGET_ANNOTATION, planNodes, restrictToNodes } from "../../../src/prepull/targets.js";

const IMAGE = "registry.example/app:v2";

const node = (name: string, options: { hasImage?: boolean; cordoned?: boolean } = {}): k8s.V1Node => ({
  metadata: { name, labels: { "kubernetes.io/hostname": name } },
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
      const pods = [pod("a", "ready")];
      const was = progressOf({ daemonSet: ds, pods, plan: before, graceOver: false });
      const now = progressOf({ daemonSet: ds, pods, plan: afterPull, graceOver: false });
      assert.deepEqual([was.desired, was.pulled, was.skipped], [2, 1, 0]);
      assert.deepEqual([now.desired, now.pulled, now.skipped], [2, 1, 0]);
    });
  }

  it("still leaves out a failing node that was cordoned meanwhile", () => {
    const plan = planNodes({}, [node("a"), node("b", { cordoned: true })], images);
    const progress = progressOf({ daemonSet: daemonSet(undefined), pods: [pod("a", "ready"), pod("b", "failed")], plan, graceOver: false });
    assert.deepEqual([progress.desired, progress.pulled, progress.failures.length], [1, 1, 0]);
  });
});

describe("a node that reports every image while its prepull pod still initialises", () => {
  it("has pulled: the images are there, whatever the pod's own state", () => {
    const images = [{ image: IMAGE }];
    const plan = planNodes({}, [node("a", { hasImage: true }), node("b")], images);
    const initialising = pod("a", "ready");
    initialising.status!.conditions = [{ type: "Ready", status: "False" }];
    initialising.status!.initContainerStatuses![0]!.state = { running: {} };
    const progress = progressOf({ daemonSet: daemonSet(undefined), pods: [initialising], plan, graceOver: false });
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
    const progress = progressOf({ daemonSet: daemonSet(undefined), pods: [stuck], plan, graceOver: false });
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
    const progress = progressOf({ daemonSet: daemonSet(undefined), pods: [started, waiting], plan, graceOver: false });
    assert.deepEqual([progress.desired, progress.pulled, progress.inFlight], [2, 1, 1]);
  });
});
