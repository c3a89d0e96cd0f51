import assert from "node:assert/strict";
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import pino from "pino";
import { isUnavailable } from "../../../src/kube/api-errors.js";
import { Reflector, retryDelayMs, type ListResult } from "../../../src/kube/reflector.js";
import { loopbackKubeConfig } from "../../support/loopback-kubeconfig.js";

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

describe("reflector relist", () => {
  /**
   * A watch endpoint on 127.0.0.1 (plain HTTP) whose first watch answers 410 Gone, so the reflector
   * lists again; later watches stay open without events until the test ends.
   */
  async function goneOnceWatchServer(): Promise<{ kubeConfig: k8s.KubeConfig; close: () => void }> {
    let watches = 0;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      if (++watches === 1) res.end(`${JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } })}\n`);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const kubeConfig = loopbackKubeConfig(server);
    return { kubeConfig, close: () => { server.closeAllConnections(); server.close(); } };
  }
  const cm = (name: string, resourceVersion: string): k8s.V1ConfigMap => ({ metadata: { name, namespace: "n", resourceVersion }, data: { v: resourceVersion } });

  it("merges page by page: unchanged objects keep their cached copy, changed ones are MODIFIED, missing ones DELETED", async () => {
    // First list: a, b, c over two pages; after the 410: a unchanged, b changed, c gone, d new.
    const lists: ListResult<k8s.V1ConfigMap>[][] = [
      [{ items: [cm("a", "1"), cm("b", "1")], metadata: { resourceVersion: "5", _continue: "p2" } }, { items: [cm("c", "1")], metadata: { resourceVersion: "5" } }],
      [{ items: [cm("a", "1")], metadata: { resourceVersion: "9", _continue: "p2" } }, { items: [cm("b", "7"), cm("d", "8")], metadata: { resourceVersion: "9" } }],
    ];
    let listCalls = 0;
    let pageInList = 0;
    let secondList!: () => void;
    const secondListMayStart = new Promise<void>((resolve) => { secondList = resolve; });
    const events: string[] = [];
    const fake = await goneOnceWatchServer();
    const reflector = new Reflector<k8s.V1ConfigMap>({
      name: "configmaps", kubeConfig: fake.kubeConfig, path: "/api/v1/configmaps", log: pino({ level: "silent" }),
      list: async (params) => {
        if (!params._continue) { listCalls++; pageInList = 0; }
        if (listCalls === 2) await secondListMayStart;
        return lists[listCalls - 1]![pageInList++]!;
      },
      onEvent: (type, object) => void events.push(`${type} ${object.metadata!.name}@${object.metadata!.resourceVersion}`),
    });
    try {
      reflector.start();
      for (let i = 0; i < 300 && listCalls < 2; i++) await sleep(10);
      const firstA = reflector.get("n", "a");
      assert.ok(firstA);
      secondList();
      for (let i = 0; i < 300 && events.length < 6; i++) await sleep(10);
      assert.deepEqual(events, ["ADDED a@1", "ADDED b@1", "ADDED c@1", "MODIFIED b@7", "ADDED d@8", "DELETED c@1"]);
      assert.equal(listCalls, 2);
      assert.equal(reflector.get("n", "a"), firstA, "an unchanged object keeps its cached copy");
      assert.deepEqual(reflector.list().map((o) => `${o.metadata!.name}@${o.metadata!.resourceVersion}`).sort(), ["a@1", "b@7", "d@8"]);
    } finally {
      reflector.stop();
      fake.close();
    }
  });
});
