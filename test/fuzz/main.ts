// `npm run fuzz`: the admission fuzzer at full length (100,000 cases by default), or one case.
//   npm run fuzz -- [--count N] [--seed S] [--concurrency C]
//   npm run fuzz -- --seed S --case I      replays case I of the run with seed S
// Prints the seed first (a random one unless given), progress every 10 %, then the figures as JSON;
// exits 1 on any failure (a 5xx, no answer, a crash, a wrong answer) or unbounded memory growth.
import { parseArgs } from "node:util";
import { memoryGrowth, runFuzz, replayCase, type FuzzReport } from "./admission-fuzz.js";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "100000" },
    seed: { type: "string" },
    concurrency: { type: "string", default: "4" },
    case: { type: "string" },
  },
});
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 32);
if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`--seed must be a whole number below 2^32, got ${values.seed}`);
console.log(`seed ${seed}`);

if (values.case !== undefined) {
  const { description, wire, result } = await replayCase(seed, Number(values.case));
  const text = wire.body.toString("utf8");
  console.log(`${wire.method} ${wire.path} ${JSON.stringify(wire.headers)}${wire.chunked ? " chunked" : ""}${wire.abort ? " (client goes away)" : ""}: ${description}`);
  console.log(text.length > 4000 ? `${text.slice(0, 4000)}… (${wire.body.length} bytes)` : text);
  console.log(result);
  process.exit(result.failure ? 1 : 0);
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const report: FuzzReport = await runFuzz({ seed, count: Number(values.count), concurrency: Number(values.concurrency), progress: (line) => console.log(line) });
const growth = memoryGrowth(report);
console.log(JSON.stringify({ ...report, memory: report.memory.map((m) => ({ afterCases: m.afterCases, heapUsed: mib(m.heapUsedBytes), rss: mib(m.rssBytes), external: mib(m.externalBytes) })) }, null, 2));
console.log(`${report.count} cases in ${report.seconds.toFixed(0)}s (${(report.count / report.seconds).toFixed(0)}/s, ${mib(report.bytesSent)} sent); answers ${JSON.stringify(report.statuses)}; ` +
  `heap after GC ${mib(growth.heapBefore)} after the warm-up, at most ${mib(growth.heapAfter)}; rss ${mib(growth.rssBefore)}, at most ${mib(growth.rssAfter)}; ${report.failures.length} failures${report.crashed ? `; CRASHED: ${report.crashed}` : ""}`);
for (const failure of report.failures) console.log(`FAILED: ${failure.reason}\n  ${failure.minimised}\n  replay: ${failure.replay}\n  body: ${failure.body}`);
if (!growth.bounded) console.log(`FAILED: memory grew beyond the bound: ${growth.explanation}`);
process.exit(report.failures.length > 0 || report.crashed || !growth.bounded ? 1 : 0);
