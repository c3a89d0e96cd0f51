import assert from "node:assert/strict";
import http from "node:http";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import { attemptDeadline, decideLease, leaseRecord, leaseSpec, observationKey, startLeaderElection } from "../../../src/kube/leader-election.js";
import { loopbackKubeConfig } from "../../support/loopback-kubeconfig.js";

const NOW = new Date("2026-11-22T10:00:00Z");
const ago = (ms: number): number => NOW.getTime() - ms;

describe("leader election decisions (client-go semantics)", () => {
  const held = { holder: "replica-a", leaseDurationSeconds: 15, transitions: 3, acquireTime: new Date(ago(60_000)), renewTime: new Date(ago(1_000)) };

  it("the holder renews, keeping its acquire time and the transition count", () => {
    assert.deepEqual(decideLease({ record: held, identity: "replica-a", observedAt: ago(1_000), now: NOW }), {
      kind: "renew",
      transitions: 3,
      acquireTime: held.acquireTime,
    });
  });

  it("others follow while the record changed within the lease duration on their own clock", () => {
    assert.deepEqual(decideLease({ record: held, identity: "replica-b", observedAt: ago(14_999), now: NOW }), { kind: "follow", holder: "replica-a" });
  });

  it("the renew time written by another machine's clock is not trusted", () => {
    const skewed = { ...held, renewTime: new Date(ago(3_600_000)) };
    assert.equal(decideLease({ record: skewed, identity: "replica-b", observedAt: ago(1_000), now: NOW }).kind, "follow");
  });

  it("others take over a lease unchanged for the lease duration, counting a transition", () => {
    assert.deepEqual(decideLease({ record: held, identity: "replica-b", observedAt: ago(15_000), now: NOW }), { kind: "take", transitions: 4, acquireTime: NOW });
  });

  it("a released lease (empty holder) is free at once", () => {
    assert.equal(decideLease({ record: { ...held, holder: "" }, identity: "replica-b", observedAt: ago(0), now: NOW }).kind, "take");
  });

  it("reads a Lease object, with defaults for missing fields", () => {
    assert.deepEqual(leaseRecord({ spec: {} }), { holder: "", leaseDurationSeconds: 15, transitions: 0 });
    const record = leaseRecord({ spec: { holderIdentity: "x", leaseDurationSeconds: 30, leaseTransitions: 2, renewTime: NOW } });
    assert.equal(record.holder, "x");
    assert.equal(record.renewTime?.getTime(), NOW.getTime());
  });
});

describe("leader election: the lease written", () => {
  it("takes or renews as this identity, with the decision's transitions and acquire time, renewed now", () => {
    const spec = leaseSpec({ identity: "replica-a", leaseSeconds: 15, decision: { kind: "take", transitions: 4, acquireTime: new Date(ago(5_000)) }, now: NOW });
    assert.equal(spec.holderIdentity, "replica-a");
    assert.equal(spec.leaseDurationSeconds, 15);
    assert.equal(spec.leaseTransitions, 4);
    assert.equal(new Date(spec.acquireTime!).getTime(), ago(5_000));
    assert.equal(new Date(spec.renewTime!).getTime(), NOW.getTime());
  });

  it("sees a record change when the holder renews or the lease changes hands", () => {
    const record = { holder: "replica-a", leaseDurationSeconds: 15, transitions: 3, renewTime: new Date(ago(1_000)) };
    assert.equal(observationKey(record), observationKey({ ...record }));
    assert.notEqual(observationKey(record), observationKey({ ...record, renewTime: NOW }));
    assert.notEqual(observationKey(record), observationKey({ ...record, holder: "replica-b", transitions: 4 }));
  });
});

