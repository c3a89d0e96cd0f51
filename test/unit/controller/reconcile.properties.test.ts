// Properties of the controller's decision (fast-check): reconcile is level-triggered, so performing
// its actions on what it observed and reconciling again at the same moment asks for nothing new.
// The states are made the way the cluster makes them: the workload as the mutating webhook patched
// it (every kind), then a status, the user's own changes, prepull DaemonSets in any stage, nodes.
// The actions' effect is a small model of the apiserver (below), nothing more: a create adds the
// DaemonSet (no status yet), a delete removes it, a wave replaces its affinity (a new generation),
// a status write sets the annotation, a release applies the conditional JSON patch with
// fast-json-patch (its `test` failing leaves the object as it is) and a spec change bumps the
// workload's generation; Events and counts change nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import jsonpatch, { type Operation } from "fast-json-patch";
import type * as k8s from "@kubernetes/client-node";
import { decideMutation } from "../../../src/admission/mutation.js";
import { reconcile, type Action, type ControllerConfig, type Observed } from "../../../src/controller/reconcile.js";
import { prepullDaemonSetName, renderPrepullDaemonSet } from "../../../src/prepull/daemonset.js";
import type { PrepullStatus } from "../../../src/prepull/progress.js";
import type { PrepullRequest } from "../../../src/prepull/request.js";
import { WORKLOADS, workloadOfKind } from "../../../src/workloads/kinds.js";
import { decodeHeldBy, type Workload, type WorkloadObject } from "../../../src/workloads/workload.js";
import { applyPatch } from "../../support/apply-patch.js";

const T0 = Date.parse("2026-11-22T10:00:00Z");
const CONFIG: ControllerConfig = {
  pod: { helperImage: "ghcr.io/kube-prepull/helper:v0.1.0", extraLabels: {}, extraAnnotations: {} },
  cleanupTtlSeconds: 900,
  schedulingGraceSeconds: 30,
  maxConcurrentPrepulls: 20,
};
const HELD_BY = "/metadata/annotations/kube-prepull.io~1held-by";
const STATUS = "kube-prepull.io/status";

interface State {
  object: WorkloadObject;
  daemonSets: k8s.V1DaemonSet[];
}

// ---------------------------------------------------------------- the model of the apiserver

const specOf = (object: WorkloadObject): string => JSON.stringify(object.spec);

function endHold(object: WorkloadObject, heldBy: string, release: Operation[]): WorkloadObject {
  try {
    const next = jsonpatch.applyPatch(object, [{ op: "test", path: HELD_BY, value: heldBy }, ...release, { op: "remove", path: HELD_BY }], true, false).newDocument;
    if (specOf(next) !== specOf(object)) next.metadata = { ...next.metadata, generation: (object.metadata?.generation ?? 1) + 1 };
    return next;
  } catch {
    return object; // 422: held-by changed
  }
}

function perform(state: State, action: Action, now: Date): State {
  const { object, daemonSets } = state;
  switch (action.kind) {
    case "create-daemonset": {
      if (daemonSets.some((ds) => ds.metadata?.name === action.daemonSet.metadata?.name)) return state; // 409
      const created = { ...structuredClone(action.daemonSet), metadata: { ...action.daemonSet.metadata, generation: 1, creationTimestamp: now } };
      return { object, daemonSets: [...daemonSets, created] };
    }
    case "delete-daemonset":
      return { object, daemonSets: daemonSets.filter((ds) => ds.metadata?.name !== action.name) };
    case "set-daemonset-nodes":
      return {
        object,
        daemonSets: daemonSets.map((ds) => {
          if (ds.metadata?.name !== action.name) return ds;
          const next = structuredClone(ds);
          next.spec!.template.spec!.affinity = action.affinity;
          next.metadata!.generation = (ds.metadata?.generation ?? 1) + 1;
          return next;
        }),
      };
    case "write-status":
      return { object: { ...object, metadata: { ...object.metadata, annotations: { ...object.metadata?.annotations, [STATUS]: JSON.stringify(action.status) } } }, daemonSets };
    case "release-hold":
      return { object: endHold(object, action.heldBy, action.release as Operation[]), daemonSets };
    case "forget-hold":
      return { object: endHold(object, action.heldBy, []), daemonSets };
    default:
      return state; // events and counts
  }
}

// ---------------------------------------------------------------- the states

const IMAGES = ["registry.example.com/app:v2", "nginx:1.27", "redis:7", "ghcr.io/team/sidecar:2"];

const kindSpec = (workload: Workload): Record<string, unknown> => {
  switch (workload.kind) {
    case "Deployment": return { replicas: 2 };
    case "StatefulSet": return { replicas: 3, updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 1 } } };
    case "DaemonSet": return { updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } } };
    case "Job": return { parallelism: 2 };
    default: return {};
  }
};

