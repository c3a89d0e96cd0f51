// `npm run bench`'s options: --help prints them instead of starting a benchmark of many minutes,
// and a misspelt option stops it before anything runs.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { statSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { parseBenchArguments } from "../../../bench/options.js";
import { packageRoot } from "../../../src/local-cluster/binaries.js";

const RUN = path.join(packageRoot(), "dist", "bench", "run.js");
const BENCHMARKS = path.join(packageRoot(), "docs", "benchmarks.md");

function bench(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RUN, ...args], { env: { PATH: process.env.PATH ?? "" }, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: unknown }).code) : 0, stdout, stderr });
    });
  });
}

describe("bench options", () => {
  it("defaults, values and --scripted-first", () => {
    const parsed = parseBenchArguments(["--skip", "admission,scale", "--nodes=10", "--scripted-first"]);
    assert.equal(parsed.kind, "run");
    if (parsed.kind !== "run") return;
    assert.equal(parsed.value("skip"), "admission,scale");
    assert.equal(parsed.value("nodes"), "10");
    assert.equal(parsed.value("pull-delay"), "5s");
    assert.equal(parsed.scriptedFirst, true);
    const plain = parseBenchArguments([]);
    assert.equal(plain.kind === "run" && plain.scriptedFirst, false);
  });

  it("--help and -h ask for the usage, which names every option", () => {
    for (const flag of ["--help", "-h"]) {
      const parsed = parseBenchArguments(["--skip", "x", flag]);
      assert.equal(parsed.kind, "help");
      if (parsed.kind !== "help") return;
      for (const name of ["--skip", "--nodes", "--scale-nodes", "--real-cpu-limits", "--scripted-first"]) assert.ok(parsed.usage.includes(name), name);
    }
  });

  it("an unknown option, a missing value or a stray argument is an error", () => {
    for (const args of [["--skp", "x"], ["--nodes"], ["admission"]]) {
      const parsed = parseBenchArguments(args);
      assert.equal(parsed.kind, "error", args.join(" "));
    }
  });
});

describe("node dist/bench/run.js", () => {
  it("--help prints the options and exits 0 without running anything", async () => {
    const before = statSync(BENCHMARKS).mtimeMs;
    const { code, stdout, stderr } = await bench("--help");
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^Usage: npm run bench/);
    assert.match(stdout, /--skip <value>/);
    assert.equal(stderr, "", "no benchmark log lines");
    assert.equal(statSync(BENCHMARKS).mtimeMs, before, "docs/benchmarks.md untouched");
  });

  it("exits 2 on an unknown option, naming it", async () => {
    const { code, stdout, stderr } = await bench("--skp", "admission");
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.match(stderr, /Unknown option '--skp'/);
  });
});
