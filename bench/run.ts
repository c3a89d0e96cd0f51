// `npm run bench`: runs the benchmarks and writes docs/benchmarks.md. Benchmarks report; they never
// fail a build and are not part of `npm test`.
//   npm run bench [-- --skip admission,api-cost] [--duration 5 --warmup 1] [--nodes 100,1000 --pull-delay 5s]
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../src/local-cluster/binaries.js";
import { benchmarkAdmission } from "./admission.js";
import { measurePrepull, type PrepullRun } from "./api-cost.js";
import { log, machineLine, mebibytes, seconds, table } from "./support/machine.js";

const argument = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] ?? fallback : fallback;
};
const skipped = new Set(argument("skip", "").split(",").filter(Boolean));
const durationSeconds = Number(argument("duration", "5"));
const warmupSeconds = Number(argument("warmup", "1"));

const NOT_MEASURED = "_Not measured yet._";
const verdict = (met: boolean): string => (met ? "**met**" : "**missed**");

async function admissionSection(): Promise<string> {
  if (skipped.has("admission")) return NOT_MEASURED;
  log("admission: kube-prepull and bare HTTPS servers");
  const started = Date.now();
  const result = await benchmarkAdmission({ durationSeconds, warmupSeconds });
  return [
    `Each point: ${warmupSeconds} s warm-up, then ${durationSeconds} s measured with autocannon (keep-alive, TLS 1.3,`,
    "certificate not verified by the load generator) against `POST /mutate/deployments` on 127.0.0.1. The",
    "server runs in its own process (`bench/admission-server.ts`): `kube-prepull` is `startHttpsServer` +",
    "`createAdmissionApp` exactly as `serve` wires them (info logging to /dev/null, metrics on); `bare` is",
    "`https.createServer` with the same TLS and keep-alive settings that reads the body and answers a constant",
    "allowed AdmissionReview; `bare-parse` also `JSON.parse`s the review and answers with its uid (the least",
    "any webhook that reads the review must do). Every review carries the hold annotation, so CREATE and UPDATE get the",
    "hold patch (the real path, not the skip path). Latency resolution is 1 ms (autocannon). Load generator",
    "and server share the machine's CPUs, so absolute numbers are lower than with a separate client machine;",
    "the ratios are the meaningful figures.",
    "",
    result.markdown,
    "",
    `Targets: throughput ≥ 0.8× the bare server's at every point: ${verdict(result.worstRatio >= 0.8)} (worst ${result.worstRatio.toFixed(2)}×);`,
    `p99 ≤ 5 ms at 32 connections for the typical size: ${verdict(result.typicalP99At32 <= 5)} (${result.typicalP99At32} ms).`,
    `Section time: ${((Date.now() - started) / 60_000).toFixed(1)} min.`,
  ].join("\n");
}

const NODE_COUNTS = argument("nodes", "100,1000").split(",").map(Number);
const PULL_DELAY = argument("pull-delay", "5s");
const prepullRuns: PrepullRun[] = [];

const requestTable = (counts: (run: PrepullRun) => Map<string, number>): string => {
  const keys = [...new Set(prepullRuns.flatMap((run) => [...counts(run).keys()]))].sort();
  const total = (run: PrepullRun): number => [...counts(run).values()].reduce((a, b) => a + b, 0);
  return table(["verb resource", ...prepullRuns.map((run) => `${run.nodes} nodes`)], [
    ...keys.map((k) => [k, ...prepullRuns.map((run) => String(counts(run).get(k) ?? 0))]),
    ["**total**", ...prepullRuns.map((run) => `**${total(run)}**`)],
  ]);
};

