import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { classifyApiError, createFailureOf, type CreateFailure } from "../../../src/controller/api-errors.js";
import { reconcile, type Action, type ControllerConfig, type Observed } from "../../../src/controller/reconcile.js";
import { prepullState, StartOrder } from "../../../src/controller/start-order.js";
import { prepullDaemonSetName, renderPrepullDaemonSet } from "../../../src/prepull/daemonset.js";
import { deploymentWorkload } from "../../../src/workloads/deployment.js";
import type { PrepullStatus } from "../../../src/prepull/progress.js";
import { encodeRequest, type PrepullRequest } from "../../../src/prepull/request.js";
import { listedNodes, listsEveryTarget } from "../../../src/prepull/targets.js";
import { workloadForCache } from "../../../src/kube/cache-shapes.js";
import { withPods } from "../support/daemonset-status.js";

const T0 = Date.parse("2026-11-22T10:00:00Z");
const at = (seconds: number): Date => new Date(T0 + seconds * 1000);
const CONFIG: ControllerConfig = {
  pod: { helperImage: "ghcr.io/kube-prepull/helper:v0.1.0", extraLabels: {}, extraAnnotations: {} },
  cleanupTtlSeconds: 900,
  schedulingGraceSeconds: 30,
  maxConcurrentPrepulls: 20,
};
const REQUEST: PrepullRequest = { id: "req-1", images: ["registry.example/app:v2"], requestedAt: at(0).toISOString(), hold: true };
const DS_NAME = prepullDaemonSetName("web", REQUEST.images);

function deployment(options: { annotations?: Record<string, string>; status?: PrepullStatus; heldBy?: string | null; paused?: boolean; rolledOut?: boolean } = {}): k8s.V1Deployment {
  const heldBy = options.heldBy === undefined ? REQUEST.id : options.heldBy;
  return {
    metadata: {
      name: "web",
      namespace: "team",
      uid: "uid-web",
      generation: 2,
      annotations: {
        "kube-prepull.io/hold": "true",
        "kube-prepull.io/request": encodeRequest(REQUEST),
        ...(heldBy !== null ? { "kube-prepull.io/held-by": heldBy } : {}),
        ...(options.status ? { "kube-prepull.io/status": JSON.stringify(options.status) } : {}),
        ...options.annotations,
      },
    },
    spec: {
      replicas: 2,
      paused: options.paused ?? true,
      selector: { matchLabels: { app: "web" } },
      template: { spec: { containers: [{ name: "app", image: "registry.example/app:v2", imagePullPolicy: "IfNotPresent" }] } },
    },
    status: options.rolledOut
      ? { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }
      : { observedGeneration: 2, replicas: 2, updatedReplicas: 0, availableReplicas: 2 },
  };
}

function node(name: string, options: { ready?: boolean; images?: string[]; os?: string; arch?: string } = {}): k8s.V1Node {
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": options.os ?? "linux", "kubernetes.io/arch": options.arch ?? "amd64" } },
    spec: {},
    status: {
      conditions: [{ type: "Ready", status: options.ready === false ? "False" : "True" }],
      images: options.images ? [{ names: options.images, sizeBytes: 1 }] : [],
    },
  };
}

function daemonSet(nodes: string[], options: { settled?: boolean; desired?: number; createdAt?: number } = {}): k8s.V1DaemonSet {
  const ds = renderPrepullDaemonSet({ workload: deploymentWorkload, object: deployment(), request: REQUEST, nodes: "eligible", nodeNames: nodes, config: CONFIG.pod });
  ds.metadata = { ...ds.metadata, generation: 1, creationTimestamp: at(options.createdAt ?? 1) };
  ds.status = {
    observedGeneration: options.settled === false ? 0 : 1,
    desiredNumberScheduled: options.desired ?? nodes.length,
    currentNumberScheduled: 0,
    numberMisscheduled: 0,
    numberReady: 0,
  };
  return ds;
}

type PodState = "ready" | "pulling" | "unschedulable" | { waiting: string; message?: string };
function pod(nodeName: string, state: PodState): k8s.V1Pod {
  const conditions: k8s.V1PodCondition[] =
    state === "ready" ? [{ type: "Ready", status: "True" }]
    : state === "unschedulable" ? [{ type: "PodScheduled", status: "False", reason: "Unschedulable" }]
    : [{ type: "Ready", status: "False" }];
  return {
    metadata: { name: `${DS_NAME}-${nodeName}`, namespace: "team", labels: { "kube-prepull.io/prepull": DS_NAME } },
    spec: { containers: [], ...(state === "unschedulable" ? {} : { nodeName }), affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: [nodeName] }] }] } } } },
    status: {
      conditions,
      ...(typeof state === "object" ? { initContainerStatuses: [{ name: "pull-0", image: "x", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: state.waiting, message: state.message ?? "" } } }] } : {}),
    },
  };
}

const pulling = (overrides: Partial<PrepullStatus> = {}): PrepullStatus => ({
  phase: "Pulling",
  images: REQUEST.images,
  nodes: { desired: 3, pulled: 0, failed: 0, skipped: 0 },
  startedAt: at(1).toISOString(),
  request: REQUEST.id,
  daemonSet: DS_NAME,
  ...overrides,
});

