import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decideLease, leaseRecord, leaseSpec, observationKey } from "../../../src/kube/leader-election.js";

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
