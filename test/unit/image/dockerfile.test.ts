// The Dockerfile, checked without a Docker engine (run by tools/image/lint-dockerfile.sh and the
// unit suite). dockerfile-utils (tools/image/lint-dockerfile.sh) validates the syntax; these are the
// rules it lacks from BuildKit's `docker build --check` and hadolint, and the project's own: the
// targets, the helper build matching helper/build.sh, and the webhook layout that
// tools/image/verify-webhook-layout.sh reproduces.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../../src/local-cluster/binaries.js";

interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

interface Stage {
  line: number;
  flags: string[];
  image: string;
  name: string | undefined;
  asKeyword: string | undefined;
  instructions: Instruction[];
}

interface Dockerfile {
  globalArgs: string[];
  preamble: Instruction[];
  stages: Stage[];
}

// Enough of the Dockerfile grammar for these rules (the default escape character, no heredocs);
// dockerfile-utils checks the syntax itself.
function parse(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending: Instruction | undefined;
  text.split("\n").forEach((raw, index) => {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line) || (pending === undefined && line.trim() === "")) return;
    const continued = line.endsWith("\\");
    const body = continued ? line.slice(0, -1) : line;
    if (pending === undefined) {
      const match = /^\s*(\S+)\s*(.*)$/.exec(body);
      pending = { line: index + 1, keyword: (match?.[1] ?? "").toUpperCase(), args: match?.[2] ?? "" };
    } else {
      pending.args += " " + body.trim();
    }
    if (!continued) {
      pending.args = pending.args.trim();
      instructions.push(pending);
      pending = undefined;
    }
  });
  if (pending !== undefined) instructions.push(pending);

  const dockerfile: Dockerfile = { globalArgs: [], preamble: [], stages: [] };
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const words = instruction.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith("--"));
      const [image = "", asKeyword, name] = words.filter((w) => !w.startsWith("--"));
      dockerfile.stages.push({ line: instruction.line, flags, image, name, asKeyword, instructions: [] });
    } else if (dockerfile.stages.length === 0) {
      dockerfile.preamble.push(instruction);
      if (instruction.keyword === "ARG") dockerfile.globalArgs.push(...argsOf(instruction).map((a) => a.name));
    } else {
      dockerfile.stages.at(-1)!.instructions.push(instruction);
    }
  }
  return dockerfile;
}

// BuildKit's automatic platform ARGs, usable in FROM without a declaration.
const PLATFORM_ARGS = ["BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT", "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT"];

// `ARG A B=1` -> [{ name: "A" }, { name: "B", value: "1" }]
const argsOf = (instruction: Instruction): Array<{ name: string; value?: string }> =>
  instruction.args.split(/\s+/).filter(Boolean).map((word) => {
    const eq = word.indexOf("=");
    return eq < 0 ? { name: word } : { name: word.slice(0, eq), value: word.slice(eq + 1) };
  });

const variables = (text: string): string[] => [...text.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);

// `COPY --from=build a b` -> { from: "build", sources: ["a"], destination: "b" }; JSON form too.
function copyOf(instruction: Instruction): { from: string | undefined; sources: string[]; destination: string } {
  const words = instruction.args.trim().startsWith("[")
    ? (JSON.parse(instruction.args) as string[])
    : instruction.args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith("--"));
  const paths = words.filter((w) => !w.startsWith("--"));
  const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
  return { from, sources: paths.slice(0, -1), destination: paths.at(-1) ?? "" };
}