type RunInput = Partial<Omit<Observed, "workload" | "object">> & { deployment: k8s.V1Deployment; pods?: k8s.V1Pod[] };

/**
 * Reconciles as the controller sees things: given `pods`, each DaemonSet gets the status counts of
 * its pods and their pending ones as detail (test/unit/support/daemonset-status.ts).
 */
function run({ deployment, pods, ...observed }: RunInput, config: ControllerConfig = CONFIG) {
  const seen = pods ? (observed.daemonSets ?? []).map((ds) => withPods(ds, pods.filter((p) => p.metadata?.labels?.["kube-prepull.io/prepull"] === ds.metadata?.name))) : undefined;
  const fromPods = seen ? { daemonSets: seen.map((s) => s.daemonSet), pendingPods: new Map(seen.map((s) => [s.daemonSet.metadata!.name!, s.pendingPods ?? []])) } : {};
  return reconcile({ workload: deploymentWorkload, object: deployment, daemonSets: [], pendingPods: new Map(), nodes: [node("a"), node("b"), node("c")], mayStart: true, now: at(2), ...observed, ...fromPods }, config);
}
const kinds = (actions: Action[]): string[] => actions.map((a) => (a.kind === "event" ? `event:${a.reason}` : a.kind));
const statusOf = (actions: Action[]): PrepullStatus | undefined => actions.findLast((a) => a.kind === "write-status")?.status;

describe("reconcile: starting a prepull", () => {
  it("creates a DaemonSet listing the nodes that miss an image, and skips the others", () => {
    const { actions } = run({ deployment: deployment(), nodes: [node("a"), node("b", { images: ["registry.example/app:v2"] }), node("c"), node("down", { ready: false })] });
    assert.deepEqual(kinds(actions), ["create-daemonset", "write-status", "event:PrepullStarted"]);
    const create = actions[0] as Extract<Action, { kind: "create-daemonset" }>;
    assert.deepEqual(listedNodes(create.daemonSet), ["a", "c"]);
    assert.deepEqual(statusOf(actions)?.nodes, { desired: 2, pulled: 0, failed: 0, skipped: 1 });
    assert.match((actions[2] as { message: string }).message, /on 2 nodes \(1 already have them\)/);
  });

  it("leaves out nodes of another OS or architecture, and counts and names them in the status and the Event", () => {
    const nodes = [node("a"), node("win", { os: "windows" }), node("z", { arch: "s390x" })];
    const { actions } = run({ deployment: deployment(), nodes });
    const create = actions.find((a) => a.kind === "create-daemonset") as Extract<Action, { kind: "create-daemonset" }>;
    assert.ok(listsEveryTarget(create.daemonSet), "the DaemonSet's affinity leaves them out: no node list needed");
    assert.deepEqual(statusOf(actions)?.nodes, { desired: 1, pulled: 0, failed: 0, skipped: 0, unsupported: 2 });
    assert.match((actions.find((a) => a.kind === "event") as { message: string }).message, /on 1 node with .*; 2 nodes skipped: not Linux on amd64 or arm64$/);
    const only = run({ deployment: deployment(), nodes: [node("win", { os: "windows" })] });
    assert.equal(statusOf(only.actions)?.phase, "Succeeded");
    assert.equal(statusOf(only.actions)?.message, "no Ready, schedulable node can run these pods; 1 node skipped: not Linux on amd64 or arm64");
  });

  it("uses the default for a malformed annotation the validating webhook did not stop, with a Warning event", () => {
    const { actions } = run({ deployment: deployment({ annotations: { "kube-prepull.io/max-parallel": "lots" } }) });
    const warning = actions.find((a) => a.kind === "event" && a.reason === "InvalidAnnotation") as { message: string } | undefined;
    assert.match(warning?.message ?? "", /max-parallel: invalid value "lots".*using the default/);
    const create = actions.find((a) => a.kind === "create-daemonset") as Extract<Action, { kind: "create-daemonset" }>;
    assert.ok(listsEveryTarget(create.daemonSet), "default: 100%, all at once");
  });

  it("lists no nodes when one wave covers every node the placement admits (the DaemonSet's own placement does it)", () => {
    const { actions } = run({ deployment: deployment() });
    const create = actions.find((a) => a.kind === "create-daemonset") as Extract<Action, { kind: "create-daemonset" }>;
    assert.equal(create.daemonSet.metadata?.annotations?.["kube-prepull.io/every-target"], "true");
    assert.deepEqual(listedNodes(create.daemonSet), []);
    // Only the platform requirement (Linux, the helper's architectures), no hostnames.
    assert.deepEqual(create.daemonSet.spec?.template.spec?.affinity?.nodeAffinity, {
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/os", operator: "In", values: ["linux"] }, { key: "kubernetes.io/arch", operator: "In", values: ["amd64", "arm64"] }] }] },
    });
    // A cordoned node the pods could run on: the list is needed again.
    const cordoned = node("c");
    cordoned.spec = { unschedulable: true };
    const withCordoned = run({ deployment: deployment(), nodes: [node("a"), node("b"), cordoned] });
    const listed = withCordoned.actions.find((a) => a.kind === "create-daemonset") as Extract<Action, { kind: "create-daemonset" }>;
    assert.deepEqual(listedNodes(listed.daemonSet), ["a", "b"]);
  });

  it("counts every current target of a DaemonSet without a node list, a node that joined included, and never patches waves into it", () => {
    const ds = daemonSet([], { desired: 4 }); // the DaemonSet controller wants a pod on each of the 4 nodes
    delete ds.spec!.template.spec!.affinity;
    ds.metadata!.annotations = { ...ds.metadata!.annotations, "kube-prepull.io/every-target": "true" };
    const nodes = [node("a"), node("b"), node("c"), node("d")];
    const pods = [pod("a", "ready"), pod("b", "ready"), pod("c", "ready"), pod("d", "pulling")];
    const pullingOne = run({ deployment: deployment({ status: pulling() }), daemonSets: [ds], nodes, pods, now: at(10) });
    assert.ok(!kinds(pullingOne.actions).includes("set-daemonset-nodes"));
    assert.deepEqual(statusOf(pullingOne.actions)?.nodes, { desired: 4, pulled: 3, failed: 0, skipped: 0 });
    const done = run({ deployment: deployment({ status: pulling() }), daemonSets: [ds], nodes, pods: pods.map((p) => pod(p.spec!.nodeName!, "ready")), now: at(12) });
    assert.equal(statusOf(done.actions)?.phase, "Succeeded");
  });

  it("lists only the first wave under max-parallel", () => {
    const { actions } = run({ deployment: deployment({ annotations: { "kube-prepull.io/max-parallel": "2" } }) });
    const create = actions.find((a) => a.kind === "create-daemonset") as Extract<Action, { kind: "create-daemonset" }>;
    assert.deepEqual(listedNodes(create.daemonSet), ["a", "b"]);
  });

  it("succeeds at once, without a DaemonSet, when every node already has the images", () => {
    const has = ["docker.io/x:y", "registry.example/app:v2"];
    const { actions } = run({ deployment: deployment(), nodes: [node("a", { images: has }), node("b", { images: has })] });
    assert.deepEqual(kinds(actions), ["write-status", "count", "event:PrepullSucceeded", "release-hold", "event:HoldReleased"]);
    assert.equal(statusOf(actions)?.phase, "Succeeded");
    assert.match(statusOf(actions)!.message!, /already present on all 2 nodes/);
  });

  it("queues when the cluster-wide cap is reached, and starts when a slot frees", () => {
    const queued = run({ deployment: deployment(), mayStart: false });
    assert.deepEqual(kinds(queued.actions), ["write-status"]);
    const status = statusOf(queued.actions)!;
    assert.equal(status.queued, true);
    assert.equal(status.phase, "Pulling");
    assert.ok(queued.requeueAfterMs! > 0, "wakes up for the hold deadline");
    // Still no slot: nothing to write again.
    assert.deepEqual(kinds(run({ deployment: deployment({ status }), mayStart: false }).actions), []);
    const started = run({ deployment: deployment({ status }), mayStart: true });
    assert.deepEqual(kinds(started.actions), ["create-daemonset", "write-status", "event:PrepullStarted"]);
    assert.equal(statusOf(started.actions)?.queued, undefined);
  });

  it("times out in the queue and releases the hold", () => {
    const status = pulling({ queued: true });
    const { actions } = run({ deployment: deployment({ status }), mayStart: false, now: at(601) });
    assert.deepEqual(kinds(actions), ["write-status", "count", "event:PrepullTimedOut", "release-hold", "event:HoldReleased"]);
  });
});

