// The server side of bench/admission.ts, in its own process so that it does not share a thread with
// the load generator. `kube-prepull`: createAdmissionApp on startHttpsServer exactly as startServe
// wires them (logs at info, silenced to /dev/null; metrics recorded). `bare`: a plain Node HTTPS
// server with the same TLS and keep-alive settings answering a constant "allowed" AdmissionReview
// after reading the body (the runtime's limit). `bare-parse`: the same, but it JSON.parses the body
// and answers with its uid (the least any webhook that reads the review must do). `express-parse`
// (by hand only, not in the tables): bare-parse written with express and express.json(), to tell
// the framework's cost from kube-prepull's own. Prints {"port","pid"} as one JSON line.
//   node dist/bench/admission-server.js kube-prepull|bare|bare-parse|express-parse
import https from "node:https";
import express from "express";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { createMetrics } from "../src/observability/metrics.js";
import { generateLocalTls } from "../src/serve.js";
import { createAdmissionApp } from "../src/server/admission-app.js";
import { startHttpsServer } from "../src/server/servers.js";

const HOST = "127.0.0.1";
const kind = process.argv[2];
const tls = generateLocalTls(HOST, new Date());

const allowedReview = (uid: string): object => ({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid, allowed: true } });
const allowed = (uid: string): string => JSON.stringify(allowedReview(uid));

async function startBare(parse: boolean): Promise<number> {
  const constant = allowed("705ab4f5-6393-11e8-b7cc-42010a800002");
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem, minVersion: "TLSv1.2" }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => void (parse && chunks.push(chunk)));
    req.on("end", () => {
      const body = parse ? allowed((JSON.parse(Buffer.concat(chunks).toString("utf8")) as { request: { uid: string } }).request.uid) : constant;
      res.writeHead(200, { "Content-Type": "application/json" }).end(body);
    });
  });
  server.keepAliveTimeout = 90_000;
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as AddressInfo).port;
}

async function startExpressParse(): Promise<number> {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.post("/mutate/deployments", express.json({ limit: "8mb" }), (req, res) => {
    res.status(200).json(allowedReview((req.body as { request: { uid: string } }).request.uid));
  });
  return (await startHttpsServer(app, { host: HOST, port: 0, tls })).port;
}

async function startKubePrepull(): Promise<number> {
  // As startServe: info level, the same metrics registry (default metrics on); output discarded.
  const log = pino({ level: "info", base: { component: "kube-prepull" } }, pino.destination("/dev/null"));
  const app = createAdmissionApp({ log, metrics: createMetrics({ defaultMetrics: true }), now: () => new Date() });
  return (await startHttpsServer(app, { host: HOST, port: 0, tls })).port;
}

const starters: Record<string, () => Promise<number>> = {
  "kube-prepull": startKubePrepull,
  "bare": () => startBare(false),
  "bare-parse": () => startBare(true),
  "express-parse": startExpressParse,
};
const start = kind === undefined ? undefined : starters[kind];
if (!start) throw new Error(`usage: admission-server.js ${Object.keys(starters).join("|")}`);
const port = await start();
process.stdout.write(JSON.stringify({ port, pid: process.pid }) + "\n");
// Exit with the load generator, even when it is killed: it holds our stdin open.
process.stdin.on("end", () => process.exit(0)).resume();
