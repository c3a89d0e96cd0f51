// Images for the real node, built without a Docker engine or a base image: layers are tarballs
// of files made here (the static helper binary, random data gzip cannot shrink), assembled and
// pushed to the local registry with crane (github.com/google/go-containerregistry, built with the
// control plane). Every image is pulled by the nodes through the registry proxy.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { IMAGE_TAG } from "../../version.js";
import { packageRoot } from "../binaries.js";

const run = promisify(execFile);

/** The helper image the local registry holds, tagged as the default --helper-image is (src/version.ts). */
export const HELPER_VERSION = IMAGE_TAG;
export type Architecture = "amd64" | "arm64";
/** Names under the local registry of the helper image and the sandbox (pause) image. */
export const HELPER_IMAGE_NAME = `kube-prepull/helper:${HELPER_VERSION}`;
export const PAUSE_IMAGE_NAME = "kube-prepull/pause:3.10";

/** What a test image is made of (spec of the catalogue below). */
export interface ImageRecipe {
  /** Repository and tag under the registry, e.g. "test/app:1". */
  name: string;
  /** One image per platform; more than one (or `index`) makes a manifest list. */
  platforms: Architecture[];
  /** A manifest list even for one platform (how multi-platform builds publish). */
  index?: boolean;
  /** Include the helper binary at /prepull-helper (for that platform). */
  helper?: boolean;
  /** Random bytes per layer (one layer each). */
  randomLayers?: number[];
  entrypoint?: string[];
  cmd?: string[];
  user?: string;
}

/**
 * The images every cluster with real nodes has (docs/local-cluster.md lists them): the helper and
 * the sandbox image, apps for workloads, and shapes the prepull pod must cope with.
 */
export const STANDARD_IMAGES: ImageRecipe[] = [
  { name: HELPER_IMAGE_NAME, platforms: ["amd64", "arm64"], helper: true, user: "65532:65532", entrypoint: ["/prepull-helper"], cmd: ["pause"] },
  { name: PAUSE_IMAGE_NAME, platforms: ["amd64"], helper: true, entrypoint: ["/prepull-helper", "pause"] },
  { name: "test/app:1", platforms: ["amd64"], helper: true, randomLayers: [1 << 20], entrypoint: ["/prepull-helper", "pause"] },
  { name: "test/app:2", platforms: ["amd64"], helper: true, randomLayers: [1 << 20], entrypoint: ["/prepull-helper", "pause"] },
  { name: "test/app:3", platforms: ["amd64"], helper: true, randomLayers: [1 << 20], entrypoint: ["/prepull-helper", "pause"] },
  { name: "test/no-shell:1", platforms: ["amd64"], randomLayers: [64 << 10] },
  { name: "test/user-root:1", platforms: ["amd64"], randomLayers: [64 << 10], user: "root" },
  { name: "test/numeric-user:1", platforms: ["amd64"], randomLayers: [64 << 10], user: "1000:1000" },
  { name: "test/entrypoint:1", platforms: ["amd64"], randomLayers: [64 << 10], entrypoint: ["/bin/sh", "-c"], cmd: ["exit 1"] },
  { name: "test/multi-arch:1", platforms: ["amd64", "arm64"], randomLayers: [64 << 10] },
  // A manifest list with arm64 only: containerd picks by platform there and finds none. (A plain
  // arm64 manifest, not in a list, is pulled by containerd 1.6 on amd64 without a word.)
  // Pulled by no test but the image-volume one (an image already present would not be pulled).
  { name: "test/volume:1", platforms: ["amd64"], randomLayers: [64 << 10] },
  { name: "test/arm64-only:1", platforms: ["arm64"], index: true, randomLayers: [64 << 10] },
];

/** A large image for the pull benchmark: `layers` random layers of `layerBytes` each. */
export function bigImage(name: string, layers: number, layerBytes: number): ImageRecipe {
  return { name, platforms: ["amd64"], helper: true, randomLayers: Array.from({ length: layers }, () => layerBytes), entrypoint: ["/prepull-helper", "pause"] };
}

/** Builds the helper for both architectures into `dir` (helper/build.sh, the Dockerfile's flags). */
export async function buildHelperBinaries(dir: string, env: NodeJS.ProcessEnv): Promise<Record<Architecture, string>> {
  await run("bash", [path.join(packageRoot(), "helper", "build.sh"), HELPER_VERSION, dir], { env });
  return { amd64: path.join(dir, "prepull-helper-linux-amd64"), arm64: path.join(dir, "prepull-helper-linux-arm64") };
}

/** A layer tarball of the files in `root` (owner 0:0, as image layers are). */
async function tarLayer(root: string, out: string): Promise<void> {
  await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "--mtime=@0", "-C", root, "-cf", out, "."]);
}

async function platformImage(crane: string, recipe: ImageRecipe, arch: Architecture, ref: string, work: string, helpers: Record<Architecture, string>): Promise<void> {
  const layers: string[] = [];
  if (recipe.helper) {
    const root = path.join(work, `helper-${arch}`);
    mkdirSync(root, { recursive: true });
    copyFileSync(helpers[arch], path.join(root, "prepull-helper"));
    chmodSync(path.join(root, "prepull-helper"), 0o555);
    layers.push(path.join(work, `helper-${arch}.tar`));
    await tarLayer(root, layers.at(-1)!);
  }
  for (const [i, bytes] of (recipe.randomLayers ?? []).entries()) {
    const root = path.join(work, `data-${arch}-${i}`);
    mkdirSync(root, { recursive: true });
    writeFileSync(path.join(root, `data-${i}.bin`), randomBytes(bytes));
    layers.push(path.join(work, `data-${arch}-${i}.tar`));
    await tarLayer(root, layers.at(-1)!);
  }
  const insecure = ["--insecure"];
  await run(crane, ["append", ...layers.flatMap((l) => ["-f", l]), "-t", ref, ...insecure], { maxBuffer: 1 << 20 });
  const mutate = [
    "mutate", ref, "-t", ref, ...insecure,
    `--set-platform=linux/${arch}`,
    ...(recipe.entrypoint ? [`--entrypoint=${recipe.entrypoint.join(",")}`] : []),
    ...(recipe.cmd ? [`--cmd=${recipe.cmd.join(",")}`] : []),
    ...(recipe.user ? [`--user=${recipe.user}`] : []),
  ];
  await run(crane, mutate, { maxBuffer: 1 << 20 });
}

/** Builds `recipe` and pushes it to `registry` (host:port of the open registry). */
export async function pushImage(options: { crane: string; registry: string; recipe: ImageRecipe; helpers: Record<Architecture, string>; workDir: string }): Promise<string> {
  const { crane, registry, recipe } = options;
  const work = mkdtempSync(path.join(options.workDir, "image-"));
  const ref = `${registry}/${recipe.name}`;
  try {
    if (recipe.platforms.length === 1 && !recipe.index) {
      await platformImage(crane, recipe, recipe.platforms[0]!, ref, work, options.helpers);
      return ref;
    }
    const perPlatform: string[] = [];
    for (const arch of recipe.platforms) {
      const platformRef = `${ref}-${arch}`;
      await platformImage(crane, recipe, arch, platformRef, work, options.helpers);
      perPlatform.push(platformRef);
    }
    await run(crane, ["index", "append", ...perPlatform.flatMap((m) => ["-m", m]), "-t", ref, "--insecure"], { maxBuffer: 1 << 20 });
    return ref;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
