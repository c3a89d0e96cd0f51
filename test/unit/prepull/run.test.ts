import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { InvalidImageReference } from "../../../src/prepull/image-reference.js";
import {
  defaultPullPolicy,
  expiredRunDaemonSets,
  renderRunDaemonSet,
  runExpiry,
  runImages,
  runPlacement,
  runStart,
  runStep,
  runSummary,
  type RunSpec,
} from "../../../src/prepull/run.js";
import { renderPrepullDaemonSet } from "../../../src/prepull/daemonset.js";
import { deploymentWorkload } from "../../../src/workloads/deployment.js";
import { listedNodes } from "../../../src/prepull/targets.js";
import { withPods } from "../support/daemonset-status.js";

const T0 = Date.parse("2026-11-22T10:00:00Z");
const SPEC: RunSpec = {
  images: runImages(["registry.example/app:v2"]),
  namespace: "ci",
  placement: runPlacement({ pool: "web" }, [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }]),
  pullSecrets: ["regcred"],
  maxParallel: { kind: "percent", value: 100 },
  timeoutSeconds: 600,
  pod: { helperImage: "ghcr.io/kube-prepull/helper:v0.1.0", extraLabels: {}, extraAnnotations: { "sim.kube-prepull.io/pull-delay": "1s" } },
};

function node(name: string, options: { ready?: boolean; images?: string[]; pool?: string; taint?: boolean; os?: string; arch?: string } = {}): k8s.V1Node {
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": options.os ?? "linux", "kubernetes.io/arch": options.arch ?? "amd64", pool: options.pool ?? "web" } },
    spec: options.taint ? { taints: [{ key: "dedicated", value: "x", effect: "NoSchedule" }] } : {},
    status: {
      conditions: [{ type: "Ready", status: options.ready === false ? "False" : "True" }],
      images: options.images ? [{ names: options.images, sizeBytes: 1 }] : [],
    },
  };
}

type PodState = "ready" | "pulling" | { waiting: string; message?: string };
function pod(nodeName: string, state: PodState): k8s.V1Pod {
  return {
    metadata: { name: `p-${nodeName}` },
    spec: { nodeName, containers: [] },
    status: {
      conditions: [{ type: "Ready", status: state === "ready" ? "True" : "False" }],
      ...(typeof state === "object"
        ? { initContainerStatuses: [{ name: "pull-0", image: "x", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: state.waiting, message: state.message ?? "" } } }] }
        : {}),
    },
  };
}

/** The run's DaemonSet as the watch shows it once the DaemonSet controller has seen it. */
function seen(daemonSet: k8s.V1DaemonSet): k8s.V1DaemonSet {
  return { ...daemonSet, metadata: { ...daemonSet.metadata, generation: 1 }, status: { observedGeneration: 1, desiredNumberScheduled: listedNodes(daemonSet).length, currentNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0 } };
}

const NODES = [node("a"), node("b"), node("c")];
const render = (nodeNames: string[], spec: RunSpec = SPEC): k8s.V1DaemonSet =>
  seen(renderRunDaemonSet({ id: "0123456789ab", spec, nodeNames, expiresAt: new Date(T0 + 660_000) }));
/** A step as the run sees the DaemonSet with these pods: its status counts, and the pods not Ready as pending-pod detail. */
const step = (daemonSet: k8s.V1DaemonSet, pods: k8s.V1Pod[], options: { now?: number; spec?: RunSpec; nodes?: k8s.V1Node[] } = {}) =>
  runStep({ spec: options.spec ?? SPEC, ...withPods(daemonSet, pods), nodes: options.nodes ?? NODES, now: options.now ?? T0 + 5000, deadline: T0 + 600_000, graceEnds: T0 + 30_000 });

