// The admission fuzzer: generated AdmissionReviews (cases.ts) sent over HTTPS with keep-alive to
// kube-prepull's admission server running as `serve` runs it in its own process
// (admission-server.ts), each answer judged (oracle.ts), the server's memory measured after a full
// GC at the start, along the way and at the end. A failing case is minimised (steps dropped while it
// still fails) and reported with the seed and index that replay it.
import { spawn, type ChildProcess } from "node:child_process";
import https from "node:https";
import tls from "node:tls";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { buildWire, describeCase, generateCase, type FuzzCase, type Step } from "./cases.js";
import type { Wire } from "./mutations.js";
import { judge, type Answer } from "./oracle.js";

export interface MemorySample {
  afterCases: number;
  heapUsedBytes: number;
  rssBytes: number;
  externalBytes: number;
}

export interface FuzzFailure {
  seed: number;
  index: number;
  reason: string;
  /** The case after minimisation: what it is, and the start of its body. */
  minimised: string;
  body: string;
  replay: string;
}

export interface FuzzReport {
  seed: number;
  count: number;
  seconds: number;
  /** Answers by HTTP status; "aborted": requests the client abandoned on purpose. */
  statuses: Record<string, number>;
  /** Cases by kind and operation of the seed review. */
  kinds: Record<string, number>;
  failures: FuzzFailure[];
  crashed: string | undefined;
  errorLogs: number;
  memory: MemorySample[];
  bytesSent: number;
}

export interface FuzzOptions {
  seed: number;
  count: number;
  concurrency: number;
  /** Progress lines (every 10 %). */
  progress?: (line: string) => void;
  /** Stop after this many distinct failures. */
  maxFailures?: number;
  /** Every case with exactly this one mutation step (a focused run). */
  only?: Pick<Step, "layer" | "name">;
}

interface Target {
  port: number;
  caPem: string;
  agent: https.Agent;
  memory: () => Promise<{ memory: NodeJS.MemoryUsage; errorLogs: number }>;
  exited: () => string | undefined;
  stop: () => Promise<void>;
}

async function startTarget(): Promise<Target> {
  const script = fileURLToPath(new URL("./admission-server.js", import.meta.url));
  const child: ChildProcess = spawn(process.execPath, ["--expose-gc", script], { stdio: ["pipe", "pipe", "inherit"] });
  let exit: string | undefined;
  child.once("exit", (code, signal) => (exit = `the admission server exited (code ${code}, signal ${signal})`));
  const lines: Interface = createInterface({ input: child.stdout! });
  const iterator = lines[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) throw new Error("the admission server exited before listening");
  const { port, caPem } = JSON.parse(first.value) as { port: number; caPem: string };
  const agent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: caPem });
  return {
    port,
    caPem,
    agent,
    memory: async () => {
      child.stdin!.write("memory\n");
      const next = await iterator.next();
      if (next.done) throw new Error(exit ?? "the admission server closed its output");
      return JSON.parse(next.value) as { memory: NodeJS.MemoryUsage; errorLogs: number };
    },
    exited: () => exit,
    stop: async () => {
      agent.destroy();
      if (exit) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.stdin!.end();
      await exited;
    },
  };
}

const ANSWER_TIMEOUT_MS = 30_000;