// Rules of BuildKit's `docker build --check` and hadolint that dockerfile-utils does not apply.
function lint(dockerfile: Dockerfile): string[] {
  const problems: string[] = [];
  // A default on an automatic platform ARG replaces BuildKit's value for every target platform
  // (a multi-platform build then compiles one architecture for all): declare it bare.
  for (const instruction of [...dockerfile.preamble, ...dockerfile.stages.flatMap((s) => s.instructions)]) {
    if (instruction.keyword !== "ARG") continue;
    for (const arg of argsOf(instruction)) {
      if (PLATFORM_ARGS.includes(arg.name) && arg.value !== undefined) {
        problems.push(`line ${instruction.line}: ARG ${arg.name}=${arg.value} overrides BuildKit's automatic value: declare ARG ${arg.name} without one`);
      }
    }
  }
  const stagesSoFar: string[] = [];
  for (const stage of dockerfile.stages) {
    const at = `line ${stage.line}`;
    // hadolint DL3006/DL3007: a pinned, non-latest tag (or a digest), scratch, or an earlier stage.
    const image = stage.image;
    if (image !== "scratch" && !stagesSoFar.includes(image) && variables(image).length === 0) {
      const tag = /^(?:[^/]+\/)*[^/:@]+(?::([^@]+))?(?:@sha256:[0-9a-f]{64})?$/.exec(image);
      if (tag === null) problems.push(`${at}: cannot read the image reference ${image}`);
      else if (tag[1] === undefined && !image.includes("@")) problems.push(`${at}: ${image} has no tag (DL3006)`);
      else if (tag[1] === "latest") problems.push(`${at}: ${image} uses the latest tag (DL3007)`);
    }
    // BuildKit UndefinedArgInFrom.
    for (const name of variables([image, ...stage.flags].join(" "))) {
      if (!dockerfile.globalArgs.includes(name) && !PLATFORM_ARGS.includes(name)) {
        problems.push(`${at}: FROM uses $${name}, not an ARG declared before the first FROM (UndefinedArgInFrom)`);
      }
    }
    // BuildKit FromPlatformFlagConstDisallowed and RedundantTargetPlatform.
    for (const flag of stage.flags.filter((f) => f.startsWith("--platform="))) {
      const value = flag.slice("--platform=".length);
      if (!/^\$\{?BUILDPLATFORM\}?$/.test(value)) {
        problems.push(`${at}: FROM ${flag}: only $BUILDPLATFORM (a build stage run natively) belongs here`);
      }
    }
    // BuildKit StageNameCasing, FromAsCasing, DuplicateStageName.
    if (stage.name !== undefined) {
      if (stage.asKeyword !== "AS") problems.push(`${at}: write "AS" in upper case like FROM (FromAsCasing)`);
      if (stage.name !== stage.name.toLowerCase()) problems.push(`${at}: stage name ${stage.name} is not lower case (StageNameCasing)`);
      if (stagesSoFar.includes(stage.name)) problems.push(`${at}: stage ${stage.name} defined twice (DuplicateStageName)`);
      stagesSoFar.push(stage.name);
    }
    const earlier = stage.name === undefined ? stagesSoFar : stagesSoFar.slice(0, -1);
    const index = dockerfile.stages.indexOf(stage);
    for (const instruction of stage.instructions) {
      const here = `line ${instruction.line}`;
      // Copying from an image rather than a stage hides a dependency: name it in a FROM.
      if (instruction.keyword === "COPY" || instruction.keyword === "ADD") {
        const { from } = copyOf(instruction);
        const isEarlier = from === undefined || earlier.includes(from) || (/^\d+$/.test(from) && Number(from) < index);
        if (!isEarlier) problems.push(`${here}: ${instruction.keyword} --from=${from} names no earlier stage`);
      }
      // BuildKit JSONArgsRecommended, hadolint DL3025.
      if ((instruction.keyword === "ENTRYPOINT" || instruction.keyword === "CMD") && !isJsonArray(instruction.args)) {
        problems.push(`${here}: ${instruction.keyword} in shell form: use the JSON (exec) form (JSONArgsRecommended)`);
      }
    }
  }
  return problems;
}

function isJsonArray(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) && value.every((v) => typeof v === "string");
  } catch {
    return false;
  }
}

const root = packageRoot();
const dockerfile = parse(readFileSync(path.join(root, "Dockerfile"), "utf8"));
const stage = (name: string): Stage => {
  const found = dockerfile.stages.find((s) => s.name === name);
  assert.ok(found, `the Dockerfile has no stage ${name}`);
  return found;
};
const all = (s: Stage, keyword: string): Instruction[] => s.instructions.filter((i) => i.keyword === keyword);
const last = (s: Stage, keyword: string): string | undefined => all(s, keyword).at(-1)?.args;

