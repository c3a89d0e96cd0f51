// A kubeconfig for a fake API endpoint a unit test runs on 127.0.0.1 over plain HTTP (client-node
// refuses http:// unless skipTLSVerify is set).
import type { AddressInfo, Server } from "node:net";
import * as k8s from "@kubernetes/client-node";

export function loopbackKubeConfig(server: Server): k8s.KubeConfig {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "loopback", skipTLSVerify: true, server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }],
    users: [{ name: "u" }],
    contexts: [{ name: "c", cluster: "loopback", user: "u" }],
    currentContext: "c",
  });
  return kubeConfig;
}
