import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { isUnavailable } from "../../../src/kube/api-errors.js";
import { withCallTimeout } from "../../../src/kube/request-timeout.js";
import { loopbackKubeConfig } from "../../support/loopback-kubeconfig.js";

describe("API call timeout", () => {
  it("aborts a call the apiserver never answers, as an unavailable-apiserver error", async () => {
    // Accepts connections and says nothing: an apiserver waiting on a lost etcd.
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => void sockets.push(s));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const kc = loopbackKubeConfig(server);
    const apps = withCallTimeout(kc, 300).makeApiClient(k8s.AppsV1Api);
    const started = Date.now();
    const error = await apps.readNamespacedDeployment({ name: "d", namespace: "n" }).then(() => undefined, (e: unknown) => e);
    const took = Date.now() - started;
    for (const s of sockets) s.destroy();
    server.close();
    assert.ok(error, "the call failed");
    assert.ok(took >= 250 && took < 5000, `aborted after ${took} ms: ${(error as Error).message}`);
    assert.equal(isUnavailable(error), true, `retried as unavailable: ${(error as Error).message}`);
  });
});
