// Listing a prepull's pending pods on a stall, against a fake API (recording its calls) and a clock
// the test moves.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import { PendingPods, type PendingPodsDeps } from "../../../src/kube/pending-pods.js";
import { LABELS } from "../../../src/prepull/annotations.js";
import { DETAIL_PAGE_SIZE, STALL_MS } from "../../../src/prepull/pod-detail.js";

type ListRequest = Parameters<k8s.CoreV1Api["listNamespacedPod"]>[0];

function daemonSet(numberReady = 1): k8s.V1DaemonSet {
  return {
    metadata: { name: "prepull-web-abc", namespace: "team", generation: 1 },
    status: { observedGeneration: 1, desiredNumberScheduled: 3, currentNumberScheduled: 3, numberReady, numberMisscheduled: 0, updatedNumberScheduled: 3 },
  };
}

const pullStatus = (state: k8s.V1ContainerState): k8s.V1ContainerStatus => ({ name: "pull-0", image: "registry.example/app:v2", imageID: "", ready: false, restartCount: 0, state });
const pod = (node: string, state: "pulling" | "failed"): k8s.V1Pod => ({
  metadata: { name: `prepull-web-abc-${node}`, namespace: "team", labels: { [LABELS.prepull]: "prepull-web-abc" }, annotations: { big: "x".repeat(100) } },
  spec: { nodeName: node, containers: [{ name: "pause", image: "helper" }] },
  status: {
    phase: "Pending",
    conditions: [{ type: "PodScheduled", status: "True" }, { type: "Ready", status: "False" }],
    initContainerStatuses: [pullStatus(state === "pulling" ? { running: {} } : { waiting: { reason: "ImagePullBackOff", message: "Back-off pulling image" } })],
  },
});

/** An API whose list answers with the next of `pages` (a page, or an error to reject with), recording each request. */
function fakeApi(pages: Array<{ items: k8s.V1Pod[]; continue?: string } | Error>) {
  const requests: ListRequest[] = [];
  const core = {
    listNamespacedPod: (request: ListRequest): Promise<k8s.V1PodList> => {
      requests.push(request);
      const page = pages.shift() ?? { items: [] };
      if (page instanceof Error) return Promise.reject(page);
      return Promise.resolve({ items: page.items, metadata: page.continue ? { _continue: page.continue } : {} });
    },
  } as unknown as PendingPodsDeps["core"];
  return { core, requests };
}

function setup(pages: Array<{ items: k8s.V1Pod[]; continue?: string } | Error>) {
  let clock = 0;
  const api = fakeApi(pages);
  const fetched: string[] = [];
  const logged: string[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => void logged.push(line) });
  const pending = new PendingPods({ core: api.core, now: () => clock, fetched: (namespace, name) => void fetched.push(`${namespace}/${name}`), log });
  return { pending, requests: api.requests, fetched, logged, at: (ms: number) => void (clock = ms) };
}