describe("reconcile: a DaemonSet the API server refuses (api-errors.ts)", () => {
  const QUOTA = "daemonsets.apps \"x\" is forbidden: exceeded quota: none, requested: count/daemonsets.apps=1, used: count/daemonsets.apps=0, limited: count/daemonsets.apps=0";
  const refused = (code: number | undefined, request = REQUEST.id): CreateFailure => ({ request, ...(code ? { code } : {}), message: QUOTA, permanent: code !== undefined && classifyApiError(code) === "permanent" });

  it("fails at once on an error that will not heal: status Failed with the API server's message, one Warning, the hold released", () => {
    const { actions, requeueAfterMs } = run({ deployment: deployment(), createFailure: refused(403) });
    assert.deepEqual(kinds(actions), ["write-status", "count", "event:PrepullFailed", "release-hold", "event:HoldReleased"]);
    assert.equal(statusOf(actions)?.phase, "Failed");
    assert.equal(statusOf(actions)?.message, `could not create daemonset/${DS_NAME}: ${QUOTA}`);
    const warning = actions.find((a) => a.kind === "event" && a.type === "Warning") as Extract<Action, { kind: "event" }>;
    assert.equal(warning.message, statusOf(actions)?.message);
    assert.equal(requeueAfterMs, undefined);
    // And once Failed, nothing more: no create, no second Warning.
    const after = run({ deployment: deployment({ status: statusOf(actions), heldBy: null, paused: false }), createFailure: refused(403) });
    assert.deepEqual(kinds(after.actions), []);
  });

  it("retries an error that may heal until the hold deadline, then fails with its message", () => {
    for (const code of [undefined, 429, 500, 503]) {
      const retry = run({ deployment: deployment(), createFailure: refused(code), now: at(60) });
      assert.deepEqual(kinds(retry.actions), ["create-daemonset", "write-status", "event:PrepullStarted"], `code ${code}`);
      assert.equal(retry.requeueAfterMs, 540_000, "looked at again at the deadline, whatever the backoff");
      const late = run({ deployment: deployment(), createFailure: refused(code), now: at(600) });
      assert.deepEqual(kinds(late.actions), ["write-status", "count", "event:PrepullFailed", "release-hold", "event:HoldReleased"]);
      assert.equal(statusOf(late.actions)?.message, `could not create daemonset/${DS_NAME} within 600s: ${QUOTA}`);
    }
  });

  it("ignores the refusal of an older request's DaemonSet", () => {
    const { actions } = run({ deployment: deployment(), createFailure: refused(403, "req-0") });
    assert.deepEqual(kinds(actions), ["create-daemonset", "write-status", "event:PrepullStarted"]);
  });

  it("classifies by HTTP code: 4xx will not heal, except 401, 408 and 429; 5xx and no answer may", () => {
    for (const code of [400, 403, 404, 409, 422]) assert.equal(classifyApiError(code), "permanent", `${code}`);
    for (const code of [undefined, 401, 408, 429, 500, 503, 504]) assert.equal(classifyApiError(code), "transient", `${code}`);
    const failure = createFailureOf("req-1", Object.assign(new Error("HTTP-Code: 403"), { code: 403, body: JSON.stringify({ kind: "Status", message: QUOTA }) }));
    assert.deepEqual(failure, { request: "req-1", code: 403, message: QUOTA, permanent: true });
    assert.deepEqual(createFailureOf("req-1", new Error("connect ECONNREFUSED")), { request: "req-1", message: "connect ECONNREFUSED", permanent: false });
  });
});

