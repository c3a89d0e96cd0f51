// Listening: the admission handler over HTTPS (certificate swappable without restart) and the
// plain-HTTP operations endpoints (/healthz, /readyz, /metrics) on their own port.
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { RequestListener } from "node:http";
import type { Registry } from "prom-client";

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
}

export interface RunningServer {
  port: number;
  close: () => Promise<void>;
}

export interface RunningHttpsServer extends RunningServer {
  /** Serves new connections with this certificate from now on (rotation without restart). */
  setCertificate: (tls: TlsMaterial) => void;
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

/** Stops accepting, lets requests in flight finish for up to `graceMs`, then drops every connection
 * (the apiserver's keep-alive connections would otherwise hold close() open for 90 s). */
function closer(server: http.Server, graceMs = 1000): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), graceMs).unref();
    });
}

export async function startHttpsServer(
  handler: RequestListener,
  options: { host: string; port: number; tls: TlsMaterial },
): Promise<RunningHttpsServer> {
  const server = https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem, minVersion: "TLSv1.2" }, handler);
  // The apiserver keeps connections to webhooks alive; Node's 5 s default makes it hit closed
  // sockets ("EOF", connection reset). Pepr uses 90 s / 32 s (pepr PR #3056).
  server.keepAliveTimeout = 90_000;
  server.headersTimeout = 32_000;
  server.requestTimeout = 30_000;
  const port = await listen(server, options.host, options.port);
  return {
    port,
    close: closer(server),
    setCertificate: (tls) => server.setSecureContext({ cert: tls.certPem, key: tls.keyPem }),
  };
}

export async function startOpsServer(options: {
  host: string;
  port: number;
  registry: Registry;
  isReady: () => boolean;
}): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET") {
      res.writeHead(405).end();
    } else if (path === "/healthz") {
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    } else if (path === "/readyz") {
      const ready = options.isReady();
      res.writeHead(ready ? 200 : 503, { "Content-Type": "text/plain" }).end(ready ? "ok" : "not ready");
    } else if (path === "/metrics") {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { "Content-Type": options.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found: /healthz, /readyz, /metrics");
    }
  });
  const port = await listen(server, options.host, options.port);
  return { port, close: closer(server) };
}