describe("Dockerfile", () => {
  it("keeps BuildKit's and hadolint's rules that dockerfile-utils does not check", () => {
    assert.deepEqual(lint(dockerfile), []);
  });

  it("builds the two targets it documents, webhook by default, both as uid/gid 65532", () => {
    assert.equal(dockerfile.stages.at(-1)?.name, "webhook", "the last stage is the default target");
    for (const name of ["helper", "webhook"]) {
      // manifests run these with runAsNonRoot and runAsUser 65532: a numeric non-root USER.
      assert.equal(last(stage(name), "USER"), "65532:65532", `${name}: USER`);
      assert.ok(isJsonArray(last(stage(name), "ENTRYPOINT") ?? ""), `${name}: ENTRYPOINT`);
    }
    assert.equal(stage("helper").image, "scratch");
  });

  it("builds the helper from every file and with the flags helper/build.sh verifies", () => {
    const build = stage("helper-build");
    const copied = all(build, "COPY").flatMap((i) => copyOf(i).sources).sort();
    const helperDir = path.join(root, "helper");
    const needed = readdirSync(helperDir)
      .filter((f) => f === "go.mod" || f === "go.sum" || (f.endsWith(".go") && !f.endsWith("_test.go")))
      .map((f) => `helper/${f}`)
      .sort();
    assert.deepEqual(copied, needed, "COPY into helper-build: the module files and every non-test .go file");
    const run = all(build, "RUN").map((i) => i.args).join(" ");
    const script = readFileSync(path.join(helperDir, "build.sh"), "utf8");
    for (const part of ["CGO_ENABLED=0", "go build -trimpath -buildvcs=false", '-ldflags "-s -w -X main.version=$']) {
      assert.ok(run.includes(part), `helper-build RUN lacks ${part}`);
      assert.ok(script.includes(part), `helper/build.sh lacks ${part}`);
    }
    // An older Go image than go.mod asks for would fetch a toolchain during the build.
    const goMod = /^go (\d+)\.(\d+)/m.exec(readFileSync(path.join(helperDir, "go.mod"), "utf8"));
    const goImage = /^golang:(\d+)\.(\d+)/.exec(build.image);
    assert.ok(goMod && goImage, `go.mod go line and ${build.image}`);
    assert.ok(Number(goImage[1]) * 1000 + Number(goImage[2]) >= Number(goMod[1]) * 1000 + Number(goMod[2]), `${build.image} is older than go.mod's go ${goMod[1]}.${goMod[2]}`);
  });

  it("lays out the webhook image as tools/image/verify-webhook-layout.sh reproduces it", () => {
    const build = stage("build");
    assert.equal(last(build, "WORKDIR"), "/src");
    assert.deepEqual(
      all(build, "COPY").map((i) => copyOf(i)),
      [
        { from: undefined, sources: ["package.json", "package-lock.json"], destination: "./" },
        { from: undefined, sources: ["tsconfig.json", "tsconfig.build.json"], destination: "./" },
        { from: undefined, sources: ["src"], destination: "./src" },
      ],
    );
    const run = all(build, "RUN").map((i) => i.args).join(" && ");
    assert.match(run, /npm ci\b.*tsc -p tsconfig\.build\.json.*npm prune --omit=dev/);

    const webhook = stage("webhook");
    assert.equal(last(webhook, "WORKDIR"), "/app");
    assert.deepEqual(
      all(webhook, "COPY").map((i) => copyOf(i)),
      [
        { from: "build", sources: ["/src/package.json"], destination: "./" },
        { from: "build", sources: ["/src/node_modules"], destination: "./node_modules" },
        { from: "build", sources: ["/src/dist/src"], destination: "./dist/src" },
      ],
    );
    const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { bin: Record<string, string>; engines: { node: string } };
    const entrypoint = JSON.parse(last(webhook, "ENTRYPOINT") ?? "[]") as string[];
    assert.equal(entrypoint.at(-1), pkg.bin["kube-prepull"], "ENTRYPOINT runs the package's bin");
    assert.deepEqual(JSON.parse(last(webhook, "CMD") ?? "[]"), ["serve"]);

    // The build stage compiles on the Node major the image runs, one package.json allows.
    const buildNode = /^node:(\d+)-/.exec(build.image)?.[1];
    const runNode = /\/nodejs(\d+)-/.exec(webhook.image)?.[1];
    assert.ok(buildNode !== undefined && buildNode === runNode, `build stage ${build.image}, runtime ${webhook.image}`);
    const minimum = /^>=\s*(\d+)/.exec(pkg.engines.node)?.[1];
    assert.ok(minimum !== undefined && Number(runNode) >= Number(minimum), `Node ${runNode} vs engines ${pkg.engines.node}`);
  });

  it("the rules find what they look for", () => {
    const problems = (text: string): string[] => lint(parse(text));
    const modern = [
      "# syntax=docker/dockerfile:1",
      "ARG BASE=node:24-slim",
      "FROM --platform=$BUILDPLATFORM golang:1.24 AS tools",
      "ARG TARGETARCH",
      "RUN --mount=type=cache,target=/root/.cache \\",
      "    echo $TARGETARCH",
      "FROM ${BASE} AS app",
      "COPY --from=tools --chown=65532:65532 /out /app",
      "FROM gcr.io/distroless/static@sha256:" + "a".repeat(64),
      "COPY --from=app /app /app",
      'ENTRYPOINT ["/app/run"]',
    ].join("\n");
    assert.deepEqual(problems(modern), []);
    const cases: Array<[string, RegExp]> = [
      ["FROM node\n", /no tag/],
      ["FROM node:latest\n", /latest/],
      ["FROM node:${V}\nARG V=24\n", /UndefinedArgInFrom/],
      ["FROM --platform=linux/amd64 node:24\n", /BUILDPLATFORM/],
      ["FROM --platform=$TARGETPLATFORM node:24\n", /BUILDPLATFORM/],
      ["FROM node:24 as build\n", /FromAsCasing/],
      ["FROM node:24 AS Build\n", /StageNameCasing/],
      ["FROM node:24 AS b\nFROM node:24 AS b\n", /DuplicateStageName/],
      ["FROM node:24 AS b\nCOPY --from=nginx:1 /a /b\n", /names no earlier stage/],
      ["FROM node:24 AS b\nCOPY --from=b /a /b\n", /names no earlier stage/],
      ["FROM node:24\nENTRYPOINT node main.js\n", /JSONArgsRecommended/],
      ["FROM node:24\nCMD serve\n", /JSONArgsRecommended/],
      ["FROM --platform=$BUILDPLATFORM golang:1.24 AS b\nARG TARGETARCH=amd64\n", /overrides BuildKit's automatic value/],
      ["ARG TARGETOS=linux\nFROM node:24\n", /overrides BuildKit's automatic value/],
      ["FROM node:24\nARG TARGETOS TARGETARCH=arm64\n", /ARG TARGETARCH=arm64 overrides/],
    ];
    for (const [text, expected] of cases) {
      const found = problems(text);
      assert.ok(found.some((p) => expected.test(p)), `${JSON.stringify(text)}: ${JSON.stringify(found)}`);
    }
  });
});