describe("reconcile: progress, waves and completion", () => {
  it("succeeds when every listed node pulled, and releases the hold", () => {
    const { actions } = run({ deployment: deployment({ status: pulling() }), daemonSets: [daemonSet(["a", "b", "c"])], pods: ["a", "b", "c"].map((n) => pod(n, "ready")), now: at(10) });
    assert.deepEqual(kinds(actions), ["write-status", "count", "event:PrepullSucceeded", "release-hold", "event:HoldReleased"]);
    assert.deepEqual(statusOf(actions)?.nodes, { desired: 3, pulled: 3, failed: 0, skipped: 0 });
  });

  it("adds the next wave once enough slots are free", () => {
    const deploy = deployment({ status: pulling(), annotations: { "kube-prepull.io/max-parallel": "1" } });
    const waiting = run({ deployment: deploy, daemonSets: [daemonSet(["a"])], pods: [pod("a", "pulling")], now: at(10) });
    assert.ok(!kinds(waiting.actions).includes("set-daemonset-nodes"), "a is still pulling");
    const next = run({ deployment: deploy, daemonSets: [daemonSet(["a"])], pods: [pod("a", "ready")], now: at(10) });
    const wave = next.actions.find((a) => a.kind === "set-daemonset-nodes") as Extract<Action, { kind: "set-daemonset-nodes" }>;
    assert.ok(wave, kinds(next.actions).join());
    assert.deepEqual(listedNodes({ spec: { selector: {}, template: { spec: { containers: [], affinity: wave.affinity } } } }), ["a", "b"]);
    const unsettled = run({ deployment: deploy, daemonSets: [daemonSet(["a"], { settled: false })], pods: [pod("a", "ready")], now: at(10) });
    assert.ok(!kinds(unsettled.actions).includes("set-daemonset-nodes"), "waits for the DaemonSet controller to catch up");
  });

  it("does not wait for a node that went NotReady, nor, after the grace, for pods that cannot be scheduled", () => {
    const nodes = [node("a"), node("b", { ready: false }), node("c")];
    const pods = [pod("a", "ready"), pod("b", "pulling"), pod("c", "unschedulable")];
    const early = run({ deployment: deployment({ status: pulling() }), daemonSets: [daemonSet(["a", "b", "c"])], nodes, pods, now: at(10) });
    assert.ok(!kinds(early.actions).includes("release-hold"), "c may still be scheduled during the grace");
    const late = run({ deployment: deployment({ status: pulling() }), daemonSets: [daemonSet(["a", "b", "c"])], nodes, pods, now: at(40) });
    assert.equal(statusOf(late.actions)?.phase, "Succeeded");
    assert.deepEqual(statusOf(late.actions)?.nodes, { desired: 1, pulled: 1, failed: 0, skipped: 0 });
  });

  it("ignores listed nodes where the DaemonSet controller makes no pod, grace or not", () => {
    const ds = daemonSet(["a", "b", "c"], { desired: 2 });
    const pods = [pod("a", "ready"), pod("b", "ready")];
    // desiredNumberScheduled leaves c out, so there is nothing to wait for even during the grace (it was Pulling until the grace ended).
    assert.equal(statusOf(run({ deployment: deployment({ status: pulling() }), daemonSets: [ds], pods, now: at(10) }).actions)?.phase, "Succeeded");
    assert.equal(statusOf(run({ deployment: deployment({ status: pulling() }), daemonSets: [ds], pods, now: at(40) }).actions)?.phase, "Succeeded");
    assert.deepEqual(statusOf(run({ deployment: deployment({ status: pulling() }), daemonSets: [ds], pods, now: at(10) }).actions)?.nodes, { desired: 2, pulled: 2, failed: 0, skipped: 0 });
  });

  it("fails fast on a permanent pull error, with the node and reason", () => {
    const pods = [pod("a", { waiting: "ErrImagePull", message: "manifest unknown" }), pod("b", "pulling"), pod("c", "pulling")];
    const { actions } = run({ deployment: deployment({ status: pulling() }), daemonSets: [daemonSet(["a", "b", "c"])], pods, now: at(10) });
    assert.deepEqual(kinds(actions), ["write-status", "count", "event:PrepullFailed", "release-hold", "event:HoldReleased"]);
    assert.match(statusOf(actions)!.message!, /^ErrImagePull on 1 node \(a\): manifest unknown/);
  });

  it("waits for the other nodes on a transient failure, then fails with every reason", () => {
    const transient = { waiting: "ImagePullBackOff", message: "Back-off pulling image" };
    const some = run({ deployment: deployment({ status: pulling() }), daemonSets: [daemonSet(["a", "b", "c"])], pods: [pod("a", transient), pod("b", "pulling"), pod("c", "ready")], now: at(10) });
    assert.notEqual(statusOf(some.actions)?.phase, "Failed");
    const all = run({ deployment: deployment({ status: pulling() }), daemonSets: [daemonSet(["a", "b", "c"])], pods: [pod("a", transient), pod("b", transient), pod("c", "ready")], now: at(10) });
    assert.equal(statusOf(all.actions)?.phase, "Failed");
    assert.match(statusOf(all.actions)!.message!, /ImagePullBackOff on 2 nodes \(a, b\)/);
    assert.deepEqual(statusOf(all.actions)?.failures, [{ reason: "ImagePullBackOff", count: 2, message: "Back-off pulling image", nodes: ["a", "b"] }]);
  });

  it("keeps every failed node's reason in the status while pulling, and drops the field once none fails", () => {
    const names = Array.from({ length: 8 }, (_, i) => `n${i}`);
    const nodes = names.map((n) => node(n));
    const transient = { waiting: "ImagePullBackOff", message: "Back-off pulling image" };
    const pods = names.map((n, i) => pod(n, i < 2 ? transient : "pulling"));
    const known = pulling({ updatedAt: at(1).toISOString(), nodes: { desired: 8, pulled: 0, failed: 0, skipped: 0 } });
    const failing = run({ deployment: deployment({ status: known }), daemonSets: [daemonSet(names)], nodes, pods, now: at(10) });
    assert.equal(statusOf(failing.actions)?.phase, "Pulling");
    assert.deepEqual(statusOf(failing.actions)?.failures, [{ reason: "ImagePullBackOff", count: 2, message: "Back-off pulling image", nodes: ["n0", "n1"] }]);
    const healedStatus = { ...known, failures: statusOf(failing.actions)!.failures! };
    const healed = run({ deployment: deployment({ status: healedStatus }), daemonSets: [daemonSet(names)], nodes, pods: names.map((n) => pod(n, "ready")), now: at(10) });
    assert.equal(statusOf(healed.actions)?.phase, "Succeeded");
    assert.equal(statusOf(healed.actions)?.failures, undefined);
  });

  it("times out at requestedAt + hold-timeout and releases the hold", () => {
    const { actions } = run({ deployment: deployment({ status: pulling(), annotations: { "kube-prepull.io/hold-timeout": "60s" } }), daemonSets: [daemonSet(["a", "b", "c"])], pods: [pod("a", "ready")], now: at(60) });
    assert.deepEqual(kinds(actions), ["write-status", "count", "event:PrepullTimedOut", "release-hold", "event:HoldReleased"]);
    assert.match(statusOf(actions)!.message!, /1\/3 pulled/);
  });

  it("fails, and releases, when the API server dropped the image volumes", () => {
    const config = { ...CONFIG, pod: { ...CONFIG.pod, strategy: "image-volumes" as const } };
    const ds = renderPrepullDaemonSet({ workload: deploymentWorkload, object: deployment(), request: REQUEST, nodes: "eligible", nodeNames: ["a", "b", "c"], config: config.pod });
    ds.metadata = { ...ds.metadata, generation: 1, creationTimestamp: at(1) };
    ds.status = { observedGeneration: 1, desiredNumberScheduled: 3, currentNumberScheduled: 3, numberMisscheduled: 0, numberReady: 3 };
    const kept = run({ deployment: deployment({ status: pulling() }), daemonSets: [ds], pods: ["a", "b", "c"].map((n) => pod(n, "ready")), now: at(10) }, config);
    assert.equal(statusOf(kept.actions)?.phase, "Succeeded");
    ds.spec!.template.spec!.volumes = [];
    const dropped = run({ deployment: deployment({ status: pulling() }), daemonSets: [ds], pods: ["a", "b", "c"].map((n) => pod(n, "ready")), now: at(10) }, config);
    assert.equal(statusOf(dropped.actions)?.phase, "Failed");
    assert.match(statusOf(dropped.actions)!.message!, /ImageVolume feature gate/);
    assert.ok(kinds(dropped.actions).includes("release-hold"));
  });

  it("writes progress at most every 2 s", () => {
    const recent = pulling({ updatedAt: at(9).toISOString() });
    const pods = [pod("a", "ready"), pod("b", "pulling"), pod("c", "pulling")];
    const throttled = run({ deployment: deployment({ status: recent }), daemonSets: [daemonSet(["a", "b", "c"])], pods, now: at(10) });
    assert.deepEqual(kinds(throttled.actions), []);
    assert.equal(throttled.requeueAfterMs, 1000);
    const written = run({ deployment: deployment({ status: recent }), daemonSets: [daemonSet(["a", "b", "c"])], pods, now: at(11) });
    assert.deepEqual(statusOf(written.actions)?.nodes, { desired: 3, pulled: 1, failed: 0, skipped: 0 });
  });

  it("writes progress only when another quarter of the nodes pulled, so long prepulls cost no more writes", () => {
    const names = Array.from({ length: 20 }, (_, i) => `n${i}`);
    const nodes = names.map((n) => node(n));
    const known = pulling({ updatedAt: at(9).toISOString(), nodes: { desired: 20, pulled: 2, failed: 0, skipped: 0 } });
    const pulled = (count: number) => names.map((n, i) => pod(n, i < count ? "ready" : "pulling"));
    const quiet = run({ deployment: deployment({ status: known }), daemonSets: [daemonSet(names)], nodes, pods: pulled(3), now: at(20) }); // 3/20: still the first quarter after 2/20
    assert.deepEqual(kinds(quiet.actions), []);
    assert.ok((quiet.requeueAfterMs ?? 0) > 2000, "no write is due 2 s after the last one");
    // No heartbeat any more (it wrote the same counts after 30 s): a stalled prepull writes nothing.
    const later = run({ deployment: deployment({ status: known }), daemonSets: [daemonSet(names)], nodes, pods: pulled(4), now: at(39) });
    assert.deepEqual(kinds(later.actions), [], "4/20: the next tenth, but the same quarter");
    const stepped = run({ deployment: deployment({ status: known }), daemonSets: [daemonSet(names)], nodes, pods: pulled(5), now: at(12) }); // 5/20 = 1/4
    assert.deepEqual(statusOf(stepped.actions)?.nodes, { desired: 20, pulled: 5, failed: 0, skipped: 0 });
  });

  it("writes a new failure at once within the quarter, but not a failure count that went down", () => {
    const names = Array.from({ length: 20 }, (_, i) => `n${i}`);
    const nodes = names.map((n) => node(n));
    const transient = { waiting: "ImagePullBackOff", message: "Back-off pulling image" };
    const pods = names.map((n, i) => pod(n, i < 2 ? "ready" : i === 2 ? transient : "pulling"));
    const none = pulling({ updatedAt: at(9).toISOString(), nodes: { desired: 20, pulled: 2, failed: 0, skipped: 0 } });
    const failed = run({ deployment: deployment({ status: none }), daemonSets: [daemonSet(names)], nodes, pods, now: at(12) });
    assert.deepEqual(statusOf(failed.actions)?.nodes, { desired: 20, pulled: 2, failed: 1, skipped: 0 });
    const one = pulling({ updatedAt: at(9).toISOString(), nodes: { desired: 20, pulled: 2, failed: 1, skipped: 0 } });
    const healed = run({ deployment: deployment({ status: one }), daemonSets: [daemonSet(names)], nodes, pods: names.map((n, i) => pod(n, i < 2 ? "ready" : "pulling")), now: at(12) });
    assert.deepEqual(kinds(healed.actions), []);
  });

  it("writes no progress while the DaemonSet controller has not reported on the current generation", () => {
    const recent = pulling({ updatedAt: at(1).toISOString() });
    const pods = [pod("a", "ready"), pod("b", "ready"), pod("c", "pulling")];
    const settling = run({ deployment: deployment({ status: recent }), daemonSets: [daemonSet(["a", "b", "c"], { settled: false })], pods, now: at(10) });
    assert.deepEqual(kinds(settling.actions), []);
    const settled = run({ deployment: deployment({ status: recent }), daemonSets: [daemonSet(["a", "b", "c"])], pods, now: at(10) });
    assert.deepEqual(statusOf(settled.actions)?.nodes, { desired: 3, pulled: 2, failed: 0, skipped: 0 });
  });
});