describe("run: images and pull policies", () => {
  it("defaults the pull policy as Kubernetes defaults a container's", () => {
    assert.equal(defaultPullPolicy("nginx"), "Always");
    assert.equal(defaultPullPolicy("nginx:latest"), "Always");
    assert.equal(defaultPullPolicy("registry.example:5000/app:v2"), "IfNotPresent");
    assert.equal(defaultPullPolicy(`app@sha256:${"a".repeat(64)}`), "IfNotPresent");
    assert.equal(defaultPullPolicy(`app:latest@sha256:${"a".repeat(64)}`), "Always");
  });
  it("keeps images verbatim, drops duplicates by identity, and applies --image-pull-policy to all", () => {
    assert.deepEqual(runImages(["nginx", "docker.io/library/nginx:latest", "app:1"]), [
      { image: "nginx", pullPolicy: "Always" },
      { image: "app:1", pullPolicy: "IfNotPresent" },
    ]);
    assert.deepEqual(runImages(["app:1"], "Always"), [{ image: "app:1", pullPolicy: "Always" }]);
  });
  it("rejects a reference that does not parse, even with a pull policy given", () => {
    assert.throws(() => runImages(["Registry/App"], "Always"), InvalidImageReference);
    assert.throws(() => runImages(["app:1", "a b"]), InvalidImageReference);
  });
});

describe("run: the DaemonSet (the controller's renderer)", () => {
  const ds = render(["a", "b"]);
  const pod = ds.spec!.template.spec!;

  it("is recognisably kube-prepull's and run's, owned by nothing, with an expiry", () => {
    assert.equal(ds.metadata!.name, "prepull-run-0123456789ab");
    assert.equal(ds.metadata!.namespace, "ci");
    assert.equal(ds.metadata!.labels!["app.kubernetes.io/managed-by"], "kube-prepull");
    assert.equal(ds.metadata!.labels!["kube-prepull.io/run"], "0123456789ab");
    assert.equal(ds.metadata!.labels!["kube-prepull.io/deployment"], undefined);
    assert.equal(ds.metadata!.ownerReferences, undefined);
    assert.equal(ds.metadata!.annotations!["kube-prepull.io/expires-at"], new Date(T0 + 660_000).toISOString());
    assert.deepEqual(ds.spec!.selector.matchLabels, { "kube-prepull.io/prepull": ds.metadata!.name });
  });
  it("has the same restricted pod as a Deployment's prepull, with the run's pull secrets, placement and policies", () => {
    const deployment: k8s.V1Deployment = {
      metadata: { name: "web", namespace: "ci", uid: "u" },
      spec: { selector: {}, template: { spec: { imagePullSecrets: [{ name: "regcred" }], nodeSelector: { pool: "web" }, tolerations: SPEC.placement.tolerations!, containers: [{ name: "app", image: "registry.example/app:v2", imagePullPolicy: "IfNotPresent" }] } } },
    };
    const fromDeployment = renderPrepullDaemonSet({ workload: deploymentWorkload, object: deployment, request: { id: "r", images: ["registry.example/app:v2"], requestedAt: "", hold: false }, nodes: "eligible", nodeNames: ["a", "b"], config: SPEC.pod }).spec!.template.spec!;
    assert.deepEqual(pod, fromDeployment);
    assert.deepEqual(pod.imagePullSecrets, [{ name: "regcred" }]);
    assert.equal(pod.initContainers![1]!.imagePullPolicy, "IfNotPresent");
    assert.equal(ds.spec!.template.metadata!.annotations!["sim.kube-prepull.io/pull-delay"], "1s");
  });
});

