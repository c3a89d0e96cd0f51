// The options of `npm run bench` (bench/run.ts): parsed strictly, so `--help` prints them and an
// unknown or misspelt option stops before a benchmark of many minutes starts. Pure.
import { parseArgs } from "node:util";

/** Each option, its default and what it does: the parser and the usage text come from this one table. */
const OPTIONS = {
  skip: { default: "", help: "sections to leave out, comma-separated: admission, api-cost, scripted, burst, scale, real-node (they keep the previous run's text)" },
  duration: { default: "5", help: "admission: seconds measured per point" },
  warmup: { default: "1", help: "admission: seconds of warm-up per point" },
  nodes: { default: "100,1000", help: "api-cost, scripted, burst: simulated node counts, one cluster each (the burst runs on the largest)" },
  "pull-delay": { default: "5s", help: "simulated pull time per node" },
  "burst-deployments": { default: "100", help: "burst: Deployments changing images at once" },
  pairs: { default: "2", help: "scripted: pairs of kube-prepull and scripted runs" },
  "scale-nodes": { default: "5000", help: "scale: simulated nodes" },
  "scale-deployments": { default: "10000", help: "scale: Deployments serve caches" },
  "scale-hold-timeout": { default: "30m", help: "scale: the held Deployment's kube-prepull.io/hold-timeout (a 5000-node DaemonSet takes longer than the default 10m here)" },
  "real-image-mib": { default: "200", help: "real-node: image size (MiB)" },
  "real-mb-per-second": { default: "25", help: "real-node: registry proxy bandwidth (MB/s)" },
  "real-pairs": { default: "2", help: "real-node: rollouts with and without kube-prepull" },
  "real-cpu-limits": { default: "10m,50m,100m,250m,none", help: "real-node: prepull pod CPU limits to compare" },
  "state-dir": { default: ".cluster", help: "folder for the benchmarks' clusters' state (relative to the checkout)" },
} as const;

export type BenchOption = keyof typeof OPTIONS;

export type BenchArguments =
  | { kind: "help"; usage: string }
  | { kind: "error"; message: string; usage: string }
  | { kind: "run"; value: (name: BenchOption) => string; scriptedFirst: boolean };

export function benchUsage(): string {
  const rows = Object.entries(OPTIONS).map(([name, o]) => `  --${name} <value>`.padEnd(33) + `${o.help}${o.default ? ` (default: ${o.default})` : ""}`);
  return [
    "Usage: npm run bench [-- options]   (or: node dist/bench/run.js [options])",
    "",
    "Runs the benchmarks and rewrites docs/benchmarks.md (12-14 minutes with the defaults). SIGINT or",
    "SIGTERM stops every cluster and process it started, then exits 130 or 143.",
    "",
    "Options:",
    ...rows,
    "  --scripted-first".padEnd(33) + "scripted: run the scripted prepull before kube-prepull's in each pair",
    "  -h, --help".padEnd(33) + "print this and exit",
    "",
  ].join("\n");
}

export function parseBenchArguments(args: string[]): BenchArguments {
  const usage = benchUsage();
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(Object.entries(OPTIONS).map(([name, o]) => [name, { type: "string", default: o.default }])),
        "scripted-first": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    return { kind: "error", message: (error as Error).message, usage };
  }
  const values = parsed.values as Record<string, string | boolean>;
  if (values.help === true) return { kind: "help", usage };
  return { kind: "run", value: (name) => String(values[name]), scriptedFirst: values["scripted-first"] === true };
}