describe("reconcile: holds, supersede and cleanup", () => {
  it("respects a user's resume: only the marker goes", () => {
    const { actions } = run({ deployment: deployment({ status: pulling(), paused: false }), daemonSets: [daemonSet(["a", "b", "c"])], now: at(10) });
    assert.deepEqual(kinds(actions), ["forget-hold", "event:HoldReleased"]);
  });

  it("never touches a pause that is not its own", () => {
    const { actions } = run({ deployment: deployment({ status: pulling({ phase: "Succeeded", finishedAt: at(5).toISOString() }), heldBy: null, paused: true }), daemonSets: [daemonSet(["a"])], now: at(10) });
    assert.ok(!kinds(actions).some((k) => k.includes("hold")), kinds(actions).join());
  });

  it("releases when the hold annotation is removed", () => {
    const d = deployment({ status: pulling() });
    delete d.metadata!.annotations!["kube-prepull.io/hold"];
    const { actions } = run({ deployment: d, daemonSets: [daemonSet(["a", "b", "c"])], now: at(10) });
    const release = actions.find((a) => a.kind === "release-hold") as Extract<Action, { kind: "release-hold" }>;
    assert.equal(release.reason, "the hold annotation was removed");
  });

  it("supersedes an older prepull: deletes its DaemonSet and counts it", () => {
    const old = daemonSet(["a"]);
    old.metadata!.name = "prepull-web-0000000000";
    const previous = pulling({ request: "req-0", daemonSet: "prepull-web-0000000000" });
    const { actions } = run({ deployment: deployment({ status: previous }), daemonSets: [old] });
    // The create comes first, so that a refused one announces nothing (a retry would announce it
    // again); deletes come last, after any hold release.
    assert.deepEqual(kinds(actions), ["create-daemonset", "count", "event:PrepullSuperseded", "write-status", "event:PrepullStarted", "delete-daemonset"]);
    assert.deepEqual(actions.find((a) => a.kind === "count"), { kind: "count", result: "Superseded", seconds: 1, pulled: 0, failed: 0 });
    const event = actions.find((a) => a.kind === "event" && a.reason === "PrepullSuperseded") as Extract<Action, { kind: "event" }>;
    assert.equal(event.message, "prepull of registry.example/app:v2 (0/3 nodes pulled) superseded by a newer image change: registry.example/app:v2");
  });

  it("keeps the status on the newest request, with the superseded prepulls counted and the last one named", () => {
    const previous = pulling({ request: "req-0", images: ["registry.example/app:v1"], daemonSet: "prepull-web-0000000000", superseded: { count: 2, request: "req-00", images: ["x:0"], at: at(0).toISOString() } });
    const status = statusOf(run({ deployment: deployment({ status: previous }) }).actions);
    assert.equal(status?.phase, "Pulling", "never a Superseded phase: the status is the new request's");
    assert.equal(status?.request, REQUEST.id);
    assert.deepEqual(status?.superseded, { count: 3, request: "req-0", images: ["registry.example/app:v1"], at: at(2).toISOString() });
    // A finished prepull is not superseded: the count is carried over as it was, and no Event.
    const finished = pulling({ request: "req-0", phase: "Succeeded", superseded: previous.superseded! });
    const after = run({ deployment: deployment({ status: finished }) });
    assert.deepEqual(statusOf(after.actions)?.superseded, previous.superseded);
    assert.ok(!kinds(after.actions).includes("event:PrepullSuperseded"));
    // Carried by the new request's own writes too (queued, then started).
    const queued = run({ deployment: deployment({ status: previous }), mayStart: false });
    const queuedStatus = statusOf(queued.actions)!;
    assert.equal(queuedStatus.queued, true);
    const started = run({ deployment: deployment({ status: queuedStatus }), now: at(5) });
    assert.deepEqual(statusOf(started.actions)?.superseded, queuedStatus.superseded);
  });

  it("deletes the DaemonSet once the rollout completed, or after the TTL", () => {
    const done = pulling({ phase: "Succeeded", finishedAt: at(10).toISOString() });
    const complete = run({ deployment: deployment({ status: done, heldBy: null, paused: false, rolledOut: true }), daemonSets: [daemonSet(["a"])], now: at(20) });
    assert.deepEqual(kinds(complete.actions), ["delete-daemonset"]);
    const rolling = run({ deployment: deployment({ status: done, heldBy: null, paused: false }), daemonSets: [daemonSet(["a"])], now: at(20) });
    assert.deepEqual(kinds(rolling.actions), []);
    assert.equal(rolling.requeueAfterMs, 890_000);
    const expired = run({ deployment: deployment({ status: done, heldBy: null, paused: false }), daemonSets: [daemonSet(["a"])], now: at(910) });
    assert.deepEqual(kinds(expired.actions), ["delete-daemonset"]);
  });

  it("is idempotent: the same inputs ask for the same actions", () => {
    const input = { deployment: deployment({ status: pulling() }), daemonSets: [daemonSet(["a", "b", "c"])], pods: ["a", "b", "c"].map((n) => pod(n, "ready")), now: at(10) };
    assert.deepEqual(run(input), run(input));
  });
});