function workloadObject(workload: Workload, images: string[], annotations: Record<string, string>): WorkloadObject {
  const template = { metadata: { labels: { app: "shop" } }, spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) } };
  return {
    apiVersion: workload.group ? `${workload.group}/v1` : "v1",
    kind: workload.kind,
    metadata: { name: "shop", namespace: "shop", uid: "uid-shop", generation: 1, annotations },
    spec: workload.kind === "CronJob" ? { schedule: "* * * * *", jobTemplate: { spec: { template } } } : { ...kindSpec(workload), template },
  };
}

/** A status its kind's rollout check reads as complete (used only when nothing holds it). */
function completeStatus(workload: Workload, object: WorkloadObject): object {
  const generation = object.metadata?.generation ?? 1;
  switch (workload.kind) {
    case "Deployment": return { observedGeneration: generation, replicas: 2, updatedReplicas: 2, availableReplicas: 2 };
    case "StatefulSet": return { observedGeneration: generation, replicas: 3, readyReplicas: 3, updatedReplicas: 3, currentRevision: "a", updateRevision: "a" };
    case "DaemonSet": return { observedGeneration: generation, desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 2 };
    case "Job": return { ready: 2 };
    default: return {};
  }
}

const scenario = fc.record({
  kind: fc.constantFrom(...WORKLOADS.map((w) => w.kind)),
  images: fc.uniqueArray(fc.constantFrom(...IMAGES), { minLength: 1, maxLength: 3 }),
  hold: fc.boolean(),
  maxParallel: fc.constantFrom(undefined, "1", "50%"),
  status: fc.constantFrom("none", "pulling", "queued", "succeeded", "failed", "other-pulling", "other-done"),
  userResumed: fc.boolean(),
  holdRemoved: fc.boolean(),
  rolledOut: fc.boolean(),
  currentDaemonSet: fc.constantFrom("none", "created", "settled"),
  readyFraction: fc.constantFrom(0, 0.5, 1),
  oldDaemonSet: fc.boolean(),
  nodes: fc.array(fc.record({ ready: fc.boolean(), hasImages: fc.boolean() }), { minLength: 0, maxLength: 4 }),
  mayStart: fc.boolean(),
  elapsedSeconds: fc.constantFrom(0, 5, 40, 599, 601, 1000, 1600),
});
type Scenario = (typeof scenario extends fc.Arbitrary<infer T> ? T : never) & { workload: Workload };

const withWorkload = (s: Omit<Scenario, "workload">): Scenario => ({ ...s, workload: workloadOfKind(s.kind === "Job" || s.kind === "CronJob" ? "batch" : "apps", s.kind)! });

/** The workload as the mutating webhook left it (undefined: the webhook asked for no prepull). */
function admitted(s: Scenario): { object: WorkloadObject; request: PrepullRequest } | undefined {
  const annotations: Record<string, string> = { ...(s.hold ? { "kube-prepull.io/hold": "true" } : {}), ...(s.maxParallel ? { "kube-prepull.io/max-parallel": s.maxParallel } : {}) };
  const object = workloadObject(s.workload, s.images, annotations);
  // A Job prepulls on CREATE only; StatefulSets and DaemonSets hold updates only.
  const operation = s.workload.kind === "Job" ? "CREATE" : "UPDATE";
  const old = workloadObject(s.workload, ["registry.example.com/app:v1"], annotations);
  const kind = { group: s.workload.group, version: "v1", kind: s.workload.kind };
  const decision = decideMutation({ uid: "u", kind, operation, name: "shop", namespace: "shop", object, ...(operation === "UPDATE" ? { oldObject: old } : {}) }, new Date(T0));
  return decision.kind === "prepull" ? { object: applyPatch(object, decision.patch), request: decision.request } : undefined;
}

function statusOf(s: Scenario, request: PrepullRequest, daemonSet: string, desired: number): PrepullStatus | undefined {
  const started = new Date(T0 + 1000).toISOString();
  const base = { images: request.images, startedAt: started, request: request.id, daemonSet, nodes: { desired, pulled: 0, failed: 0, skipped: 0 } };
  switch (s.status) {
    case "none": return undefined;
    case "pulling": return { ...base, phase: "Pulling" };
    case "queued": return { ...base, phase: "Pulling", queued: true, message: "queued: the cluster-wide cap on concurrent prepulls is reached" };
    case "succeeded": return { ...base, phase: "Succeeded", nodes: { ...base.nodes, pulled: desired }, finishedAt: started, message: "pulled" };
    case "failed": return { ...base, phase: "Failed", finishedAt: started, message: "ErrImagePull on 1 node" };
    case "other-pulling": return { ...base, request: "other0000000", daemonSet: "prepull-other", phase: "Pulling" };
    default: return { ...base, request: "other0000000", daemonSet: "prepull-other", phase: "Succeeded", finishedAt: started };
  }
}

