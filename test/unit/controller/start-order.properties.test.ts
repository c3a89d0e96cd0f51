// Properties of the cluster-wide cap (fast-check): whatever prepulls arrive, start, finish or are
// replaced, in any order, a controller that starts only what mayStart() allows never has more than
// `cap` prepulls pulling at once, and starts the oldest waiting requests first.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { StartOrder } from "../../../src/controller/start-order.js";

type Step =
  | { kind: "request"; key: number; minute: number }
  | { kind: "start"; key: number }
  | { kind: "finish"; key: number };

const KEYS = 12;
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("request" as const), key: fc.nat(KEYS - 1), minute: fc.nat(59) }),
  fc.record({ kind: fc.constant("start" as const), key: fc.nat(KEYS - 1) }),
  fc.record({ kind: fc.constant("finish" as const), key: fc.nat(KEYS - 1) }),
);

const at = (minute: number): string => new Date(Date.UTC(2026, 10, 22, 10, minute)).toISOString();

describe("start order (properties)", () => {
  it("never lets more than the cap pull at once, and starts the oldest waiting first", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.array(step, { maxLength: 80 }), (cap, steps) => {
      const order = new StartOrder(cap);
      const waiting = new Map<string, string>(); // the model: key → requestedAt
      const pulling = new Set<string>();
      for (const s of steps) {
        const key = `Deployment/ns/w${s.key}`;
        if (s.kind === "request") {
          // A new request (or a newer one replacing it) waits, whatever it was doing.
          order.set(key, { kind: "waiting", requestedAt: at(s.minute) });
          waiting.set(key, at(s.minute));
          pulling.delete(key);
        } else if (s.kind === "start" && waiting.has(key)) {
          // The oldest waiting requests that fit under the cap are the ones that may start (ties by key).
          const oldest = [...waiting].sort(([ka, a], [kb, b]) => a.localeCompare(b) || ka.localeCompare(kb)).slice(0, Math.max(0, cap - pulling.size)).map(([k]) => k);
          assert.equal(order.mayStart(key), oldest.includes(key), `${key}; may start: ${oldest.join(", ")}`);
          if (!oldest.includes(key)) continue;
          order.set(key, { kind: "pulling" });
          waiting.delete(key);
          pulling.add(key);
        } else if (s.kind === "finish" && pulling.has(key)) {
          order.set(key, undefined);
          pulling.delete(key);
        }
        assert.ok(order.pulling().length <= cap, `${order.pulling().length} pulling with a cap of ${cap}`);
        assert.ok(order.startable().length <= cap - order.pulling().length);
        assert.deepEqual(new Set(order.pulling()), pulling);
      }
    }), { numRuns: 2000 });
  });
});