describe("start order under the cluster-wide cap", () => {
  const waiting = (requestedAt: string) => prepullState({ ...REQUEST, requestedAt }, undefined);
  it("lets the oldest waiting prepulls start while slots are free", () => {
    const order = new StartOrder(2);
    order.set("ns/running", prepullState(REQUEST, pulling()));
    order.set("ns/late", waiting(at(30).toISOString()));
    order.set("ns/early", waiting(at(10).toISOString()));
    order.set("ns/done", prepullState(REQUEST, pulling({ phase: "Succeeded" })));
    assert.deepEqual(order.pulling(), ["ns/running"]);
    assert.deepEqual(order.queued(), ["ns/early", "ns/late"]);
    assert.deepEqual(order.startable(), ["ns/early"]);
    assert.equal(order.mayStart("ns/early"), true);
    assert.equal(order.mayStart("ns/late"), false);
    assert.equal(order.mayStart("ns/running"), true);
    order.set("ns/running", undefined);
    assert.deepEqual(order.startable(), ["ns/early", "ns/late"]);
  });
  it("wakes a startable prepull once, not on every later event while it stays startable", () => {
    const order = new StartOrder(1);
    order.set("ns/a", waiting(at(10).toISOString()));
    assert.deepEqual(order.newlyStartable(), ["ns/a"]);
    assert.deepEqual(order.newlyStartable(), [], "still startable (say, its create keeps failing): left to its backoff");
    order.set("ns/b", prepullState(REQUEST, pulling()));
    assert.deepEqual(order.newlyStartable(), [], "the slot is taken");
    order.set("ns/b", undefined);
    assert.deepEqual(order.newlyStartable(), ["ns/a"], "startable again once a slot freed");
  });
  it("treats a queued status as waiting and a finished one as neither", () => {
    assert.deepEqual(prepullState(REQUEST, pulling({ queued: true })), { kind: "waiting", requestedAt: REQUEST.requestedAt });
    assert.equal(prepullState(REQUEST, pulling({ phase: "TimedOut" })), undefined);
    assert.equal(prepullState(undefined, pulling()), undefined);
  });
});

