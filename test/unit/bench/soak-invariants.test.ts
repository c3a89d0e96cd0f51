import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  duplicateDaemonSets, finalViolations, HoldTracker, missingTerminalEvents, RELEASE_GRACE_MS, seededRandom, workloadView, type WorkloadView,
} from "../../../bench/soak/invariants.js";

const T0 = Date.parse("2026-12-03T18:00:00Z");
const request = (id: string, at = T0) => ({ id, images: ["example.com/a:1"], requestedAt: new Date(at).toISOString(), hold: true });
const status = (phase: "Pulling" | "Succeeded" | "Failed" | "TimedOut", req: string) =>
  ({ phase, images: ["example.com/a:1"], nodes: { desired: 3, pulled: 3, failed: 0 }, startedAt: new Date(T0).toISOString(), request: req, daemonSet: `ds-${req}` });
const held = (name: string, req: string, at = T0): WorkloadView =>
  ({ name, uid: `uid-${name}`, request: request(req, at), status: status("Pulling", req), heldBy: { request: req }, holdTimeoutMs: 30_000 });
const done = (w: WorkloadView, phase: "Succeeded" | "Failed" | "TimedOut" = "Succeeded"): WorkloadView =>
  ({ ...w, heldBy: undefined, status: status(phase, w.request!.id) });