function send(target: Target, wire: Wire): Promise<Answer | "aborted"> {
  if (wire.abort) return abandon(target, wire);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...wire.headers };
    // Node frames GET and DELETE bodies as chunked only when told to.
    headers[wire.chunked ? "transfer-encoding" : "content-length"] = wire.chunked ? "chunked" : wire.body.length;
    const req = https.request({ host: "127.0.0.1", port: target.port, method: wire.method, path: wire.path, headers, agent: target.agent, timeout: ANSWER_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${ANSWER_TIMEOUT_MS / 1000}s`)));
    req.on("error", reject);
    if (wire.chunked && wire.body.length > 1) {
      const half = Math.floor(wire.body.length / 2);
      req.write(wire.body.subarray(0, half));
      req.end(wire.body.subarray(half));
    } else {
      req.end(wire.body);
    }
  });
}

/** A client that promises a body, sends half of it and goes away (its own TLS connection). */
function abandon(target: Target, wire: Wire): Promise<"aborted"> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port: target.port, ca: target.caPem }, () => {
      const head = `${wire.method} ${wire.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${wire.body.length + 100}\r\n\r\n`;
      socket.write(head);
      socket.write(wire.body.subarray(0, Math.floor(wire.body.length / 2)), () => {
        socket.destroy();
        resolve("aborted");
      });
    });
    socket.on("error", reject);
  });
}

/** The failure of one request, or undefined. */
async function trial(target: Target, wire: Wire): Promise<{ status: string; failure?: string }> {
  try {
    const answer = await send(target, wire);
    if (answer === "aborted") return { status: "aborted" };
    const failure = judge(wire, answer);
    return { status: String(answer.status), ...(failure ? { failure } : {}) };
  } catch (error) {
    return { status: "no answer", failure: target.exited() ?? `no answer: ${(error as Error).message}` };
  }
}

/** Drops steps while the case still fails (any failure), so the report shows what matters. */
async function minimise(target: Target, fuzzCase: FuzzCase): Promise<Step[]> {
  let steps = fuzzCase.steps;
  for (let progress = true; progress && steps.length > 0; ) {
    progress = false;
    for (let i = 0; i < steps.length; i++) {
      const fewer = steps.filter((_, j) => j !== i);
      if (target.exited()) return steps;
      if ((await trial(target, buildWire(fuzzCase, fewer))).failure) {
        steps = fewer;
        progress = true;
        break;
      }
    }
  }
  return steps;
}

async function failureOf(target: Target, fuzzCase: FuzzCase, reason: string): Promise<FuzzFailure> {
  const steps = target.exited() ? fuzzCase.steps : await minimise(target, fuzzCase);
  const wire = buildWire(fuzzCase, steps);
  const text = wire.body.toString("utf8");
  return {
    seed: fuzzCase.seed,
    index: fuzzCase.index,
    reason,
    minimised: `${wire.method} ${wire.path.slice(0, 100)} ${JSON.stringify(wire.headers)}${wire.chunked ? " chunked" : ""}: ${describeCase(fuzzCase, steps)}`,
    body: text.length > 2000 ? `${text.slice(0, 2000)}… (${wire.body.length} bytes)` : text,
    replay: `npm run fuzz -- --seed ${fuzzCase.seed} --case ${fuzzCase.index}`,
  };
}

const sample = (afterCases: number, memory: NodeJS.MemoryUsage): MemorySample => ({
  afterCases,
  heapUsedBytes: memory.heapUsed,
  rssBytes: memory.rss,
  externalBytes: memory.external + memory.arrayBuffers,
});

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const target = await startTarget();
  const started = Date.now();
  const report: FuzzReport = { seed: options.seed, count: 0, seconds: 0, statuses: {}, kinds: {}, failures: [], crashed: undefined, errorLogs: 0, memory: [], bytesSent: 0 };
  const warmup = Math.min(1000, Math.floor(options.count / 10));
  const checkpoints = new Set([warmup, ...Array.from({ length: 10 }, (_, i) => Math.floor(((i + 1) * options.count) / 10))]);
  let next = 0;
  let pausing: Promise<void> | undefined;
  const worker = async (): Promise<void> => {
    while (next < options.count && !report.crashed && report.failures.length < (options.maxFailures ?? 5)) {
      await pausing;
      const index = next++;
      const fuzzCase = generateCase(options.seed, index, options.only);
      const wire = buildWire(fuzzCase);
      report.bytesSent += wire.body.length;
      const kind = `${fuzzCase.kind} ${fuzzCase.operation}`;
      report.kinds[kind] = (report.kinds[kind] ?? 0) + 1;
      const { status, failure } = await trial(target, wire);
      report.statuses[status] = (report.statuses[status] ?? 0) + 1;
      report.count++;
      if (failure) {
        report.crashed = target.exited();
        report.failures.push(await failureOf(target, fuzzCase, failure));
      }
      if (checkpoints.has(report.count) && !report.crashed) {
        pausing = (async () => {
          const { memory } = await target.memory();
          report.memory.push(sample(report.count, memory));
          options.progress?.(`${report.count}/${options.count} cases, ${((Date.now() - started) / 1000).toFixed(0)}s, heap ${(memory.heapUsed / 2 ** 20).toFixed(1)} MiB, rss ${(memory.rss / 2 ** 20).toFixed(0)} MiB`);
        })();
        await pausing;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    report.crashed ??= target.exited();
    if (!report.crashed) report.errorLogs = (await target.memory()).errorLogs;
  } finally {
    report.seconds = (Date.now() - started) / 1000;
    await target.stop();
  }
  return report;
}

/** Replays one case and says what happened (for `npm run fuzz -- --seed S --case I`). */
export async function replayCase(seed: number, index: number): Promise<{ description: string; wire: Wire; result: { status: string; failure?: string } }> {
  const target = await startTarget();
  try {
    const fuzzCase = generateCase(seed, index);
    const wire = buildWire(fuzzCase);
    return { description: describeCase(fuzzCase), wire, result: await trial(target, wire) };
  } finally {
    await target.stop();
  }
}

/**
 * Memory is stable when the heap after a full GC, at every sample after the warm-up, stays within
 * 16 MiB of the heap after the warm-up (what admission keeps between requests is bounded: the
 * image-key cache, metrics), and the RSS within 256 MiB of the warm-up's (RSS also holds freed
 * pages the allocator keeps for the next multi-MiB body, so it is bounded loosely). The highest
 * sample counts, not the last: a cache that is emptied now and then can still grow without bound
 * in between.
 */
export const HEAP_GROWTH_BOUND_BYTES = 16 * 2 ** 20;
export const RSS_GROWTH_BOUND_BYTES = 256 * 2 ** 20;

export function memoryGrowth(report: FuzzReport): { heapBefore: number; heapAfter: number; rssBefore: number; rssAfter: number; bounded: boolean; explanation: string } {
  const first = report.memory[0];
  const highest = (key: "heapUsedBytes" | "rssBytes"): MemorySample | undefined => [...report.memory].sort((a, b) => b[key] - a[key])[0];
  const last = highest("heapUsedBytes");
  const lastRss = highest("rssBytes");
  if (!first || !last || !lastRss) return { heapBefore: 0, heapAfter: 0, rssBefore: 0, rssAfter: 0, bounded: false, explanation: "no memory samples" };
  const heapGrowth = last.heapUsedBytes - first.heapUsedBytes;
  const rssGrowth = lastRss.rssBytes - first.rssBytes;
  const bounded = heapGrowth <= HEAP_GROWTH_BOUND_BYTES && rssGrowth <= RSS_GROWTH_BOUND_BYTES;
  return {
    heapBefore: first.heapUsedBytes,
    heapAfter: last.heapUsedBytes,
    rssBefore: first.rssBytes,
    rssAfter: lastRss.rssBytes,
    bounded,
    explanation: `highest heap +${(heapGrowth / 2 ** 20).toFixed(1)} MiB (bound ${HEAP_GROWTH_BOUND_BYTES / 2 ** 20}), highest rss +${(rssGrowth / 2 ** 20).toFixed(1)} MiB (bound ${RSS_GROWTH_BOUND_BYTES / 2 ** 20})`,
  };
}