describe("reconcile on the controller's slimmed cache shape (cache-shapes.ts workloadForCache)", () => {
  /** A Deployment as users write them: a full pod template and kubectl's last-applied copy. */
  function rich(): k8s.V1Deployment {
    const d = deployment({ status: pulling() });
    d.metadata!.annotations!["kubectl.kubernetes.io/last-applied-configuration"] = JSON.stringify({ big: "x".repeat(5000) });
    d.metadata!.managedFields = [{ manager: "kubectl", operation: "Update" }];
    d.spec!.template = {
      metadata: { labels: { app: "web" }, annotations: { "prometheus.io/scrape": "true" } },
      spec: {
        serviceAccountName: "web",
        imagePullSecrets: [{ name: "regcred" }],
        nodeSelector: { pool: "a" },
        tolerations: [{ key: "dedicated", operator: "Equal", value: "web", effect: "NoSchedule" }],
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "In", values: ["z1"] }] }] } }, podAntiAffinity: {} },
        initContainers: [{ name: "migrate", image: "registry.example/migrate:v2", env: [{ name: "A", value: "1" }] }],
        containers: [{ name: "app", image: "registry.example/app:v2", imagePullPolicy: "Always", env: [{ name: "B", value: "2" }], resources: { limits: { memory: "1Gi" } } }],
        volumes: [{ name: "data", emptyDir: {} }],
      },
    };
    return d;
  }
  const nodes = ["a", "b", "c"].map((n) => {
    const x = node(n);
    x.metadata!.labels = { ...x.metadata!.labels, pool: "a", zone: "z1" };
    return x;
  });
  const slim = workloadForCache<k8s.V1Deployment>((d) => d.spec?.template);

  it("keeps only images, pull policies, placement, ServiceAccount and pull secrets of the template, and drops last-applied", () => {
    const d = slim(rich());
    assert.equal(d.metadata?.annotations?.["kubectl.kubernetes.io/last-applied-configuration"], undefined);
    assert.equal(d.metadata?.managedFields, undefined);
    assert.equal(d.metadata?.annotations?.["kube-prepull.io/request"], encodeRequest(REQUEST));
    assert.deepEqual(d.spec?.template.spec?.containers, [{ name: "app", image: "registry.example/app:v2", imagePullPolicy: "Always" }]);
    assert.equal(d.spec?.template.spec?.volumes, undefined);
    assert.equal(d.spec?.template.metadata, undefined);
  });

  it("asks for the same actions as on the whole object, at the start and while pulling", () => {
    for (const status of [undefined, pulling()]) {
      const full = rich();
      if (!status) delete full.metadata!.annotations!["kube-prepull.io/status"];
      const whole = run({ deployment: full, nodes, now: at(10) });
      const slimmed = run({ deployment: slim(structuredClone(full)), nodes, now: at(10) });
      assert.ok(whole.actions.length > 0);
      assert.deepEqual(slimmed, whole);
    }
  });
});

