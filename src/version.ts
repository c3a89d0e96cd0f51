// kube-prepull's version: the one fact is package.json's "version" (what `npm pack` publishes and
// the images are tagged with); everything else derives from it here.
import { readFileSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "./local-cluster/binaries.js";

/** The version field of a package.json text; a missing or empty one is an error, not "unknown". */
export function versionOf(packageJson: string): string {
  const version = (JSON.parse(packageJson) as { version?: unknown }).version;
  if (typeof version !== "string" || version === "") throw new Error("package.json has no version");
  return version;
}

/** This package's version, e.g. "0.1.0" (read once: package.json ships in the npm package and the image). */
export const VERSION = versionOf(readFileSync(path.join(packageRoot(), "package.json"), "utf8"));

/** The images are tagged v<version>: ghcr.io/kube-prepull/helper:v0.1.0. */
export const IMAGE_TAG = `v${VERSION}`;

/** The image with the static prepull helper this version of kube-prepull was released with. */
export const DEFAULT_HELPER_IMAGE = `ghcr.io/kube-prepull/helper:${IMAGE_TAG}`;
