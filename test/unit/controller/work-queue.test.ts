import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WorkQueue, type QueueClock } from "../../../src/controller/work-queue.js";

/** A clock whose timers fire only when the test advances it. */
function fakeClock(): QueueClock & { advance: (ms: number) => void } {
  let now = 0;
  let timers: { at: number; run: () => void; live: boolean }[] = [];
  return {
    now: () => now,
    setTimeout: (run, ms) => {
      const timer = { at: now + ms, run, live: true };
      timers.push(timer);
      return { cancel: () => (timer.live = false) };
    },
    advance(ms) {
      now += ms;
      const due = timers.filter((t) => t.live && t.at <= now);
      timers = timers.filter((t) => !due.includes(t));
      for (const t of due) t.run();
    },
  };
}

describe("work queue", () => {
  it("de-duplicates keys and runs a key added while processing once more after done", async () => {
    const q = new WorkQueue({ clock: fakeClock() });
    q.add("a");
    q.add("a");
    q.add("b");
    assert.equal(q.length(), 2);
    const first = await q.get();
    assert.equal(first, "a");
    q.add("a"); // while processing: not handed out twice
    assert.equal(await q.get(), "b");
    assert.equal(q.length(), 0);
    q.done("a");
    assert.equal(await q.get(), "a");
  });

  it("backs a failing key off exponentially from 5 ms to 1000 s, and forget starts again", () => {
    const q = new WorkQueue({ clock: fakeClock(), burst: 1000 });
    const delays = Array.from({ length: 20 }, () => q.addRateLimited("k"));
    assert.deepEqual(delays.slice(0, 4), [5, 10, 20, 40]);
    assert.equal(delays.at(-1), 1_000_000);
    assert.equal(q.retries("k"), 20);
    q.forget("k");
    assert.equal(q.addRateLimited("k"), 5);
  });

  it("keeps all retries under the overall rate once the burst is spent", () => {
    const q = new WorkQueue({ clock: fakeClock(), retriesPerSecond: 10, burst: 2 });
    const delays = ["a", "b", "c", "d"].map((key) => q.addRateLimited(key));
    assert.deepEqual(delays, [5, 5, 100, 200]);
  });

  it("addAfter keeps the earliest due time and adds the key when it is due", async () => {
    const clock = fakeClock();
    const q = new WorkQueue({ clock });
    q.addAfter("k", 1000);
    q.addAfter("k", 300);
    q.addAfter("k", 2000);
    clock.advance(299);
    assert.equal(q.length(), 0);
    clock.advance(1);
    assert.equal(q.length(), 1);
    assert.equal(await q.get(), "k");
    q.done("k");
    clock.advance(5000);
    assert.equal(q.length(), 0, "the later timers were replaced, not kept");
  });

  it("wakes a waiting worker, and shutdown ends it", async () => {
    const q = new WorkQueue({ clock: fakeClock() });
    const waiting = q.get();
    q.add("x");
    assert.equal(await waiting, "x");
    const next = q.get();
    q.shutdown();
    assert.equal(await next, undefined);
  });

  it("retries every key in backoff at once when the apiserver is back, keeping its failure count", async () => {
    const clock = fakeClock();
    const q = new WorkQueue({ clock });
    q.add("held");
    for (let i = 0; i < 14; i++) {
      assert.equal(await q.get(), "held");
      q.addRateLimited("held"); // failed: the apiserver is down
      q.done("held");
      if (i < 13) clock.advance(5 * 2 ** i); // the retry comes; the 14th failure waits
    }
    q.add("healthy");
    assert.equal(await q.get(), "healthy");
    q.done("healthy");
    assert.equal(q.length(), 0, "held waits out 5 ms × 2^14 ≈ 82 s");
    q.retryFailingNow();
    assert.equal(q.length(), 1);
    assert.equal(await q.get(), "held");
    assert.equal(q.retries("held"), 14, "a key that keeps failing keeps its backoff");
    q.done("held");
    clock.advance(10 * 60_000);
    assert.equal(q.length(), 0, "its old timer was cancelled: not queued twice");
  });

  it("bounds a retry's backoff by the cap asked for, keeping the count", async () => {
    const clock = fakeClock();
    const q = new WorkQueue({ clock });
    for (let i = 0; i < 20; i++) q.addRateLimited("k");
    assert.equal(q.addRateLimited("k", 2000), 2000, "an unavailable apiserver: retried within 2 s however many failures");
    assert.equal(q.retries("k"), 21);
    assert.ok(q.addRateLimited("k") > 60_000, "without a cap the backoff is what the count says");
    clock.advance(2000);
    assert.equal(await q.get(), "k");
  });
});
