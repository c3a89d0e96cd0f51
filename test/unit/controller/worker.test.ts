// The controller loop against fakes of its ports: caches in memory, a recording queue, an executor
// that records (or fails) the actions it is given. The decisions are reconcile's own (not faked).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import { KEEP_WARM_KEY } from "../../../src/controller/caches.js";
import type { Perform } from "../../../src/controller/executor.js";
import type { Action, ControllerConfig } from "../../../src/controller/reconcile.js";
import { WorkQueue, type QueueClock } from "../../../src/controller/work-queue.js";
import { OWN_WRITE_TIMEOUT_MS } from "../../../src/controller/own-writes.js";
import { createWorker, DEADLINE_SLACK_MS, type WorkerCaches, type WorkerQueue } from "../../../src/controller/worker.js";
import type { PendingPodsRead } from "../../../src/kube/pending-pods.js";
import { prepullDaemonSetName, renderPrepullDaemonSet } from "../../../src/prepull/daemonset.js";
import type { PrepullStatus } from "../../../src/prepull/progress.js";
import { encodeRequest, type PrepullRequest } from "../../../src/prepull/request.js";
import { deploymentWorkload } from "../../../src/workloads/deployment.js";
import { workloadKey } from "../../../src/workloads/workload.js";

const NOW = new Date("2026-12-02T10:00:00Z");
const CONFIG: ControllerConfig = {
  pod: { helperImage: "ghcr.io/kube-prepull/helper:v0.1.0", extraLabels: {}, extraAnnotations: {} },
  cleanupTtlSeconds: 900,
  schedulingGraceSeconds: 30,
  maxConcurrentPrepulls: 20,
};
const REQUEST: PrepullRequest = { id: "req-1", images: ["registry.example/app:v2"], requestedAt: NOW.toISOString(), hold: true };
const KEY = workloadKey("Deployment", "team", "web");

function deployment(annotations: Record<string, string>): k8s.V1Deployment {
  return {
    metadata: { name: "web", namespace: "team", uid: "uid-web", generation: 2, annotations },
    spec: {
      replicas: 1,
      paused: true,
      selector: { matchLabels: { app: "web" } },
      template: { spec: { containers: [{ name: "app", image: "registry.example/app:v2" }] } },
    },
    status: { observedGeneration: 2 },
  };
}
const HELD = deployment({ "kube-prepull.io/request": encodeRequest(REQUEST), "kube-prepull.io/held-by": REQUEST.id, "kube-prepull.io/hold": "true" });
const NODE: k8s.V1Node = { metadata: { name: "n1", labels: { "kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" } }, spec: {}, status: { conditions: [{ type: "Ready", status: "True" }], images: [] } };

interface FakeCacheOptions {
  synced?: () => boolean;
  keepWarm?: (list: string) => Promise<Date | undefined>;
  daemonSets?: k8s.V1DaemonSet[];
  pendingPodsOf?: (ds: k8s.V1DaemonSet) => PendingPodsRead;
}

function fakeCaches(objects: Record<string, k8s.V1Deployment>, options: FakeCacheOptions = {}): WorkerCaches {
  return {
    workload: (kind, namespace, name) => {
      const object = objects[workloadKey(kind, namespace, name)];
      return object ? { workload: deploymentWorkload, object } : undefined;
    },
    daemonSetsOf: () => options.daemonSets ?? [],
    pendingPodsOf: options.pendingPodsOf ?? (() => ({ pods: undefined })),
    nodes: () => [NODE],
    isOurs: (o) => o.metadata?.annotations?.["kube-prepull.io/request"] !== undefined,
    hasSynced: options.synced ?? (() => true),
    keepWarm: options.keepWarm ? ({ process: options.keepWarm } as unknown as WorkerCaches["keepWarm"]) : undefined,
  };
}

