// The controller caches a slimmed node, and slims the pending pods it lists; every decision must
// come out the same as on the full objects.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { nodeForCache, podForCache } from "../../../src/kube/cache-shapes.js";
import { keepWarmProgress } from "../../../src/keepwarm/keep-warm.js";
import { progressOf, pullFailureOf } from "../../../src/prepull/progress.js";
import { planNodes, restrictToNodes } from "../../../src/prepull/targets.js";
import { pendingOf } from "../support/daemonset-status.js";

const fullNode = (name: string, options: { ready?: boolean; cordoned?: boolean; image?: string; taint?: boolean; zone?: string } = {}): k8s.V1Node => ({
  metadata: { name, uid: `uid-${name}`, resourceVersion: "7", labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", zone: options.zone ?? "a" }, annotations: { big: "x".repeat(1000) },
    managedFields: [{ manager: "kubelet", operation: "Update", fieldsV1: { "f:status": {} } }] },
  spec: { ...(options.cordoned ? { unschedulable: true } : {}), ...(options.taint ? { taints: [{ key: "gpu", value: "true", effect: "NoSchedule" }] } : {}), podCIDR: "10.0.0.0/24" },
  status: {
    conditions: [{ type: "MemoryPressure", status: "False", message: "ok" }, { type: "Ready", status: options.ready === false ? "False" : "True", reason: "KubeletReady", message: "kubelet is posting ready status" }],
    images: options.image ? [{ names: [options.image, "registry.example/app@sha256:" + "d".repeat(64)], sizeBytes: 123456 }] : [],
    capacity: { cpu: "4" },
    nodeInfo: { architecture: "amd64", bootID: "", containerRuntimeVersion: "", kernelVersion: "", kubeProxyVersion: "", kubeletVersion: "", machineID: "", operatingSystem: "linux", osImage: "", systemUUID: "" },
  },
});

const fullPod = (node: string, state: "ready" | "pulling" | "failed" | "unscheduled"): k8s.V1Pod => ({
  metadata: { name: `ds-${node}`, namespace: "team", uid: `pod-${node}`, resourceVersion: "9", labels: { "kube-prepull.io/prepull": "ds", "pod-template-generation": "1" },
    ownerReferences: [{ apiVersion: "apps/v1", kind: "DaemonSet", name: "ds", uid: "ds" }], managedFields: [{ manager: "kube-controller-manager" }] },
  spec: {
    containers: [{ name: "pause", image: "helper", command: ["/prepull-helper", "pause"] }],
    initContainers: [{ name: "pull-0", image: "registry.example/app:v2" }],
    ...(state === "unscheduled" ? {} : { nodeName: node }),
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: [node] }] }] } } },
    tolerations: [{ operator: "Exists" }],
  },
  status: {
    phase: state === "ready" ? "Running" : "Pending",
    conditions: state === "ready" ? [{ type: "Ready", status: "True" }, { type: "PodScheduled", status: "True" }]
      : state === "unscheduled" ? [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/4 nodes" }]
      : [{ type: "Ready", status: "False", reason: "ContainersNotReady" }],
    initContainerStatuses: [{ name: "pull-0", image: "registry.example/app:v2", imageID: "sha", ready: state === "ready", restartCount: 0,
      state: state === "failed" ? { waiting: { reason: "ImagePullBackOff", message: "Back-off pulling image" } } : state === "ready" ? { terminated: { exitCode: 0 } } : { waiting: { reason: "PodInitializing" } } }],
    hostIP: "127.0.0.1",
  },
});

describe("cache shapes", () => {
  const nodes = [fullNode("a"), fullNode("b", { image: "registry.example/app:v2" }), fullNode("c", { ready: false }), fullNode("d", { cordoned: true }), fullNode("e", { taint: true }), fullNode("f", { zone: "b" })];
  const images = [{ image: "registry.example/app:v2", pullPolicy: "IfNotPresent" as const }];
  const placement = { nodeSelector: { zone: "a" } };

  it("plans the same nodes from slimmed nodes", () => {
    assert.deepEqual(planNodes(placement, nodes.map(nodeForCache), images), planNodes(placement, nodes, images));
    assert.ok(JSON.stringify(nodes.map(nodeForCache)).length < JSON.stringify(nodes).length / 3);
  });

  it("tracks the same progress and failures from slimmed pods", () => {
    const plan = planNodes({}, nodes, images);
    const daemonSet: k8s.V1DaemonSet = {
      metadata: { name: "ds", generation: 1 },
      spec: { selector: {}, template: { spec: { containers: [], affinity: restrictToNodes(undefined, plan.targets) } } },
      status: { observedGeneration: 1, desiredNumberScheduled: 4, currentNumberScheduled: 4, numberMisscheduled: 0, numberReady: 1, updatedNumberScheduled: 4 },
    };
    const pods = [fullPod("a", "ready"), fullPod("f", "failed"), fullPod("e", "pulling"), fullPod("x", "unscheduled")];
    // The controller sees the DaemonSet's counts and, on a stall, its pending pods (slimmed as they are listed).
    const pending = pendingOf(pods);
    for (const graceOver of [false, true]) {
      assert.deepEqual(progressOf({ daemonSet, pendingPods: pending.map(podForCache), plan, graceOver }), progressOf({ daemonSet, pendingPods: pending, plan, graceOver }));
    }
    assert.deepEqual(pods.map((p) => pullFailureOf(podForCache(p), "n")), pods.map((p) => pullFailureOf(p, "n")));
    assert.deepEqual(keepWarmProgress(daemonSet, pending.map(podForCache)), keepWarmProgress(daemonSet, pending));
    assert.ok(progressOf({ daemonSet, pendingPods: pending, plan, graceOver: false }).failures.length === 1, "the fixture has a failure to compare");
  });
});