describe("run: start", () => {
  it("targets Ready nodes matching the node selector and tolerated taints, skipping those that have the images", () => {
    const nodes = [node("a"), node("b", { images: ["registry.example/app:v2"] }), node("c", { ready: false }), node("d", { pool: "batch" }), node("e", { taint: true })];
    const start = runStart({ id: "0123456789ab", spec: SPEC, nodes, expiresAt: new Date(T0) });
    assert.ok(start.kind === "create");
    assert.deepEqual(start.plan.targets, ["a", "e"]);
    assert.deepEqual(start.plan.skipped, ["b"]);
    assert.deepEqual(listedNodes(start.daemonSet), ["a", "e"]);
  });
  it("leaves out nodes of another OS or architecture and counts them, through to the summary", () => {
    const nodes = [node("a"), node("win", { os: "windows" }), node("z", { arch: "s390x" })];
    const start = runStart({ id: "0123456789ab", spec: SPEC, nodes, expiresAt: new Date(T0) });
    assert.ok(start.kind === "create");
    assert.deepEqual([start.plan.targets, start.plan.unsupported], [["a"], 2]);
    const step = runStep({ spec: SPEC, daemonSet: start.daemonSet, pendingPods: undefined, nodes, now: T0, deadline: T0 + 60_000, graceEnds: T0 });
    assert.equal(step.progress.unsupported, 2);
    assert.equal(runSummary({ result: "succeeded", message: "m", spec: SPEC, progress: step.progress, startedAt: T0, now: T0 }).nodes.unsupported, 2);
    const none = runStart({ id: "0123456789ab", spec: SPEC, nodes: [node("win", { os: "windows" })], expiresAt: new Date(T0) });
    assert.ok(none.kind === "nothing-to-pull");
    assert.match(none.message, /1 node skipped: not Linux on amd64 or arm64/);
  });
  it("lists the first wave only under --max-parallel", () => {
    const start = runStart({ id: "0123456789ab", spec: { ...SPEC, maxParallel: { kind: "count", value: 2 } }, nodes: NODES, expiresAt: new Date(T0) });
    assert.ok(start.kind === "create");
    assert.equal(start.limit, 2);
    assert.deepEqual(listedNodes(start.daemonSet), ["a", "b"]);
  });
  it("creates nothing when every node has the images, or none matches", () => {
    const has = runStart({ id: "x", spec: SPEC, nodes: [node("a", { images: ["registry.example/app:v2"] })], expiresAt: new Date(T0) });
    assert.deepEqual([has.kind, has.kind === "nothing-to-pull" && has.message], ["nothing-to-pull", "already present on all 1 node"]);
    const none = runStart({ id: "x", spec: SPEC, nodes: [node("d", { pool: "batch" })], expiresAt: new Date(T0) });
    assert.deepEqual([none.kind, none.kind === "nothing-to-pull" && none.message], ["nothing-to-pull", "no Ready, schedulable node can run these pods"]);
  });
});

describe("run: steps", () => {
  it("keeps pulling while pods pull, counting what is pulled", () => {
    const s = step(render(["a", "b", "c"]), [pod("a", "ready"), pod("b", "pulling")]);
    assert.equal(s.kind, "pulling");
    assert.deepEqual([s.progress.pulled, s.progress.desired, s.progress.inFlight], [1, 3, 2]);
  });
  it("succeeds when every targeted node pulled", () => {
    const s = step(render(["a", "b", "c"]), ["a", "b", "c"].map((n) => pod(n, "ready")));
    assert.deepEqual([s.kind, s.kind === "finished" && s.result, s.kind === "finished" && s.message], ["finished", "succeeded", "pulled on 3 nodes"]);
  });
  it("fails with per-node reasons once every node has an outcome and some failed", () => {
    const failing = pod("c", { waiting: "ImagePullBackOff", message: 'Back-off pulling image "registry.example/app:v2"' });
    const waiting = step(render(["a", "b", "c"]), [pod("a", "ready"), pod("b", "pulling"), failing]);
    assert.equal(waiting.kind, "pulling", "a transient failure waits for the other nodes");
    const s = step(render(["a", "b", "c"]), [pod("a", "ready"), pod("b", "ready"), failing]);
    assert.ok(s.kind === "finished");
    assert.equal(s.result, "failed");
    assert.deepEqual(s.progress.failures, [{ node: "c", reason: "ImagePullBackOff", message: 'Back-off pulling image "registry.example/app:v2"' }]);
    assert.match(s.message, /^ImagePullBackOff on 1 node \(c\)/);
  });
  it("fails at once on a permanent failure", () => {
    const s = step(render(["a", "b", "c"]), [pod("a", { waiting: "InvalidImageName" })]);
    assert.deepEqual([s.kind, s.kind === "finished" && s.result], ["finished", "failed"]);
  });
  it("times out at the deadline with what it has", () => {
    const s = step(render(["a", "b", "c"]), [pod("a", "ready")], { now: T0 + 600_000 });
    assert.ok(s.kind === "finished");
    assert.equal(s.result, "timed-out");
    assert.equal(s.message, "not pulled on every node within 600s (1/3 pulled)");
  });
  it("widens the node list as slots free up under --max-parallel", () => {
    const spec: RunSpec = { ...SPEC, maxParallel: { kind: "count", value: 1 } };
    const first = step(render(["a"], spec), [pod("a", "pulling")], { spec });
    assert.ok(first.kind === "pulling" && first.wave === undefined, "no free slot");
    const next = step(render(["a"], spec), [pod("a", "ready")], { spec });
    assert.ok(next.kind === "pulling" && next.wave);
    assert.equal(next.wave.added, 1);
    assert.deepEqual(next.wave.affinity.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]?.matchExpressions?.at(-1)?.values, ["a", "b"]);
  });
  it("waits for the DaemonSet controller before judging a DaemonSet it has not seen yet", () => {
    const created = renderRunDaemonSet({ id: "0123456789ab", spec: SPEC, nodeNames: ["a", "b", "c"], expiresAt: new Date(T0) });
    // As created: no status counts and no pods yet; the listed targets count as wanted.
    const s = runStep({ spec: SPEC, daemonSet: created, pendingPods: undefined, nodes: NODES, now: T0 + 5000, deadline: T0 + 600_000, graceEnds: T0 + 30_000 });
    assert.deepEqual([s.kind, s.progress.settling, s.progress.desired, s.progress.inFlight], ["pulling", true, 3, 3]);
  });
});

