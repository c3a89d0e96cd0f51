// One version: package.json's. The CLI, the default helper image, the image builds and the metrics follow it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { HELPER_IMAGE_NAME } from "../../src/local-cluster/real-node/images.js";
import { createMetrics } from "../../src/observability/metrics.js";
import { DEFAULT_HELPER_IMAGE, IMAGE_TAG, VERSION, versionOf } from "../../src/version.js";
import { runMain as cli, testProgram } from "../support/cli.js";

const root = packageRoot();
const packageVersion = (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version;


describe("the version", () => {
  it("is package.json's", () => {
    assert.match(packageVersion, /^\d+\.\d+\.\d+/);
    assert.equal(VERSION, packageVersion);
    assert.equal(IMAGE_TAG, `v${packageVersion}`);
  });

  it("is read from a package.json text, and a missing one is an error", () => {
    assert.equal(versionOf('{"name":"x","version":"1.2.3-rc.1"}'), "1.2.3-rc.1");
    assert.throws(() => versionOf('{"name":"x"}'), /no version/);
    assert.throws(() => versionOf('{"version":""}'), /no version/);
  });

  it("tags the default helper image, in serve, run and the local registry's copy", () => {
    assert.equal(DEFAULT_HELPER_IMAGE, `ghcr.io/kube-prepull/helper:v${packageVersion}`);
    const program = testProgram();
    for (const command of ["serve", "run"]) {
      const option = program.commands.find((c) => c.name() === command)!.options.find((o) => o.long === "--helper-image")!;
      assert.equal(option.defaultValue, DEFAULT_HELPER_IMAGE, command);
    }
    assert.equal(HELPER_IMAGE_NAME, `kube-prepull/helper:v${packageVersion}`);
  });

  it("is the helper build's default, in the Dockerfile and helper/build.sh, helper/test.sh", () => {
    const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");
    assert.match(dockerfile, new RegExp(`^ARG HELPER_VERSION=${IMAGE_TAG.replaceAll(".", "\\.")}$`, "m"));
    for (const script of ["build.sh", "test.sh"]) {
      const text = readFileSync(path.join(root, "helper", script), "utf8");
      assert.ok(text.includes(`VERSION="\${1:-${IMAGE_TAG}}"`), `helper/${script} defaults to ${IMAGE_TAG}`);
    }
  });

  it("tags the images the manifests install (kustomize images, the helper image, the chart's appVersion)", () => {
    const kustomization = readFileSync(path.join(root, "manifests", "base", "kustomization.yaml"), "utf8");
    assert.match(kustomization, new RegExp(`^\\s+newTag: ${IMAGE_TAG.replaceAll(".", "\\.")}$`, "m"));
    const deployment = readFileSync(path.join(root, "manifests", "base", "deployment.yaml"), "utf8");
    assert.ok(deployment.includes(`--helper-image=${DEFAULT_HELPER_IMAGE}`), "manifests/base/deployment.yaml names the default helper image");
    const chart = readFileSync(path.join(root, "charts", "kube-prepull", "Chart.yaml"), "utf8");
    assert.match(chart, new RegExp(`^appVersion: "?${VERSION.replaceAll(".", "\\.")}"?$`, "m"));
  });

  it("is kube_prepull_build_info's label, with the Node.js version", async () => {
    const text = await createMetrics({ defaultMetrics: false }).registry.metrics();
    assert.ok(text.includes(`kube_prepull_build_info{version="${packageVersion}",node_version="${process.version}"} 1`), text);
    const other = await createMetrics({ defaultMetrics: false, build: { version: "9.9.9", nodeVersion: "v99.0.0" } }).registry.metrics();
    assert.match(other, /^kube_prepull_build_info\{version="9\.9\.9",node_version="v99\.0\.0"\} 1$/m);
  });
});

describe("kube-prepull --version and version, the executable", () => {
  it("--version prints the bare version and exits 0", async () => {
    for (const flag of ["--version", "-V"]) {
      const { code, stdout, stderr } = await cli(flag);
      assert.equal(code, 0, stderr);
      assert.equal(stdout, `${packageVersion}\n`);
    }
  });

  it("version prints the version, the default helper image and Node.js, and exits 0", async () => {
    const { code, stdout, stderr } = await cli("version");
    assert.equal(code, 0, stderr);
    assert.deepEqual(stdout.trimEnd().split("\n"), [
      `kube-prepull ${packageVersion}`,
      `helper image (default): ghcr.io/kube-prepull/helper:v${packageVersion}`,
      `node: ${process.version}`,
    ]);
  });

  it("version takes no arguments: a usage error, exit 2", async () => {
    const { code, stdout } = await cli("version", "extra");
    assert.equal(code, 2);
    assert.equal(stdout, "");
  });
});