describe("soak invariants", () => {
  it("reads a Deployment's request, status, hold and hold timeout from its annotations", () => {
    const view = workloadView({
      metadata: {
        name: "web", uid: "u1",
        annotations: {
          "kube-prepull.io/hold-timeout": "45s",
          "kube-prepull.io/request": JSON.stringify(request("r1")),
          "kube-prepull.io/held-by": "r1",
        },
      },
    });
    assert.equal(view.request?.id, "r1");
    assert.equal(view.heldBy?.request, "r1");
    assert.equal(view.holdTimeoutMs, 45_000);
  });

  it("finds two DaemonSets for one request of one Deployment, not one each for two requests", () => {
    assert.deepEqual(duplicateDaemonSets([
      { name: "a", ownerUid: "u", requestId: "r1" }, { name: "b", ownerUid: "u", requestId: "r2" }, { name: "c", ownerUid: "v", requestId: "r1" },
    ]), []);
    assert.equal(duplicateDaemonSets([{ name: "a", ownerUid: "u", requestId: "r1" }, { name: "b", ownerUid: "u", requestId: "r1" }]).length, 1);
  });

  it("counts holds and releases and measures how late each release was against its deadline", () => {
    const t = new HoldTracker();
    t.observe([held("a", "r1"), held("b", "r2")], T0 + 1000);
    t.observe([done(held("a", "r1")), held("b", "r2")], T0 + 10_000); // a released before its deadline
    t.observe([done(held("a", "r1")), done(held("b", "r2"))], T0 + 35_000); // b 5 s after its deadline
    const s = t.summary();
    assert.deepEqual([s.holds, s.releases, s.maxLatenessMs, s.late.length, t.held()], [2, 2, 5000, 0, 0]);
  });

  it("reports a hold still on, or released, after its hold timeout + 30 s, once", () => {
    const t = new HoldTracker();
    t.observe([held("a", "r1")], T0);
    t.observe([held("a", "r1")], T0 + 30_000 + RELEASE_GRACE_MS + 1);
    t.observe([held("a", "r1")], T0 + 30_000 + RELEASE_GRACE_MS + 5000);
    assert.equal(t.summary().late.length, 1);
  });

  it("measures a hold whose deadline fell in an outage from the outage's end", () => {
    const t = new HoldTracker();
    t.observe([held("a", "r1")], T0);
    const outage = t.outage(T0 + 20_000);
    outage.end(T0 + 90_000); // deadline T0 + 30 s fell in it
    t.observe([done(held("a", "r1"))], T0 + 92_000);
    assert.deepEqual([t.summary().maxLatenessMs, t.summary().late.length], [2000, 0]);
    t.observe([held("b", "r2")], T0 + 100_000);
    t.observe([done(held("b", "r2"))], T0 + 100_000 + 30_000 + 30_000 + 1); // not in the outage: late
    assert.equal(t.summary().late.length, 1);
  });

  it("takes every pause after the deadline out, overlapping ones once: a deadline in a leaderless time that runs into an outage", () => {
    const t = new HoldTracker();
    t.observe([held("a", "r1")], T0);
    t.leaderless(T0 + 10_000).end(T0 + 40_000); // deadline T0 + 30 s fell in it
    t.outage(T0 + 35_000).end(T0 + 70_000); // and the new leader's first seconds in an outage
    t.observe([held("a", "r1")], T0 + 70_000 + RELEASE_GRACE_MS); // on time still
    assert.equal(t.summary().late.length, 0);
    t.observe([held("a", "r1")], T0 + 70_000 + RELEASE_GRACE_MS + 1);
    assert.match(t.summary().late[0] ?? "", /not counting the no leader and outage times after it/);
    t.observe([done(held("a", "r1"))], T0 + 102_000);
    assert.deepEqual([t.summary().maxLatenessMs, t.summary().maxRawLatenessMs], [32_000, 72_000]);
  });

  it("takes out a pause that began after the deadline: the leader killed before it released (soak seed 20261207)", () => {
    const t = new HoldTracker();
    t.observe([held("a", "r1")], T0);
    t.leaderless(T0 + 31_000).end(T0 + 57_000); // killed 1 s after the deadline, the next one took over 26 s later
    t.leaderless(T0 + 64_000).end(T0 + 81_000); // and was killed while it synced
    t.observe([done(held("a", "r1"))], T0 + 84_000); // 54 s after the deadline, 11 s of it with a leader
    assert.deepEqual([t.summary().maxLatenessMs, t.summary().late.length], [11_000, 0]);
    t.observe([held("b", "r2")], T0 + 100_000);
    t.leaderless(T0 + 140_000).end(T0 + 150_000); // 10 s after b's deadline: those 10 s count
    t.observe([held("b", "r2")], T0 + 130_000 + 10_000 + 10_000 + RELEASE_GRACE_MS - 10_000 + 1);
    assert.equal(t.summary().late.length, 1, "30 s with a leader after the deadline, pause aside");
  });

  it("treats a newer request's hold as a new hold (the old one ended when held-by changed)", () => {
    const t = new HoldTracker();
    t.observe([held("a", "r1")], T0);
    t.observe([held("a", "r2", T0 + 5000)], T0 + 6000);
    assert.deepEqual([t.summary().holds, t.summary().releases, t.held()], [2, 1, 1]);
  });

  it("passes a clean end and names every kind of leftover", () => {
    const ok = done(held("a", "r1"));
    const events = [{ involvedUid: "uid-a", reason: "PrepullSucceeded", at: T0 + 2000 }];
    assert.deepEqual(finalViolations([ok], [], events), []);
    const problems = finalViolations(
      [held("still", "r1"), { ...done(held("stale", "r2")), status: status("Succeeded", "r0") }, done(held("contradicted", "r3"), "TimedOut")],
      [{ name: "ds-1", ownerUid: "u", requestId: "r9" }],
      [{ involvedUid: "uid-contradicted", reason: "PrepullSucceeded", at: T0 + 1000 }],
    );
    assert.equal(problems.length, 5, problems.join("\n")); // held + Pulling, stale status, contradicting Event, DaemonSet
    assert.ok(problems.some((p) => p.includes("still held")));
    assert.ok(problems.some((p) => p.includes("the latest is r2")));
    assert.ok(problems.some((p) => p.includes("Event PrepullSucceeded")));
    assert.ok(problems.some((p) => p.includes("ds-1")));
  });

  it("ignores an earlier request's terminal Event, and counts a missing one without failing", () => {
    const later = done(held("a", "r2", T0 + 60_000), "TimedOut");
    const events = [{ involvedUid: "uid-a", reason: "PrepullSucceeded", at: T0 + 5000 }];
    assert.deepEqual(finalViolations([later], [], events), []);
    assert.equal(missingTerminalEvents([later], events), 1);
  });

  it("replays the same choices from the same seed", () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const first = Array.from({ length: 5 }, a);
    assert.deepEqual(first, Array.from({ length: 5 }, b));
    assert.ok(first.every((x) => x >= 0 && x < 1));
    assert.notDeepEqual(first, Array.from({ length: 5 }, seededRandom(43)));
  });
});