describe("run: leftovers of a crashed run", () => {
  const left = (expiresAt: string | undefined, labels: Record<string, string> = { "kube-prepull.io/run": "x" }): k8s.V1DaemonSet => ({
    metadata: { name: "d", labels, annotations: expiresAt ? { "kube-prepull.io/expires-at": expiresAt } : {}, creationTimestamp: new Date(T0) },
  });
  it("expire at their expires-at, or a day after creation without one; other DaemonSets never do", () => {
    assert.equal(runExpiry(left(new Date(T0 + 1000).toISOString())), T0 + 1000);
    assert.equal(runExpiry(left(undefined)), T0 + 86_400_000);
    assert.equal(runExpiry(left(new Date(T0).toISOString(), { "kube-prepull.io/deployment": "web" })), undefined);
  });
  it("are deleted by a later run once expired", () => {
    const expired = left(new Date(T0 - 1).toISOString());
    const live = left(new Date(T0 + 1).toISOString());
    assert.deepEqual(expiredRunDaemonSets([expired, live, left(undefined, {})], T0), [expired]);
  });
});

describe("run: summary", () => {
  it("reports counts, every failure, and the duration", () => {
    const s = step(render(["a", "b", "c"]), [pod("a", "ready"), pod("b", "ready"), pod("c", { waiting: "ErrImagePull", message: "boom" })]);
    const summary = runSummary({ result: "failed", message: "m", spec: SPEC, daemonSet: "prepull-run-x", progress: s.progress, startedAt: T0, now: T0 + 12_345 });
    assert.deepEqual(summary, {
      result: "failed",
      message: "m",
      images: ["registry.example/app:v2"],
      namespace: "ci",
      daemonSet: "prepull-run-x",
      nodes: { targeted: 3, pulled: 2, failed: 1, skipped: 0, unsupported: 0 },
      failures: [{ node: "c", reason: "ErrImagePull", message: "boom" }],
      durationSeconds: 12.3,
    });
  });
  it("has zeros and no DaemonSet when nothing was pulled", () => {
    const summary = runSummary({ result: "succeeded", message: "already present on all 4 nodes", spec: SPEC, skipped: 4, startedAt: T0, now: T0 });
    assert.deepEqual([summary.daemonSet, summary.nodes], [null, { targeted: 0, pulled: 0, failed: 0, skipped: 4, unsupported: 0 }]);
    const elsewhere = runSummary({ result: "succeeded", message: "m", spec: SPEC, unsupported: 2, startedAt: T0, now: T0 });
    assert.equal(elsewhere.nodes.unsupported, 2);
  });
});