/** A queue that hands out the given keys, then reports shutdown, and records what it is told. */
function recordingQueue(keys: string[]): WorkerQueue & { calls: string[] } {
  const pending = [...keys];
  const calls: string[] = [];
  return {
    calls,
    get: () => Promise.resolve(pending.shift()),
    forget: (key) => void calls.push(`forget ${key}`),
    addAfter: (key, ms) => void calls.push(`addAfter ${key} ${ms}`),
    addRateLimited: (key) => (calls.push(`addRateLimited ${key}`), 5),
    retries: () => 1,
    done: (key) => void calls.push(`done ${key}`),
  };
}

function recordingExecutor(fail?: (action: Action) => boolean): Perform & { performed: string[] } {
  const performed: string[] = [];
  const perform = ((ref, _object, action) => {
    if (fail?.(action)) return Promise.reject(new Error(`${action.kind} refused`));
    performed.push(`${ref.workload.kind}/${ref.namespace}/${ref.name} ${action.kind}`);
    return Promise.resolve();
  }) as Perform & { performed: string[] };
  perform.performed = performed;
  return perform;
}

/** HELD once its prepull started: a Pulling status and its DaemonSet, 1 of 2 nodes Ready. */
const STATUS: PrepullStatus = { phase: "Pulling", images: REQUEST.images, nodes: { desired: 2, pulled: 1, failed: 0, skipped: 0 }, startedAt: NOW.toISOString(), updatedAt: NOW.toISOString(), request: REQUEST.id, daemonSet: prepullDaemonSetName("web", REQUEST.images) };
const PULLING = deployment({ ...HELD.metadata!.annotations, "kube-prepull.io/status": JSON.stringify(STATUS) });
function startedDaemonSet(): k8s.V1DaemonSet {
  const ds = renderPrepullDaemonSet({ workload: deploymentWorkload, object: PULLING, request: REQUEST, nodes: "eligible", nodeNames: ["n1", "n2"], config: CONFIG.pod });
  ds.metadata = { ...ds.metadata, generation: 1, creationTimestamp: NOW };
  ds.status = { observedGeneration: 1, desiredNumberScheduled: 2, currentNumberScheduled: 2, numberReady: 1, numberMisscheduled: 0 };
  return ds;
}
const NODE_2: k8s.V1Node = { ...NODE, metadata: { name: "n2", labels: { "kubernetes.io/hostname": "n2", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" } } };

const log = pino({ level: "silent" });
const worker = (caches: WorkerCaches, queue: WorkerQueue, perform: Perform, mayStart = true) =>
  createWorker({ caches, queue, perform, mayStart: () => mayStart, config: CONFIG, log, now: () => NOW, sleep: () => Promise.resolve() });

describe("controller worker", () => {
  it("performs reconcile's actions for a held workload in order, then forgets its key", async () => {
    const queue = recordingQueue([KEY]);
    const perform = recordingExecutor();
    await worker(fakeCaches({ [KEY]: HELD }), queue, perform).run();
    assert.ok(perform.performed.length > 0);
    assert.ok(perform.performed.every((p) => p.startsWith("Deployment/team/web ")));
    assert.equal(perform.performed[0], "Deployment/team/web create-daemonset");
    assert.ok(perform.performed.includes("Deployment/team/web write-status"));
    assert.deepEqual(queue.calls.filter((c) => !c.startsWith("addAfter")), [`forget ${KEY}`, `done ${KEY}`]);
  });

  it("a queued prepull (no start slot) writes a queued status and creates no DaemonSet", async () => {
    const perform = recordingExecutor();
    await worker(fakeCaches({ [KEY]: HELD }), recordingQueue([KEY]), perform, false).run();
    assert.ok(!perform.performed.some((p) => p.endsWith("create-daemonset")));
    assert.ok(perform.performed.some((p) => p.endsWith("write-status")));
  });

  it("a failing action puts the key back with backoff, does not forget it, and stops that key's actions", async () => {
    const queue = recordingQueue([KEY]);
    const perform = recordingExecutor((a) => a.kind === "create-daemonset");
    await worker(fakeCaches({ [KEY]: HELD }), queue, perform).run();
    assert.deepEqual(perform.performed, []); // create-daemonset came first and failed
    assert.deepEqual(queue.calls, [`addRateLimited ${KEY}`, `done ${KEY}`]);
  });

  it("remembers a refused create: a 403 fails the prepull on the next reconcile and releases the hold; a 503 is retried", async () => {
    const refusal = (code: number) => Object.assign(new Error(`HTTP-Code: ${code}`), { code, body: JSON.stringify({ message: `refused with ${code}` }) });
    for (const [code, expected] of [[403, ["write-status", "count", "event", "release-hold", "event"]], [503, ["create-daemonset"]]] as const) {
      let creates = 0;
      const performed: Action[] = [];
      const perform: Perform = (_ref, _object, action) => {
        // The first create is refused; a second one would go through.
        if (action.kind === "create-daemonset" && ++creates === 1) return Promise.reject(refusal(code));
        performed.push(action);
        return Promise.resolve();
      };
      const queue = recordingQueue([KEY, KEY]);
      const first = worker(fakeCaches({ [KEY]: HELD }), queue, perform);
      await first.run();
      assert.deepEqual(performed.map((a) => a.kind).slice(0, expected.length), expected, `${code}`);
      if (code === 403) {
        const status = performed.find((a) => a.kind === "write-status") as Extract<Action, { kind: "write-status" }>;
        assert.equal(status.status.phase, "Failed");
        assert.match(status.status.message ?? "", /^could not create daemonset\/prepull-web-[0-9a-f]+: refused with 403$/);
      } else {
        assert.ok(queue.calls.some((c) => c.startsWith(`addAfter ${KEY} 600`)), "a retried create is looked at again at the deadline");
      }
    }
  });

  it("a deleted workload, or one that is not kube-prepull's, asks for nothing", async () => {
    const plain = deployment({});
    const other = workloadKey("Deployment", "team", "other");
    const queue = recordingQueue([KEY, other, "not-a-key"]);
    const perform = recordingExecutor();
    await worker(fakeCaches({ [other]: plain }), queue, perform).run();
    assert.deepEqual(perform.performed, []);
    assert.deepEqual(queue.calls, [`forget ${KEY}`, `done ${KEY}`, `forget ${other}`, `done ${other}`, "forget not-a-key", "done not-a-key"]);
  });

  it("a keep-warm key goes to the keep-warm lists and is requeued for its next refresh", async () => {
    const seen: string[] = [];
    const refresh = new Date(NOW.getTime() + 60_000);
    const caches = fakeCaches({}, { keepWarm: (list) => (seen.push(list), Promise.resolve(refresh)) });
    const queue = recordingQueue([`${KEEP_WARM_KEY}base`]);
    await worker(caches, queue, recordingExecutor()).run();
    assert.deepEqual(seen, ["base"]);
    assert.ok(queue.calls.includes(`addAfter ${KEEP_WARM_KEY}base ${60_000 + DEADLINE_SLACK_MS}`));
  });

  it("asks for the pending pods of each DaemonSet and passes them to reconcile by DaemonSet name", async () => {
    const ds = startedDaemonSet();
    const failing: k8s.V1Pod = {
      metadata: { name: "p-n2", namespace: "team" },
      spec: { nodeName: "n2", containers: [] },
      status: { phase: "Pending", conditions: [{ type: "Ready", status: "False" }],
        initContainerStatuses: [{ name: "pull-0", image: "registry.example/app:v2", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "InvalidImageName", message: "bad" } } }] },
    };
    const asked: string[] = [];
    const caches = fakeCaches({ [KEY]: PULLING }, { daemonSets: [ds], pendingPodsOf: (d) => (asked.push(d.metadata!.name!), { pods: [failing] }) });
    caches.nodes = () => [NODE, NODE_2];
    const perform = recordingExecutor();
    await worker(caches, recordingQueue([KEY]), perform).run();
    assert.deepEqual(asked, [ds.metadata!.name]);
    assert.ok(perform.performed.includes("Deployment/team/web release-hold"), `the permanent failure in the detail ends the prepull: ${perform.performed.join()}`);
  });

  it("requeues a stalled prepull when its pending pods would be due, if that comes before reconcile's own requeue", async () => {
    const ds = startedDaemonSet();
    const queue = recordingQueue([KEY]);
    const caches = fakeCaches({ [KEY]: PULLING }, { daemonSets: [ds], pendingPodsOf: () => ({ pods: undefined, recheckInMs: 3000 }) });
    caches.nodes = () => [NODE, NODE_2];
    const perform = recordingExecutor();
    await worker(caches, queue, perform).run();
    assert.deepEqual(perform.performed, [], "1 of 2 pulled: nothing to do yet");
    assert.deepEqual(queue.calls, [`addAfter ${KEY} ${3000 + DEADLINE_SLACK_MS}`, `forget ${KEY}`, `done ${KEY}`]);
    // Without a recheck, reconcile's own (the scheduling grace, 30 s after the DaemonSet was created).
    const quiet = recordingQueue([KEY]);
    const noRecheck = fakeCaches({ [KEY]: PULLING }, { daemonSets: [ds] });
    noRecheck.nodes = () => [NODE, NODE_2];
    await worker(noRecheck, quiet, recordingExecutor()).run();
    assert.deepEqual(quiet.calls[0], `addAfter ${KEY} ${30_000 + DEADLINE_SLACK_MS}`);
  });

  it("decides nothing from a cache that has not shown its own status write yet (a timed-out prepull does not turn Succeeded)", async () => {
    const after = new Date(NOW.getTime() + 601_000); // past the hold deadline (600 s)
    const half = startedDaemonSet();
    const full = { ...half, status: { ...half.status!, numberReady: 2 } };
    const cached: Record<string, k8s.V1Deployment> = { [KEY]: PULLING };
    let daemonSets = [half];
    const caches = fakeCaches(cached);
    caches.daemonSetsOf = () => daemonSets;
    caches.nodes = () => [NODE, NODE_2];
    const performed: Action[] = [];
    const perform: Perform = (_ref, _object, action) => (performed.push(action), Promise.resolve());
    const queue = recordingQueue([KEY, KEY, KEY]);
    const w = createWorker({ caches, queue, perform, mayStart: () => true, config: CONFIG, log, now: () => after, sleep: () => Promise.resolve() });
    await w.process(KEY);
    const written = performed.find((a) => a.kind === "write-status") as Extract<Action, { kind: "write-status" }>;
    assert.equal(written.status.phase, "TimedOut");
    // The last pod turns Ready; the DaemonSet's event comes before the workload's own.
    daemonSets = [full];
    performed.length = 0;
    queue.calls.length = 0;
    await w.process(KEY);
    assert.equal(performed.length, 0, "no decision from the status before our write");
    assert.deepEqual(queue.calls, [`addAfter ${KEY} ${OWN_WRITE_TIMEOUT_MS}`]);
    // The watch brings the write back: the prepull stays TimedOut.
    cached[KEY] = deployment({ ...PULLING.metadata!.annotations, "kube-prepull.io/status": JSON.stringify(written.status) });
    await w.process(KEY);
    assert.ok(!performed.some((a) => a.kind === "write-status" || (a.kind === "event" && a.reason === "PrepullSucceeded")), performed.map((a) => a.kind).join());
  });

  it("trusts the cache again once the object was replaced or the write is older than the timeout", async () => {
    let now = NOW;
    const cached: Record<string, k8s.V1Deployment> = { [KEY]: HELD };
    const performed: string[] = [];
    const perform: Perform = (_ref, _object, action) => (performed.push(action.kind), Promise.resolve());
    const w = createWorker({ caches: fakeCaches(cached), queue: recordingQueue([]), perform, mayStart: () => true, config: CONFIG, log, now: () => now, sleep: () => Promise.resolve() });
    await w.process(KEY);
    assert.ok(performed.includes("write-status"));
    performed.length = 0;
    await w.process(KEY);
    assert.equal(performed.length, 0);
    cached[KEY] = { ...HELD, metadata: { ...HELD.metadata, uid: "uid-web-2" } };
    await w.process(KEY);
    assert.ok(performed.includes("write-status"), "another object of the same name is decided on");
    performed.length = 0;
    now = new Date(NOW.getTime() + OWN_WRITE_TIMEOUT_MS);
    await w.process(KEY);
    assert.ok(performed.includes("write-status"), "a write unseen for the timeout no longer blocks");
  });

  it("several runs share one queue: two workloads are reconciled at once, one workload never twice at once", async () => {
    const other = workloadKey("Deployment", "team", "api");
    const objects = { [KEY]: HELD, [other]: { ...HELD, metadata: { ...HELD.metadata, name: "api", uid: "uid-api" } } };
    const queue = new WorkQueue();
    const inFlight = new Map<string, number>();
    let most = 0;
    let mostOfOne = 0;
    const releases: Array<() => void> = [];
    const perform: Perform = (ref) => {
      const n = (inFlight.get(ref.name) ?? 0) + 1;
      inFlight.set(ref.name, n);
      mostOfOne = Math.max(mostOfOne, n);
      most = Math.max(most, [...inFlight.values()].reduce((a, b) => a + b, 0));
      return new Promise<void>((resolve) => releases.push(() => (inFlight.set(ref.name, inFlight.get(ref.name)! - 1), resolve())));
    };
    const w = worker(fakeCaches(objects), queue, perform);
    const runs = [w.run(), w.run(), w.run()];
    queue.add(KEY);
    queue.add(other);
    await new Promise((resolve) => setImmediate(resolve));
    queue.add(KEY); // while KEY is being reconciled: once more after, not beside it
    for (let i = 0; i < 50 && (releases.length > 0 || inFlight.size === 0); i++) {
      releases.splice(0).forEach((release) => release());
      await new Promise((resolve) => setImmediate(resolve));
    }
    w.stop();
    queue.shutdown();
    await Promise.all(runs);
    assert.equal(most >= 2, true, "two workloads in flight at once");
    assert.equal(mostOfOne, 1, "one workload never reconciled twice at once");
  });

  it("takes no key before the caches have synced", async () => {
    let checks = 0;
    const queue = recordingQueue([KEY]);
    let gotBeforeSync = false;
    const get = queue.get;
    queue.get = () => ((gotBeforeSync ||= checks < 3), get());
    await worker(fakeCaches({ [KEY]: HELD }, { synced: () => ++checks >= 3 }), queue, recordingExecutor()).run();
    assert.equal(gotBeforeSync, false);
    assert.equal(checks, 3);
  });

  it("with the real work queue, a key that keeps failing is retried with doubling delays", async () => {
    const delays: number[] = [];
    let clock = 0;
    const timers: Array<() => void> = [];
    const queueClock: QueueClock = {
      now: () => clock,
      setTimeout: (fn, ms) => {
        delays.push(ms);
        timers.push(fn);
        return { cancel: () => void timers.splice(timers.indexOf(fn), 1) };
      },
    };
    const queue = new WorkQueue({ clock: queueClock });
    const perform = recordingExecutor(() => true);
    const w = worker(fakeCaches({ [KEY]: HELD }), queue, perform);
    queue.add(KEY);
    const running = w.run();
    for (let attempt = 0; attempt < 4; attempt++) {
      await new Promise((resolve) => setImmediate(resolve));
      clock += 10_000;
      timers.shift()?.();
    }
    await new Promise((resolve) => setImmediate(resolve));
    w.stop();
    queue.shutdown();
    await running;
    assert.equal(queue.retries(KEY), 5);
    // Each retry also asks to look again at the hold deadline (10 min), which the earlier backoff replaces.
    assert.deepEqual(delays.filter((d) => d < 600_000).slice(0, 4).map(Math.round), [5, 10, 20, 40]);
    assert.ok(delays.includes(600_000 + DEADLINE_SLACK_MS));
  });
});
