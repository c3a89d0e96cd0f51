// `kube-prepull run`'s command line: the real option definitions of the command tree, parsed
// without running anything (the action is replaced), and the exit codes of every ending.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CommanderError, type Command } from "commander";
import { exitCodeOfError, exitCodeOfResult, UsageError } from "../../../src/cli/exit-codes.js";

import { namespaceOf, parseToleration, runSpecOf, type RunFlags } from "../../../src/cli/run-command.js";
import { testProgram } from "../../support/cli.js";

function program(): { program: Command; parsed: () => { images: string[]; flags: RunFlags } | undefined; errors: string[] } {
  const errors: string[] = [];
  const built = testProgram((line) => errors.push(line));
  let parsed: { images: string[]; flags: RunFlags } | undefined;
  built.commands.find((c) => c.name() === "run")!.action((images: string[], flags: RunFlags) => {
    parsed = { images, flags };
  });
  return { program: built, parsed: () => parsed, errors };
}

async function parse(...args: string[]): Promise<{ images: string[]; flags: RunFlags }> {
  const p = program();
  await p.program.parseAsync(["run", ...args], { from: "user" });
  return p.parsed()!;
}

async function usageError(...args: string[]): Promise<{ code: number; errors: string[] }> {
  const p = program();
  const error = await p.program.parseAsync(["run", ...args], { from: "user" }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof CommanderError, `expected a usage error for: run ${args.join(" ")}`);
  return { code: exitCodeOfError(error), errors: p.errors };
}

describe("run: flags", () => {
  it("has the documented defaults: all nodes at once, 10 minutes, text", async () => {
    const { images, flags } = await parse("registry.example/app:v2");
    const spec = runSpecOf(images, flags);
    assert.deepEqual(spec.maxParallel, { kind: "percent", value: 100 });
    assert.equal(spec.timeoutSeconds, 600);
    assert.equal(flags.output, "text");
    assert.deepEqual(spec.placement, {});
    assert.deepEqual(spec.pullSecrets, []);
    assert.equal(spec.pod.helperImage, "ghcr.io/kube-prepull/helper:v0.1.0");
  });

  it("turns every flag into the run's spec", async () => {
    const { images, flags } = await parse(
      "app:1", "registry.example:5000/team/tool:2",
      "-n", "ci", "--context", "prod",
      "--node-selector", "pool=web", "--node-selector", "zone=a",
      "--toleration", "dedicated=web:NoSchedule", "--toleration", "gpu",
      "--pull-secret", "regcred", "--pull-secret", "other",
      "--image-pull-policy", "Always", "--max-parallel", "25%", "--timeout", "1h30m", "-o", "json",
      "--prepull-pod-annotation", "a=b", "--prepull-pod-label", "team=ci", "--priority-class", "low", "--helper-image", "example.com/helper:1",
    );
    assert.deepEqual(images, ["app:1", "registry.example:5000/team/tool:2"]);
    assert.deepEqual([flags.namespace, flags.context, flags.output], ["ci", "prod", "json"]);
    const spec = runSpecOf(images, flags);
    assert.deepEqual(spec.images, [{ image: "app:1", pullPolicy: "Always" }, { image: "registry.example:5000/team/tool:2", pullPolicy: "Always" }]);
    assert.deepEqual(spec.placement, {
      nodeSelector: { pool: "web", zone: "a" },
      tolerations: [{ key: "dedicated", operator: "Equal", value: "web", effect: "NoSchedule" }, { key: "gpu", operator: "Exists" }],
    });
    assert.deepEqual(spec.pullSecrets, ["regcred", "other"]);
    assert.deepEqual(spec.maxParallel, { kind: "percent", value: 25 });
    assert.equal(spec.timeoutSeconds, 5400);
    assert.deepEqual(spec.pod, { helperImage: "example.com/helper:1", extraLabels: { team: "ci" }, extraAnnotations: { a: "b" }, priorityClassName: "low" });
  });

  const mistakes: [string, string[], RegExp][] = [
    ["no image", [], /missing required argument 'image'/],
    ["a max-parallel of 0", ["app:1", "--max-parallel", "0"], /--max-parallel/],
    ["a max-parallel above 100%", ["app:1", "--max-parallel", "150%"], /--max-parallel/],
    ["a timeout that is not a duration", ["app:1", "--timeout", "10"], /--timeout/],
    ["an unknown output format", ["app:1", "-o", "yaml"], /--output/],
    ["a node selector without a value", ["app:1", "--node-selector", "pool"], /key=value/],
    ["a toleration with an unknown effect", ["app:1", "--toleration", "a=b:Sometimes"], /EFFECT/],
    ["an unknown flag", ["app:1", "--nodes", "3"], /unknown option/],
  ];
  for (const [name, args, message] of mistakes) {
    it(`exits 2 with a hint for ${name}`, async () => {
      const { code, errors } = await usageError(...args);
      assert.equal(code, 2);
      assert.match(errors.join("\n"), message);
      assert.match(errors.join("\n"), /see: kube-prepull run --help/);
    });
  }

  it("rejects an invalid image reference as a usage error", async () => {
    const { images, flags } = await parse("Registry.example/UPPER:1");
    assert.throws(() => runSpecOf(images, flags), (error: unknown) => error instanceof UsageError && /must be lowercase/.test(error.message));
  });

  it("parses tolerations as kubectl taint writes taints", () => {
    assert.deepEqual(parseToleration("*"), [{ operator: "Exists" }]);
    assert.deepEqual(parseToleration("k:NoExecute"), [{ key: "k", operator: "Exists", effect: "NoExecute" }]);
    assert.deepEqual(parseToleration("k="), [{ key: "k", operator: "Equal", value: "" }]);
    assert.throws(() => parseToleration("=v"));
  });

  it("runs in --namespace, else the context's namespace, else default", () => {
    assert.equal(namespaceOf("ci", "team"), "ci");
    assert.equal(namespaceOf(undefined, "team"), "team");
    assert.equal(namespaceOf(undefined, undefined), "default");
  });
});

describe("exit codes", () => {
  it("give each ending its own code", () => {
    const codes = (["succeeded", "failed", "timed-out", "error", "interrupted"] as const).map((r) => exitCodeOfResult(r, "SIGINT"));
    assert.deepEqual(codes, [0, 3, 4, 5, 130]);
    assert.equal(exitCodeOfResult("interrupted", "SIGTERM"), 143);
  });
  it("give help 0, usage errors 2 and unexpected errors 1", () => {
    assert.equal(exitCodeOfError(new CommanderError(0, "commander.helpDisplayed", "")), 0);
    assert.equal(exitCodeOfError(new CommanderError(1, "commander.unknownOption", "")), 2);
    assert.equal(exitCodeOfError(new UsageError("x")), 2);
    assert.equal(exitCodeOfError(new Error("bug")), 1);
  });
});
