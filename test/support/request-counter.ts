// Every API request a client makes, counted at the client's side: an HTTPS proxy on 127.0.0.1 in
// front of the test cluster's apiserver (its own certificate, trusted by the kubeconfig it writes)
// that forwards each request with the test kubeconfig's credentials and streams the answer back
// (watches included). Unlike bench/support/byte-counter.ts (a TCP relay), it sees each request's
// verb and path: the cost of a failing reconcile in requests, for the error-path tests.
import { writeFileSync } from "node:fs";
import https from "node:https";
import type net from "node:net";
import path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { generateLocalTls } from "../../src/serve.js";
import { testKubeConfig } from "./cluster.js";

export interface CountedRequest {
  method: string;
  /** The path without the query. */
  path: string;
  at: number;
}

export interface RequestCounter {
  /** A kubeconfig file (in `dir`) whose server is this proxy. */
  kubeconfig: string;
  requests: () => CountedRequest[];
  stop: () => Promise<void>;
}

/** `token`: forward as this bearer token (a ServiceAccount's) instead of the test kubeconfig's user. */
export async function startRequestCounter(dir: string, options: { token?: string } = {}): Promise<RequestCounter> {
  const kc = testKubeConfig();
  const upstream = new URL(kc.getCurrentCluster()!.server);
  const applied: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(applied);
  // The apiserver's CA always; the test user's client certificate unless a token replaces it.
  const credentials: https.RequestOptions = options.token ? { ca: applied.ca } : { ca: applied.ca, cert: applied.cert, key: applied.key };
  const auth = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const requests: CountedRequest[] = [];
  const tls = generateLocalTls("127.0.0.1", new Date());
  const sockets = new Set<net.Socket>();
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (request, response) => {
    requests.push({ method: request.method ?? "", path: (request.url ?? "").split("?")[0]!, at: Date.now() });
    const forwarded = https.request({
      ...credentials,
      host: upstream.hostname,
      port: upstream.port,
      method: request.method,
      path: request.url,
      headers: { ...request.headers, ...auth, host: upstream.host },
    }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    forwarded.on("error", () => response.destroy());
    response.on("close", () => forwarded.destroy());
    request.pipe(forwarded);
  });
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;

  const proxied = new k8s.KubeConfig();
  proxied.loadFromOptions({
    clusters: [{ name: "counted", server: `https://127.0.0.1:${port}`, caData: Buffer.from(tls.caPem).toString("base64") }],
    users: [{ name: "counted" }],
    contexts: [{ name: "counted", cluster: "counted", user: "counted" }],
    currentContext: "counted",
  });
  const kubeconfig = path.join(dir, "counted-kubeconfig");
  writeFileSync(kubeconfig, proxied.exportConfig(), { mode: 0o600 });
  return {
    kubeconfig,
    requests: () => [...requests],
    stop: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
