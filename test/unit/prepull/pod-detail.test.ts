// When the controller looks at a prepull's pending pods: only when its DaemonSet's counts stall,
// then with backoff, and page by page only while pages show problems.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import {
  DETAIL_PAGE_SIZE, MAX_DETAIL_INTERVAL_MS, STALL_MS, detailDue, observeStatus, statusKey, unreadyPods, wantsNextPage, type DetailState,
} from "../../../src/prepull/pod-detail.js";

type Counts = Partial<Pick<k8s.V1DaemonSetStatus, "desiredNumberScheduled" | "currentNumberScheduled" | "numberReady" | "numberMisscheduled" | "updatedNumberScheduled" | "observedGeneration">>;

function daemonSet(counts: Counts = {}, generation = 1): k8s.V1DaemonSet {
  return {
    metadata: { name: "ds", namespace: "team", generation },
    status: { observedGeneration: 1, desiredNumberScheduled: 4, currentNumberScheduled: 4, numberReady: 2, numberMisscheduled: 0, updatedNumberScheduled: 4, ...counts },
  };
}

const pod = (status: k8s.V1PodStatus): k8s.V1Pod => ({ metadata: { name: "p" }, spec: { nodeName: "n", containers: [] }, status: { phase: "Pending", ...status } });
const pull = (state: k8s.V1ContainerState): k8s.V1ContainerStatus => ({ name: "pull-0", image: "registry.example/app:v2", imageID: "", ready: false, restartCount: 0, state });
const PULLING = pod({ conditions: [{ type: "PodScheduled", status: "True" }], initContainerStatuses: [pull({ running: {} })] });

describe("pod detail: the DaemonSet status a detail belongs to", () => {
  it("keys on the generation and every count, so any pod change gives another key", () => {
    const key = statusKey(daemonSet());
    assert.equal(statusKey(daemonSet()), key, "the same status, the same key");
    const changes: Array<[string, k8s.V1DaemonSet]> = [
      ["a pod got Ready", daemonSet({ numberReady: 3 })],
      ["a pod was created", daemonSet({ currentNumberScheduled: 5 })],
      ["another node is wanted", daemonSet({ desiredNumberScheduled: 5 })],
      ["a pod is misscheduled", daemonSet({ numberMisscheduled: 1 })],
      ["a pod was updated", daemonSet({ updatedNumberScheduled: 3 })],
      ["the DaemonSet controller caught up", daemonSet({ observedGeneration: 2 }, 2)],
      ["the spec changed", daemonSet({}, 2)],
    ];
    for (const [what, ds] of changes) assert.notEqual(statusKey(ds), key, what);
  });

  it("keeps its state under the same key and starts afresh under another", () => {
    const first = observeStatus(undefined, "k1", 1000);
    assert.deepEqual(first, { key: "k1", since: 1000, fetches: 0 });
    const fetched: DetailState = { ...first, fetches: 2, lastFetchAt: 9000, pods: [PULLING] };
    assert.equal(observeStatus(fetched, "k1", 20_000), fetched, "same status: since, fetches and pods stay");
    assert.deepEqual(observeStatus(fetched, "k2", 20_000), { key: "k2", since: 20_000, fetches: 0 }, "the pods are stale under another status");
  });

  it("counts the pods the DaemonSet wants that are not Ready", () => {
    assert.equal(unreadyPods(daemonSet({ desiredNumberScheduled: 4, numberReady: 1 })), 3);
    assert.equal(unreadyPods(daemonSet({ desiredNumberScheduled: 4, numberReady: 5 })), 0);
  });
});

describe("pod detail: when a fetch is due", () => {
  const since = 1000;
  const fresh: DetailState = { key: "k", since, fetches: 0 };

  it("asks for nothing while the DaemonSet controller has not reported, or every wanted pod is Ready", () => {
    assert.deepEqual(detailDue(fresh, daemonSet({ observedGeneration: 1 }, 2), since + 60_000), { fetchNow: false });
    assert.deepEqual(detailDue(fresh, daemonSet({ numberReady: 4 }), since + 60_000), { fetchNow: false });
  });

  it(`is due once the counts stood still for ${STALL_MS} ms, and says when to look again before that`, () => {
    assert.deepEqual(detailDue(fresh, daemonSet(), since), { fetchNow: false, recheckInMs: STALL_MS });
    assert.deepEqual(detailDue(fresh, daemonSet(), since + STALL_MS - 1), { fetchNow: false, recheckInMs: 1 });
    assert.deepEqual(detailDue(fresh, daemonSet(), since + STALL_MS), { fetchNow: true });
    assert.deepEqual(detailDue(fresh, daemonSet(), since + STALL_MS + 7000), { fetchNow: true });
  });

  it("backs off from the last fetch while the counts stay stalled: 10 s, 20 s, then every 30 s", () => {
    assert.equal(STALL_MS, 5000);
    assert.equal(MAX_DETAIL_INTERVAL_MS, 30_000);
    const after = (fetches: number, lastFetchAt: number) => ({ ...fresh, fetches, lastFetchAt });
    const waits: number[] = [];
    for (const fetches of [1, 2, 3, 4, 8]) {
      const lastFetchAt = 100_000;
      const due = detailDue(after(fetches, lastFetchAt), daemonSet(), lastFetchAt);
      assert.equal(due.fetchNow, false);
      waits.push(due.recheckInMs!);
      assert.deepEqual(detailDue(after(fetches, lastFetchAt), daemonSet(), lastFetchAt + due.recheckInMs! - 1), { fetchNow: false, recheckInMs: 1 });
      assert.deepEqual(detailDue(after(fetches, lastFetchAt), daemonSet(), lastFetchAt + due.recheckInMs!), { fetchNow: true });
    }
    assert.deepEqual(waits, [10_000, 20_000, 30_000, 30_000, 30_000]);
  });
});

describe("pod detail: paging", () => {
  it("pages by a sample", () => {
    assert.ok(DETAIL_PAGE_SIZE > 0 && DETAIL_PAGE_SIZE <= 500);
  });

  it("wants the next page when a pod of this one failed to pull or cannot be scheduled, not for one not reported on yet", () => {
    const failed = pod({ conditions: [{ type: "PodScheduled", status: "True" }], initContainerStatuses: [pull({ waiting: { reason: "ErrImagePull", message: "rpc error: not found" } })] });
    const unschedulable = pod({ conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable" }] });
    const unreported = pod({ conditions: [{ type: "PodScheduled", status: "True" }] });
    assert.equal(wantsNextPage([PULLING, failed]), true, "pull failure");
    assert.equal(wantsNextPage([unschedulable, PULLING]), true, "unschedulable");
    assert.equal(wantsNextPage([unreported]), false, "no container statuses yet: the kubelet is starting it");
  });

  it("does not when every pod of the page is pulling normally", () => {
    const waitingForPull = pod({ conditions: [{ type: "PodScheduled", status: "True" }], initContainerStatuses: [pull({ waiting: { reason: "PodInitializing" } })] });
    assert.equal(wantsNextPage([PULLING]), false, "init container running");
    assert.equal(wantsNextPage([PULLING, waitingForPull]), false, "PodInitializing is no failure");
    assert.equal(wantsNextPage([]), false, "an empty page");
  });
});