function daemonSetsOf(s: Scenario, object: WorkloadObject, request: PrepullRequest, nodes: string[]): k8s.V1DaemonSet[] {
  const render = (r: PrepullRequest, nodeNames: string[] | undefined): k8s.V1DaemonSet => {
    const ds = renderPrepullDaemonSet({ workload: s.workload, object, request: r, nodes: "eligible", nodeNames, config: CONFIG.pod });
    ds.metadata = { ...ds.metadata, generation: 1, creationTimestamp: new Date(T0 + 1000) };
    return ds;
  };
  const out: k8s.V1DaemonSet[] = [];
  // The controller writes the status in the reconcile that creates the DaemonSet: a DaemonSet of the
  // current request without its status is a crash between the two, converging in two reconciles
  // (the start phase does not read a DaemonSet it believes it is creating); left out.
  const started = s.status === "pulling" || s.status === "succeeded" || s.status === "failed";
  if (s.currentDaemonSet !== "none" && started) {
    const ds = render(request, s.maxParallel === "1" && nodes.length > 0 ? nodes.slice(0, 1) : undefined);
    if (s.currentDaemonSet === "settled") {
      const desired = s.maxParallel === "1" ? Math.min(1, nodes.length) : nodes.length;
      const ready = Math.floor(desired * s.readyFraction);
      ds.status = { observedGeneration: 1, desiredNumberScheduled: desired, currentNumberScheduled: desired, updatedNumberScheduled: desired, numberReady: ready, numberMisscheduled: 0 };
    }
    out.push(ds);
  }
  if (s.oldDaemonSet) out.push(render({ ...request, id: "old000000000", images: ["registry.example.com/app:v1"] }, undefined));
  return out;
}

function node(name: string, ready: boolean, images: string[]): k8s.V1Node {
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" } },
    spec: {},
    status: { conditions: [{ type: "Ready", status: ready ? "True" : "False" }], images: images.length > 0 ? [{ names: images, sizeBytes: 1 }] : [] },
  };
}

/** What the controller observes in the scenario, or undefined when it has no prepull. */
function observedOf(s: Scenario): Observed | undefined {
  const start = admitted(s);
  if (!start) return undefined;
  let object = start.object;
  const annotations = { ...object.metadata!.annotations };
  const heldBy = decodeHeldBy(annotations["kube-prepull.io/held-by"]);
  if (s.holdRemoved) delete annotations["kube-prepull.io/hold"];
  const nodes = s.nodes.map((n, i) => node(`node-${i}`, n.ready, n.hasImages ? s.images : []));
  const currentName = prepullDaemonSetName("shop", start.request.images, s.workload);
  const status = statusOf(s, start.request, currentName, nodes.length);
  if (status) annotations[STATUS] = JSON.stringify(status);
  object = { ...object, metadata: { ...object.metadata, annotations } };
  // The user undid the hold themselves (resume, partition, strategy): held-by stays for the controller to see.
  if (s.userResumed && heldBy) {
    object = applyPatch(object, s.workload.release(object, heldBy));
    object.metadata = { ...object.metadata, generation: (object.metadata?.generation ?? 1) + 1 }; // a spec change
  }
  const held = heldBy !== undefined && s.workload.isHeld(object, heldBy);
  object = { ...object, status: s.rolledOut && !held ? completeStatus(s.workload, object) : {} };
  return {
    workload: s.workload,
    object,
    daemonSets: daemonSetsOf(s, object, start.request, nodes.map((n) => n.metadata!.name!)),
    pendingPods: new Map(),
    nodes,
    mayStart: s.mayStart,
    now: new Date(T0 + s.elapsedSeconds * 1000),
  };
}

describe("reconcile (properties, every kind)", () => {
  it("asks for nothing new once its actions are performed on what it observed", () => {
    let acted = 0;
    fc.assert(fc.property(scenario, (generated) => {
      const observed = observedOf(withWorkload(generated));
      if (!observed) return;
      const first = reconcile(observed, CONFIG);
      if (first.actions.length > 0) acted++;
      const after = first.actions.reduce((state, action) => perform(state, action, observed.now), { object: observed.object, daemonSets: observed.daemonSets });
      const second = reconcile({ ...observed, ...after }, CONFIG);
      assert.deepEqual(second.actions.map((a) => a.kind === "event" ? `event ${a.reason}: ${a.message}` : a.kind), [],
        `first: ${first.actions.map((a) => (a.kind === "event" ? `event ${a.reason}` : a.kind)).join(", ")}`);
    }), { numRuns: 3000 });
    assert.ok(acted > 1000, `only ${acted} scenarios asked for actions`);
  });
});