describe("leader election: a lease call that never answers", () => {
  it("ends a leader's renewal at its renew deadline, a candidate's attempt at one renew deadline", () => {
    assert.equal(attemptDeadline({ leader: true, lastRenew: 1_000, now: 5_000, renewDeadlineMs: 10_000 }), 11_000);
    assert.equal(attemptDeadline({ leader: false, lastRenew: 1_000, now: 5_000, renewDeadlineMs: 10_000 }), 15_000);
  });

  /**
   * A Lease endpoint on 127.0.0.1 (plain HTTP): `hang(n)` says whether the n-th GET of the lease
   * (from 1) gets no answer at all; other GETs answer `lease`, 404 while it is undefined; PUT and
   * POST store what they are sent.
   */
  async function leaseServer(hang: (n: number) => boolean, lease?: k8s.V1Lease): Promise<{ kubeConfig: k8s.KubeConfig; close: () => void }> {
    let gets = 0;
    const hanging: http.ServerResponse[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => void chunks.push(c));
      req.on("end", () => {
        const send = (status: number, body: unknown): void => void res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
        if (req.method === "GET" && !req.url!.includes("/leases/")) return send(200, { kind: "LeaseList", apiVersion: "coordination.k8s.io/v1", metadata: {}, items: [] });
        if (req.method === "GET") {
          if (hang(++gets)) return void hanging.push(res);
          return lease ? send(200, lease) : send(404, { kind: "Status", apiVersion: "v1", status: "Failure", code: 404, reason: "NotFound" });
        }
        lease = { ...(JSON.parse(Buffer.concat(chunks).toString("utf8")) as k8s.V1Lease), apiVersion: "coordination.k8s.io/v1", kind: "Lease" };
        send(200, lease);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const kubeConfig = loopbackKubeConfig(server);
    return { kubeConfig, close: () => { for (const r of hanging) r.destroy(); server.closeAllConnections(); server.close(); } };
  }
  const timings = { leaseDurationMs: 1_000, renewDeadlineMs: 400, retryPeriodMs: 100 };
  const silent = pino({ level: "silent" });

  it("a candidate whose first read hangs still takes over a lease its holder stopped renewing", async () => {
    const stale: k8s.V1Lease = { metadata: { name: "l", namespace: "n", resourceVersion: "1" }, spec: { holderIdentity: "gone", leaseDurationSeconds: 1, leaseTransitions: 1, renewTime: new k8s.V1MicroTime(Date.now() - 60_000) } };
    const fake = await leaseServer((n) => n === 1, stale);
    let started = 0;
    const t0 = Date.now();
    const election = await startLeaderElection({ kubeConfig: fake.kubeConfig, namespace: "n", name: "l", identity: "me", ...timings, log: silent, onStartedLeading: () => void (started ||= Date.now()), onStoppedLeading: () => undefined })
      .catch((error: unknown) => { fake.close(); throw error; });
    try {
      await pollFor(() => started > 0, 5_000);
      // A renew deadline lost on the hanging read, then the lease duration of observation.
      assert.ok(started - t0 >= timings.leaseDurationMs, `took over after ${started - t0} ms`);
    } finally {
      await election.stop();
      fake.close();
    }
  });

  it("a leader whose renewal hangs steps down within its renew deadline", async () => {
    const fake = await leaseServer((n) => n >= 3); // GET 1: 404 (create), GET 2: renew, then silence
    let stoppedAt = 0;
    let lastHeld = 0;
    const election = await startLeaderElection({ kubeConfig: fake.kubeConfig, namespace: "n", name: "l", identity: "me", ...timings, log: silent, onStartedLeading: () => undefined, onStoppedLeading: () => void (stoppedAt ||= Date.now()) })
      .catch((error: unknown) => { fake.close(); throw error; });
    try {
      await pollFor(() => { if (election.isLeader()) lastHeld = Date.now(); return stoppedAt > 0; }, 5_000);
      // The last renewal came at most one retry period before the last time it was seen leading.
      assert.ok(stoppedAt - lastHeld <= timings.renewDeadlineMs + 100, `stepped down ${stoppedAt - lastHeld} ms after it was last seen leading`);
      assert.equal(election.isLeader(), false);
    } finally {
      await election.stop();
      fake.close();
    }
  });
});

async function pollFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