// Counterexamples of the property "performing reconcile's actions and reconciling again asks for
// nothing new" (reconcile.properties.test.ts), kept as regressions.
describe("reconcile: counterexamples of its properties", () => {
  it("creates no DaemonSet for a prepull that times out in the same reconcile", () => {
    // Its DaemonSet was deleted by someone (or never seen) and the deadline has passed.
    const { actions } = run({ deployment: deployment({ status: pulling() }), daemonSets: [], now: at(1000) });
    assert.deepEqual(kinds(actions), ["write-status", "count", "event:PrepullTimedOut", "release-hold", "event:HoldReleased"]);
    assert.equal(statusOf(actions)?.phase, "TimedOut");
  });

  it("deletes the DaemonSet of a finished prepull once the rollout its user resumed has completed, with the held-by it drops", () => {
    const finished = pulling({ phase: "Succeeded", finishedAt: at(10).toISOString(), nodes: { desired: 3, pulled: 3, failed: 0, skipped: 0 } });
    const { actions } = run({ deployment: deployment({ status: finished, paused: false, rolledOut: true }), daemonSets: [daemonSet(["a", "b", "c"])], now: at(20) });
    assert.deepEqual(kinds(actions), ["forget-hold", "event:HoldReleased", "delete-daemonset"]);
    assert.equal((actions[2] as Extract<Action, { kind: "delete-daemonset" }>).reason, "rollout complete");
  });
});
