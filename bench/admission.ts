// Admission throughput and latency over TLS on 127.0.0.1 with keep-alive (autocannon): kube-prepull's
// admission server against a bare Node HTTPS server answering a constant AdmissionReview (and one
// that also JSON.parses the review: bare-parse), for three review sizes, CREATE and UPDATE, at 1, 8
// and 32 connections. Each server runs in its own process; this process is the load generator. Returns a Markdown section (bench/run.ts writes it).
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { admissionReviewBody, type ReviewOperation, type ReviewSize } from "./support/admission-reviews.js";
import { log, table } from "./support/machine.js";

const SIZES: ReviewSize[] = ["small", "typical", "large"];
const OPERATIONS: ReviewOperation[] = ["CREATE", "UPDATE"];
const CONNECTIONS = [1, 8, 32];
type ServerKind = "kube-prepull" | "bare-parse" | "bare";

export interface AdmissionBenchOptions {
  durationSeconds: number;
  warmupSeconds: number;
}

interface Point {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  failures: number;
}

export async function startServer(kind: ServerKind): Promise<{ url: string; child: ChildProcess }> {
  const script = fileURLToPath(new URL("./admission-server.js", import.meta.url));
  const child = spawn(process.execPath, [script, kind], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const { port } = JSON.parse(line) as { port: number };
    return { url: `https://127.0.0.1:${port}/mutate/deployments`, child };
  }
  throw new Error(`the ${kind} server exited before listening`);
}

async function measure(url: string, body: string, connections: number, options: AdmissionBenchOptions): Promise<Point> {
  const request = { url, method: "POST", headers: { "content-type": "application/json" }, body, connections };
  await autocannon({ ...request, duration: options.warmupSeconds });
  const result = await autocannon({ ...request, duration: options.durationSeconds });
  return {
    requestsPerSecond: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    failures: result.errors + result.timeouts + result.non2xx,
  };
}

const key = (size: ReviewSize, operation: ReviewOperation, connections: number): string => `${size} ${operation} ${connections}`;

async function measureServer(kind: ServerKind, options: AdmissionBenchOptions): Promise<Map<string, Point>> {
  const { url, child } = await startServer(kind);
  const points = new Map<string, Point>();
  try {
    for (const size of SIZES) {
      for (const operation of OPERATIONS) {
        const body = admissionReviewBody(size, operation);
        for (const connections of CONNECTIONS) {
          const point = await measure(url, body, connections, options);
          log(`${kind} ${size} ${operation} c=${connections}: ${point.requestsPerSecond.toFixed(0)} req/s, p99 ${point.p99} ms`);
          points.set(key(size, operation, connections), point);
        }
      }
    }
  } finally {
    child.kill();
  }
  return points;
}

export async function benchmarkAdmission(options: AdmissionBenchOptions): Promise<{ markdown: string; typicalP99At32: number; worstRatio: number }> {
  const ours = await measureServer("kube-prepull", options);
  const parse = await measureServer("bare-parse", options);
  const bare = await measureServer("bare", options);
  const rows: string[][] = [];
  let worstRatio = Infinity;
  for (const size of SIZES) {
    for (const operation of OPERATIONS) {
      const kib = (Buffer.byteLength(admissionReviewBody(size, operation)) / 1024).toFixed(1);
      for (const connections of CONNECTIONS) {
        const k = key(size, operation, connections);
        const a = ours.get(k)!;
        const p = parse.get(k)!;
        const b = bare.get(k)!;
        const ratio = a.requestsPerSecond / b.requestsPerSecond;
        worstRatio = Math.min(worstRatio, ratio);
        const cells = (point: Point): string[] => [point.requestsPerSecond.toFixed(0), `${point.p50} / ${point.p99} / ${point.max}`];
        rows.push([size, operation, `${kib} KiB`, String(connections), ...cells(a), ...cells(p), ...cells(b),
          `${ratio.toFixed(2)}×`, `${(a.requestsPerSecond / p.requestsPerSecond).toFixed(2)}×`, String(a.failures + p.failures + b.failures)]);
      }
    }
  }
  const markdown = table(
    ["size", "operation", "review", "connections", "kube-prepull req/s", "kube-prepull p50 / p99 / max ms",
      "bare-parse req/s", "bare-parse p50 / p99 / max ms", "bare req/s", "bare p50 / p99 / max ms",
      "kube-prepull / bare", "kube-prepull / bare-parse", "failed requests"],
    rows,
  );
  return { markdown, typicalP99At32: Math.max(...OPERATIONS.map((op) => ours.get(key("typical", op, 32))!.p99)), worstRatio };
}
