// A renewed serving certificate is served without a restart, and a broken one never replaces a
// good one. startServe with neither controller nor registration makes no Kubernetes call.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { connect } from "node:tls";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import { generateLocalTls, startServe } from "../../../src/serve.js";
import type { TlsMaterial } from "../../../src/server/servers.js";

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on("error", reject);
  });
}
const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256;

describe("serving certificate reload", () => {
  it("serves a renewed certificate without a restart and keeps the old one when the new pair is broken", async () => {
    const first = generateLocalTls("127.0.0.1", new Date());
    const second = generateLocalTls("127.0.0.1", new Date());
    let current: TlsMaterial = first;
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromOptions({ clusters: [{ name: "none", server: "https://127.0.0.1:1" }], users: [{ name: "none" }], contexts: [{ name: "none", cluster: "none", user: "none" }], currentContext: "none" });
    const running = await startServe({
      kubeConfig, host: "127.0.0.1", port: 0, opsPort: 0, tls: first, runController: false,
      tlsReload: { load: () => current, intervalMs: 50 },
      controller: { pod: { helperImage: "h", extraLabels: {}, extraAnnotations: {} }, cleanupTtlSeconds: 1, schedulingGraceSeconds: 1, maxConcurrentPrepulls: 1 },
      log: pino({ level: "silent" }),
    });
    try {
      const wait = async (expected: string): Promise<void> => {
        for (let i = 0; i < 100 && (await servedFingerprint(running.admissionPort)) !== expected; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(await servedFingerprint(running.admissionPort), expected);
      };
      await wait(fingerprintOf(first.certPem));
      current = second;
      await wait(fingerprintOf(second.certPem));
      current = { certPem: first.certPem, keyPem: second.keyPem }; // mismatched, as during a half-written update
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await servedFingerprint(running.admissionPort), fingerprintOf(second.certPem));
    } finally {
      await running.stop();
    }
  });
});