/** Lets the fake API's answers and the fetch's continuations run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const names = (pods: k8s.V1Pod[] | undefined): string[] | undefined => pods?.map((p) => p.metadata!.name!);

describe("pending pods", () => {
  it("fetches nothing until the status stood still for 5 s, then one selected page, and hands the pods over once they arrive", async () => {
    const t = setup([{ items: [pod("b", "pulling"), pod("c", "pulling")] }]);
    t.at(1000);
    assert.deepEqual(t.pending.read(daemonSet()), { pods: undefined, recheckInMs: STALL_MS });
    t.at(1000 + STALL_MS - 1);
    assert.deepEqual(t.pending.read(daemonSet()), { pods: undefined, recheckInMs: 1 });
    await settle();
    assert.deepEqual(t.requests, []);
    t.at(1000 + STALL_MS);
    assert.equal(t.pending.read(daemonSet()).pods, undefined, "the list is under way");
    assert.equal(t.pending.read(daemonSet()).pods, undefined);
    assert.deepEqual(t.requests, [{ namespace: "team", labelSelector: "kube-prepull.io/prepull=prepull-web-abc", fieldSelector: "status.phase=Pending", limit: DETAIL_PAGE_SIZE }], "one list, however many reads");
    assert.deepEqual(t.fetched, []);
    await settle();
    assert.deepEqual(t.fetched, ["team/prepull-web-abc"]);
    const read = t.pending.read(daemonSet());
    assert.deepEqual(names(read.pods), ["prepull-web-abc-b", "prepull-web-abc-c"]);
    assert.equal(read.pods?.[0]?.metadata?.annotations, undefined, "slimmed as the caches slim pods");
    assert.equal(read.recheckInMs, 2 * STALL_MS, "the next list after twice the wait");
    assert.equal(t.requests.length, 1);
  });

  it("drops the pods once the status changes (a pod got Ready), and waits for the next stall", async () => {
    const t = setup([{ items: [pod("b", "pulling"), pod("c", "pulling")] }, { items: [pod("c", "pulling")] }]);
    t.pending.read(daemonSet(1));
    t.at(STALL_MS);
    t.pending.read(daemonSet(1));
    await settle();
    assert.equal(t.pending.read(daemonSet(1)).pods?.length, 2);
    t.at(STALL_MS + 100);
    assert.deepEqual(t.pending.read(daemonSet(2)), { pods: undefined, recheckInMs: STALL_MS });
    t.at(2 * STALL_MS + 100);
    t.pending.read(daemonSet(2));
    await settle();
    assert.deepEqual(names(t.pending.read(daemonSet(2)).pods), ["prepull-web-abc-c"]);
    assert.equal(t.requests.length, 2);
    assert.deepEqual(t.fetched, ["team/prepull-web-abc", "team/prepull-web-abc"]);
  });

  it("throws away a list that completes after the status moved on", async () => {
    const t = setup([{ items: [pod("b", "pulling")] }]);
    t.pending.read(daemonSet(1));
    t.at(STALL_MS);
    t.pending.read(daemonSet(1)); // starts the list
    t.pending.read(daemonSet(2)); // before it answers
    await settle();
    assert.deepEqual(t.fetched, []);
    assert.equal(t.pending.read(daemonSet(2)).pods, undefined);
  });

  it("reads the next pages only when the first one shows a problem, and then all of them", async () => {
    const fine = setup([{ items: [pod("b", "pulling")], continue: "page-2" }]);
    fine.pending.read(daemonSet());
    fine.at(STALL_MS);
    fine.pending.read(daemonSet());
    await settle();
    assert.equal(fine.requests.length, 1, "a page of pods pulling normally stands for the rest");
    assert.equal(fine.pending.read(daemonSet()).pods, undefined, "a sample is no complete list: not kept");
    assert.deepEqual(fine.fetched, []);

    const failing = setup([
      { items: [pod("b", "pulling"), pod("c", "failed")], continue: "page-2" },
      { items: [pod("d", "pulling")], continue: "page-3" },
      { items: [pod("e", "pulling")] },
    ]);
    failing.pending.read(daemonSet());
    failing.at(STALL_MS);
    failing.pending.read(daemonSet());
    await settle();
    assert.deepEqual(failing.requests.map((r) => r._continue), [undefined, "page-2", "page-3"], "a problem on page 1: every page");
    assert.deepEqual(failing.requests[1], { ...failing.requests[0], _continue: "page-2" });
    assert.deepEqual(names(failing.pending.read(daemonSet()).pods), ["prepull-web-abc-b", "prepull-web-abc-c", "prepull-web-abc-d", "prepull-web-abc-e"]);
    assert.deepEqual(failing.fetched, ["team/prepull-web-abc"], "once, with every page");

    const single = setup([{ items: [pod("b", "pulling")] }]);
    single.pending.read(daemonSet());
    single.at(STALL_MS);
    single.pending.read(daemonSet());
    await settle();
    assert.deepEqual(names(single.pending.read(daemonSet()).pods), ["prepull-web-abc-b"], "one page is every pending pod");
  });

  it("logs a rejected list, throws nothing, and lists again at the next due time", async () => {
    const t = setup([new Error("forbidden"), { items: [pod("b", "pulling")] }]);
    t.pending.read(daemonSet());
    t.at(STALL_MS);
    assert.doesNotThrow(() => t.pending.read(daemonSet()));
    await settle();
    assert.deepEqual(t.fetched, []);
    assert.equal(t.logged.length, 1);
    assert.match(t.logged[0]!, /listing pending prepull pods failed/);
    assert.match(t.logged[0]!, /forbidden/);
    assert.deepEqual(t.pending.read(daemonSet()), { pods: undefined, recheckInMs: 2 * STALL_MS });
    t.at(3 * STALL_MS);
    t.pending.read(daemonSet());
    await settle();
    assert.equal(t.requests.length, 2);
    assert.deepEqual(names(t.pending.read(daemonSet()).pods), ["prepull-web-abc-b"]);
  });

  it("lists nothing while every wanted pod is Ready, or the DaemonSet controller has not reported", async () => {
    const t = setup([]);
    const settling: k8s.V1DaemonSet = { ...daemonSet(), metadata: { ...daemonSet().metadata, generation: 2 } };
    for (const ds of [daemonSet(3), settling]) {
      t.at(0);
      assert.deepEqual(t.pending.read(ds), { pods: undefined });
      t.at(10 * STALL_MS);
      assert.deepEqual(t.pending.read(ds), { pods: undefined });
    }
    await settle();
    assert.deepEqual(t.requests, []);
  });

  it("forgets a DaemonSet: its pods go, and a stall counts from the next read", async () => {
    const t = setup([{ items: [pod("b", "pulling")] }]);
    t.pending.read(daemonSet());
    t.at(STALL_MS);
    t.pending.read(daemonSet());
    await settle();
    assert.equal(t.pending.read(daemonSet()).pods?.length, 1);
    t.pending.forget("team", "prepull-web-abc");
    t.at(STALL_MS + 500);
    assert.deepEqual(t.pending.read(daemonSet()), { pods: undefined, recheckInMs: STALL_MS });
    assert.equal(t.requests.length, 1);
  });
});
