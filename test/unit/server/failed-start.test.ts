// A `serve` whose start fails after its servers listen (here: leader election cannot reach the
// apiserver) closes them, so the process exits with the error instead of lingering half-started
// (found by the chaos soak: a replica started during an apiserver outage never served nor exited).
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import { startServe } from "../../../src/serve.js";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const refused = (port: number): Promise<boolean> => new Promise((resolve) => {
  const socket = net.connect(port, "127.0.0.1");
  socket.once("connect", () => (socket.destroy(), resolve(false)));
  socket.once("error", () => resolve(true));
});

describe("serve start that fails", () => {
  it("rejects with the apiserver's error and leaves no server listening", async () => {
    const [port, opsPort, apiserverPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromOptions({ clusters: [{ name: "down", server: `https://127.0.0.1:${apiserverPort}` }], users: [{ name: "u" }], contexts: [{ name: "c", cluster: "down", user: "u" }], currentContext: "c" });
    await assert.rejects(startServe({
      kubeConfig, host: "127.0.0.1", port, opsPort, runController: true,
      leaderElection: { namespace: "kube-prepull", name: "kube-prepull" },
      controller: { pod: { helperImage: "h", extraLabels: {}, extraAnnotations: {} }, cleanupTtlSeconds: 1, schedulingGraceSeconds: 1, maxConcurrentPrepulls: 1 },
      log: pino({ level: "silent" }),
    }), /leader election: cannot use Leases/);
    assert.equal(await refused(port), true, "the admission port is closed");
    assert.equal(await refused(opsPort), true, "the ops port is closed");
  });
});
