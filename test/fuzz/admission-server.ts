// The fuzzer's target, in its own process so that its memory is its own: kube-prepull's admission
// edge started by startServe as `serve` starts it (HTTPS on 127.0.0.1 with a generated certificate,
// the operations port, logs at info, metrics), without the controller (no cluster is needed:
// admission makes no API call). Prints {"port","caPem","pid"} as one JSON line; then answers each
// "memory" line on stdin with {"memory","errorLogs"} after a full garbage collection (run it with
// --expose-gc). Exits when stdin closes.
//   node --expose-gc dist/test/fuzz/admission-server.js
import { Writable } from "node:stream";
import { createInterface } from "node:readline";
import * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import { startServe } from "../../src/serve.js";

// Error-level log lines ("admission decision failed", "admission request failed" are warn/error):
// counted, not printed; the fuzzer reports them.
let errorLogs = 0;
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    errorLogs += chunk.toString("utf8").match(/"level":(?:50|60)\b/g)?.length ?? 0;
    done();
  },
});

// startServe builds API clients from a kubeconfig; none is used without the controller or --register.
const kubeConfig = new k8s.KubeConfig();
kubeConfig.loadFromOptions({
  clusters: [{ name: "none", server: "https://127.0.0.1:1", skipTLSVerify: false }],
  users: [{ name: "none" }],
  contexts: [{ name: "none", cluster: "none", user: "none" }],
  currentContext: "none",
});

const serve = await startServe({
  kubeConfig,
  host: "127.0.0.1",
  port: 0,
  opsPort: 0,
  controller: {
    pod: { helperImage: "ghcr.io/kube-prepull/helper:v0.1.0", extraLabels: {}, extraAnnotations: {} },
    cleanupTtlSeconds: 900,
    schedulingGraceSeconds: 30,
    maxConcurrentPrepulls: 20,
  },
  runController: false,
  log: pino({ level: "info", base: { component: "kube-prepull" } }, sink),
});
process.stdout.write(JSON.stringify({ port: serve.admissionPort, caPem: serve.caPem, pid: process.pid }) + "\n");

const gc = (globalThis as { gc?: () => void }).gc;
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.trim() !== "memory") return;
  gc?.();
  process.stdout.write(JSON.stringify({ memory: process.memoryUsage(), errorLogs, gc: gc !== undefined }) + "\n");
});
lines.on("close", () => void serve.stop().then(() => process.exit(0)));
