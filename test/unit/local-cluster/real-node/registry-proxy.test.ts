import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { CONTROL_PATH, createRegistryProxy, matchFault, SharedLink, validateConfig } from "../../../../src/local-cluster/real-node/registry-proxy.js";

describe("the registry proxy's shared link", () => {
  it("makes bytes wait their share of the rate on one clock, whoever sends them", () => {
    let now = 1000;
    const link = new SharedLink(() => 1000, () => now); // 1000 bytes/s
    assert.equal(link.reserve(500), 500, "the first 500 bytes take 0.5 s");
    assert.equal(link.reserve(500), 1000, "a second transfer queues behind the first");
    now = 3000;
    assert.equal(link.reserve(100), 100, "an idle link starts afresh");
  });

  it("never waits when no rate is set", () => {
    const link = new SharedLink(() => 0);
    assert.equal(link.reserve(1 << 30), 0);
  });
});

describe("fault rules", () => {
  it("match by path and are used up after `times`", () => {
    const rules = [{ path: "/manifests/missing$", status: 404 }, { path: "/blobs/", status: 429, times: 1 }];
    assert.equal(matchFault(rules, "/v2/a/manifests/missing")?.status, 404);
    assert.equal(matchFault(rules, "/v2/a/blobs/sha256:1")?.status, 429);
    assert.equal(matchFault(rules, "/v2/a/blobs/sha256:1"), undefined, "the 429 served once only");
    assert.equal(matchFault(rules, "/v2/a/manifests/1"), undefined);
  });

  it("are checked before they are used", () => {
    assert.match(validateConfig([]) ?? "", /JSON object/);
    assert.match(validateConfig({ bytesPerSecond: -1 }) ?? "", /bytesPerSecond/);
    assert.match(validateConfig({ faults: [{ path: "(" }] }) ?? "", /faults\[0\]\.path/);
    assert.match(validateConfig({ faults: [{ path: "x", status: 42 }] }) ?? "", /status/);
    assert.equal(validateConfig({ bytesPerSecond: 10, faults: [{ path: "x", status: 401 }] }), undefined);
  });
});

describe("the proxy over HTTP", () => {
  let upstream: http.Server;
  let proxy: http.Server;
  let base: string;
  const body = Buffer.alloc(20_000, 7);

  before(async () => {
    upstream = http.createServer((req, res) => res.writeHead(200, { "x-path": req.url ?? "" }).end(body));
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const up = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    proxy = http.createServer(createRegistryProxy(new URL(up)).handler);
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  after(() => {
    proxy.close();
    upstream.close();
  });

  const get = (path: string): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> =>
    new Promise((resolve, reject) => {
      http.get(base + path, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c)).on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }));
      }).on("error", reject);
    });
  const configure = async (config: unknown): Promise<number> => {
    const res = await fetch(base + CONTROL_PATH, { method: "PUT", body: JSON.stringify(config) });
    await res.text();
    return res.status;
  };

  it("forwards requests and answers whole", async () => {
    const answer = await get("/v2/x/blobs/sha256:abc");
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["x-path"], "/v2/x/blobs/sha256:abc");
    assert.deepEqual(answer.body, body);
  });

  it("serves injected errors and throttles to the configured rate", async () => {
    assert.equal(await configure({ faults: [{ path: "/manifests/", status: 401, times: 1 }] }), 200);
    const denied = await get("/v2/x/manifests/1");
    assert.equal(denied.status, 401);
    assert.match(String(denied.headers["www-authenticate"]), /^Basic /);
    assert.equal((await get("/v2/x/manifests/1")).status, 200, "the rule was for one request");

    assert.equal(await configure({ bytesPerSecond: 40_000 }), 200);
    const started = Date.now();
    assert.deepEqual((await get("/v2/x/blobs/sha256:abc")).body, body);
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds >= 0.4, `20 kB at 40 kB/s took ${seconds}s, expected at least 0.4 s`);
    assert.equal(await configure({}), 200);
  });

  it("holds the first byte of matching answers", async () => {
    assert.equal(await configure({ faults: [{ path: "/blobs/slow", firstByteDelayMs: 300 }] }), 200);
    const started = Date.now();
    assert.equal((await get("/v2/x/blobs/slow")).status, 200);
    assert.ok(Date.now() - started >= 300, "answered after the delay");
    assert.equal(await configure({}), 200);
  });

  it("refuses a malformed configuration and keeps the old one", async () => {
    assert.equal(await configure({ faults: "all" }), 400);
    assert.equal((await get("/v2/x/manifests/1")).status, 200);
  });
});
