import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isUnavailable } from "../../../src/kube/api-errors.js";
import { retryDelayMs } from "../../../src/kube/reflector.js";

const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), { code: "ECONNREFUSED" });
const api = (code: number): Error => Object.assign(new Error(`HTTP ${code}`), { code });

describe("apiserver unavailable or refusing", () => {
  it("tells an outage (no answer, 429, 5xx) from a refusal or a bug of ours", () => {
    assert.deepEqual([refused, api(503), api(429), Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })].map(isUnavailable), [true, true, true, true]);
    assert.deepEqual([api(403), api(404), api(422), new TypeError("x is undefined")].map(isUnavailable), [false, false, false, false]);
  });
});

describe("reflector retry delay", () => {
  it("doubles from 1 s and stops at 30 s for answers that may not heal soon", () => {
    assert.deepEqual([1, 2, 3, 6, 20].map((n) => retryDelayMs(api(403), n)), [1000, 2000, 4000, 30_000, 30_000]);
    assert.equal(retryDelayMs(new TypeError("a bug"), 20), 30_000);
  });
  it("stays at 2 s at most while nothing answers, so a cache is back within seconds of the apiserver", () => {
    assert.deepEqual([1, 2, 3, 30].map((n) => retryDelayMs(refused, n)), [1000, 2000, 2000, 2000]);
  });
  it("stays at 5 s at most while the apiserver starts or sheds load (429, 5xx), from a watch or a list", () => {
    assert.equal(retryDelayMs(api(503), 30), 5000);
    assert.equal(retryDelayMs(Object.assign(new Error("Too Many Requests"), { statusCode: 429 }), 30), 5000);
  });
});