async function apiCostSection(): Promise<string> {
  if (skipped.has("api-cost")) return NOT_MEASURED;
  for (const nodes of NODE_COUNTS) {
    log(`API cost: one held prepull on ${nodes} nodes`);
    prepullRuns.push(await measurePrepull({ nodes, pullDelay: PULL_DELAY }));
  }
  const perPrepull = (run: PrepullRun): number => [...run.perPrepull.values()].reduce((a, b) => a + b, 0);
  const [fewest, most] = [prepullRuns[0]!, prepullRuns[prepullRuns.length - 1]!];
  const flat = perPrepull(most) <= perPrepull(fewest) * 1.25;
  return [
    "Local cluster (`docs/local-cluster.md`) with N simulated nodes; the apiserver audits (level Metadata)",
    "every request of kube-prepull's ServiceAccount and nothing else. `kube-prepull serve` runs as its own",
    "process with that ServiceAccount's token (`--register --no-leader-elect`). After serve is ready and its",
    "webhook answers, one Deployment (2 images, `hold: \"true\"`) is created and followed until its DaemonSet",
    "is deleted. Counted: distinct audit IDs from serve's user in that window (a watch counts once while",
    `it stays open). Prepull pods simulate a pull of ${PULL_DELAY} (\`sim.kube-prepull.io/pull-delay\`).`,
    "",
    "Requests per prepull:",
    "",
    requestTable((run) => run.perPrepull),
    "",
    prepullRuns.length < 2 ? "Target (the count does not grow with the number of nodes): needs two node counts."
      : `Target: the count does not grow with the number of nodes (${fewest.nodes} → ${most.nodes}): ${verdict(flat)}.`,
    "",
    "Requests at startup (from serve's start until it is ready; once per process, not per prepull):",
    "",
    requestTable((run) => run.startup),
  ].join("\n");
}

function endToEndSection(): Promise<string> {
  if (prepullRuns.length === 0) return Promise.resolve(NOT_MEASURED);
  const names = [...new Set(prepullRuns.flatMap((run) => run.milestones.map(([name]) => name.replace(/\d+ nodes/, "N nodes"))))];
  const at = (run: PrepullRun, name: string): string => {
    const hit = run.milestones.find(([n]) => n.replace(/\d+ nodes/, "N nodes") === name);
    return hit ? seconds(hit[1]) : "not reached";
  };
  return Promise.resolve([
    `Same runs as above: time from the Deployment's CREATE until each milestone was first seen (polled every`,
    `100 ms), simulated pull delay ${PULL_DELAY} per node (kwok adds up to 1 s jitter), then serve's resources.`,
    "",
    table(["milestone", ...prepullRuns.map((run) => `${run.nodes} nodes`)], [
      ...names.map((name) => [name, ...prepullRuns.map((run) => at(run, name))]),
      ["serve peak RSS (whole process: admission + controller)", ...prepullRuns.map((run) => mebibytes(run.servePeakRss))],
      ["serve CPU time (start to end of run)", ...prepullRuns.map((run) => `${run.serveCpuSeconds.toFixed(1)} s`)],
    ]),
  ].join("\n"));
}

const sections: Array<[string, () => Promise<string>]> = [
  ["Admission throughput and latency", admissionSection],
  ["API cost per prepull", apiCostSection],
  ["End-to-end prepull and controller memory", endToEndSection],
];

const parts = [
  "# Benchmarks",
  "",
  "Written by `npm run bench` (builds, then runs `node dist/bench/run.js`); do not edit by hand.",
  "Benchmarks report, they never fail the build and are not part of `npm test`.",
  "",
  machineLine(),
];
for (const [title, section] of sections) {
  parts.push("", `## ${title}`, "", await section());
}
// The hand-written reading of the numbers below this marker survives a re-run.
const ANALYSIS_MARKER = "<!-- hand-written analysis below: kept by npm run bench -->";
const file = path.join(packageRoot(), "docs", "benchmarks.md");
const previous = existsSync(file) ? readFileSync(file, "utf8") : "";
const analysis = previous.includes(ANALYSIS_MARKER) ? previous.slice(previous.indexOf(ANALYSIS_MARKER)) : `${ANALYSIS_MARKER}\n`;
writeFileSync(file, parts.join("\n") + "\n\n" + analysis);
log(`wrote ${file}`);
