// What a burst of simultaneous admission calls costs one serve process (docs/benchmarks.md, the
// burst's webhook latency): N typical CREATE reviews sent at once, each on a new TLS connection (as
// an apiserver opens them when N writes arrive together) or on N connections opened before (keep-
// alive), against the kube-prepull admission server of bench/admission-server.ts. Prints a
// Markdown table of the latency each call saw, client side, in rounds that alternate the two.
//   npm run build && node dist/bench/concurrent-reviews.js [--calls 100,200] [--rounds 3]
import https from "node:https";
import { startServer } from "./admission.js";
import { admissionReviewBody } from "./support/admission-reviews.js";
import { log, machineLine, table } from "./support/machine.js";
import { flag } from "./support/flags.js";

const CALLS = flag("calls", "100,200").split(",").map(Number);
const ROUNDS = Number(flag("rounds", "3"));
const BODY = admissionReviewBody("typical", "CREATE");

/** One review; resolves with the milliseconds from sending it to the end of the answer. */
function review(url: URL, agent: https.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const request = https.request(url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(BODY) } }, (response) => {
      response.resume();
      response.on("end", () => resolve(Number(process.hrtime.bigint() - started) / 1e6));
    });
    request.on("error", reject);
    request.end(BODY);
  });
}

/** The latencies of `calls` simultaneous reviews, sorted; `warm`: on connections opened before. */
async function burst(url: URL, calls: number, warm: boolean): Promise<number[]> {
  // The load generator does not verify the server's certificate (as bench/admission.ts).
  const agent = new https.Agent({ keepAlive: warm, maxSockets: Infinity, rejectUnauthorized: false });
  try {
    if (warm) await Promise.all(Array.from({ length: calls }, () => review(url, agent)));
    return (await Promise.all(Array.from({ length: calls }, () => review(url, agent)))).sort((a, b) => a - b);
  } finally {
    agent.destroy();
  }
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

const server = await startServer("kube-prepull");
const rows: string[][] = [];
try {
  const url = new URL(server.url);
  await burst(url, 50, true); // warm-up: JIT, TLS context
  for (const calls of CALLS) {
    for (let round = 0; round < ROUNDS; round++) {
      for (const warm of round % 2 === 0 ? [false, true] : [true, false]) {
        const ms = await burst(url, calls, warm);
        const within = ms.filter((m) => m <= 25).length;
        log(`${calls} calls, ${warm ? "warm" : "new"} connections: p50 ${quantile(ms, 0.5).toFixed(1)} ms, max ${ms.at(-1)!.toFixed(1)} ms`);
        rows.push([String(calls), warm ? "opened before (keep-alive)" : "new TLS connection each", String(round + 1),
          `${quantile(ms, 0.5).toFixed(1)} / ${quantile(ms, 0.99).toFixed(1)} / ${ms.at(-1)!.toFixed(1)}`, `${((100 * within) / calls).toFixed(0)} %`]);
      }
    }
  }
} finally {
  server.child.kill();
}
process.stdout.write([
  `\`node dist/bench/concurrent-reviews.js --calls ${CALLS.join(",")} --rounds ${ROUNDS}\``,
  machineLine(),
  "",
  table(["simultaneous calls", "connections", "round", "latency p50 / p99 / max ms", "within 25 ms"], rows),
  "",
].join("\n"));
