// The npm package as a CI pipeline gets it (`npx kube-prepull run …`, `npm install -g kube-prepull`):
// `npm pack` of this checkout holds only what runs (package.json "files"), installs with its
// production dependencies only into a fresh prefix, and its `kube-prepull` executable — run from
// outside the checkout — prepulls on the local cluster and exits 0; `--version` answers from it.
//
// `npm install` talks to a registry on 127.0.0.1 that holds the lockfile's packages
// (test/support/npm-registry.ts); the tarballs come from npm's cache, filled by `npm ci`. The two
// nodes carry their own pool label and a NoSchedule taint and are deleted at the end.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { createNodes } from "../../src/local-cluster/nodes.js";
import type { RunSummary } from "../../src/prepull/run.js";
import { createNamespace, testKubeConfig, testKubeconfigPath, waitForSchedulableNodes } from "../support/cluster.js";
import { startLockfileRegistry, type LockfileRegistry } from "../support/npm-registry.js";

const exec = promisify(execFile);
const root = packageRoot();
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { name: string; version: string; bin: Record<string, string>; dependencies: Record<string, string> };
const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const POOL = `npm-${process.pid}`;
const TAINT: k8s.V1Taint = { key: "kube-prepull.io/test-pool", value: POOL, effect: "NoSchedule" };
/** npm without anything that would reach past the local registry (no audit, fund or update check). */
const NPM_QUIET = ["--no-audit", "--no-fund", "--no-update-notifier", "--loglevel", "warn"];

/** What may be in the package: the manifest, the README, the pinned dependency tree, compiled src. */
const ALLOWED = (file: string): boolean => ["package.json", "README.md", "npm-shrinkwrap.json"].includes(file) || /^dist\/src\/.+\.js$/.test(file);

describe("the npm package", () => {
  let work: string;
  let tarball: string;
  let files: string[];
  let prefix: string;
  let registry: LockfileRegistry | undefined;
  let nodes: string[] = [];
  let ns: { name: string; remove: () => Promise<void> } | undefined;

  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), "kube-prepull-npm-"));
    // As `npm publish` would: prepack compiles dist/src (tsconfig.build.json) and pins the tree.
    const packed = await exec("npm", ["pack", "--json", "--pack-destination", work, ...NPM_QUIET], { cwd: root, maxBuffer: 16 << 20 });
    const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
    tarball = path.join(work, info.filename);
    files = info.files.map((f) => f.path);
    assert.ok(!existsSync(path.join(root, "npm-shrinkwrap.json")), "postpack removed the shrinkwrap from the checkout");

    registry = await startLockfileRegistry(path.join(root, "package-lock.json"));
    prefix = path.join(work, "prefix");
    await exec("npm", ["install", "--global", "--prefix", prefix, tarball, "--registry", `${registry.url}/`, "--prefer-offline", ...NPM_QUIET], { cwd: work })
      .catch((error: Error & { stderr?: string }) => {
        throw new Error(`npm install -g of the tarball failed (tarballs missing from npm's cache? run npm ci; asked for: ${registry?.missing.join(", ")}): ${error.stderr ?? error.message}`);
      });
  });

  after(async () => {
    await registry?.stop();
    await ns?.remove();
    for (const name of nodes) await core.deleteNode({ name }).catch(() => undefined);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("packs only what runs: package.json, README, the pinned tree and compiled src", () => {
    assert.equal(path.basename(tarball), `${pkg.name}-${pkg.version}.tgz`);
    assert.deepEqual(files.filter((f) => !ALLOWED(f)), [], "nothing else (no tests, bench, tools, source maps, .cluster)");
    for (const file of ["package.json", "README.md", "npm-shrinkwrap.json", "dist/src/cli/main.js", "dist/src/version.js"]) assert.ok(files.includes(file), file);
    const modules = files.filter((f) => f.startsWith("dist/src/")).length;
    assert.ok(modules > 50, `${modules} modules`);
  });

  it("installs with its production dependencies only, and both executables", () => {
    const installed = path.join(prefix, "lib", "node_modules", pkg.name);
    assert.deepEqual(Object.keys(pkg.bin).sort(), ["kube-prepull", "kubectl-prepull"]);
    for (const name of Object.keys(pkg.bin)) {
      assert.equal(path.resolve(path.join(prefix, "bin"), readlinkSync(path.join(prefix, "bin", name))), path.join(installed, "dist", "src", "cli", "main.js"), name);
    }
    for (const dep of Object.keys(pkg.dependencies)) assert.ok(existsSync(path.join(installed, "node_modules", dep, "package.json")), `dependency ${dep}`);
    // The lockfile's dev-only packages (devDependencies and what only they need) are not there.
    const lock = JSON.parse(readFileSync(path.join(root, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.entries(lock.packages).filter(([key, entry]) => entry.dev && /^node_modules\/(@[^/]+\/)?[^/]+$/.test(key)).map(([key]) => key.slice("node_modules/".length));
    for (const dep of ["typescript", "eslint", "yaml", "autocannon"]) assert.ok(devOnly.includes(dep), `${dep} is dev-only in the lockfile`);
    const present = devOnly.filter((dep) => existsSync(path.join(installed, "node_modules", dep)));
    assert.deepEqual(present, [], "no dev-only package installed");
  });

  it("answers --version and version from the installed executables", async () => {
    for (const bin of ["kube-prepull", "kubectl-prepull"]) {
      const { stdout } = await exec(path.join(prefix, "bin", bin), ["--version"], { cwd: work });
      assert.equal(stdout, `${pkg.version}\n`, bin);
    }
    const { stdout } = await exec(path.join(prefix, "bin", "kube-prepull"), ["version"], { cwd: work });
    assert.match(stdout, new RegExp(`^kube-prepull ${pkg.version.replaceAll(".", "\\.")}\\nhelper image \\(default\\): ghcr\\.io/kube-prepull/helper:v`));
  });

  it("runs as a kubectl plugin: `kubectl prepull` finds kubectl-prepull on PATH", async () => {
    const kubectl = path.join(process.env.KUBE_PREPULL_TEST_BIN_DIR ?? "", "kubectl");
    const env = { PATH: `${path.join(prefix, "bin")}:${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: work };
    const { stdout } = await exec(kubectl, ["prepull", "--version"], { cwd: work, env });
    assert.equal(stdout, `${pkg.version}\n`);
  });

  it("says the local cluster needs a checkout (tools/ is not in the package)", async () => {
    const result = await exec(path.join(prefix, "bin", "kube-prepull"), ["cluster", "--state-dir", path.join(work, "state"), "up"], { cwd: work })
      .then(() => ({ code: 0, stderr: "" }), (error: { code?: number; stderr?: string }) => ({ code: error.code, stderr: error.stderr ?? "" }));
    assert.equal(result.code, 1);
    assert.match(result.stderr, /building the control plane needs a checkout of kube-prepull \(the local cluster, demo and tests\): .*tools\/controlplane\/build\.sh is not in the installed npm package/);
  });

  it("runs `kube-prepull run` from the installed package against the cluster: exit 0, pulled on every node", async () => {
    nodes = await createNodes(core, 2, { prefix: POOL, labels: { pool: POOL, type: "kwok-npm-test" }, taints: [TAINT] });
    await waitForSchedulableNodes(core, `pool=${POOL}`, 2);
    ns = await createNamespace(kc, "npm", { "pod-security.kubernetes.io/enforce": "restricted" });
    // As a CI step: the executable on PATH, outside the checkout, the kubeconfig from the environment.
    const env = { PATH: `${path.join(prefix, "bin")}:${path.dirname(process.execPath)}:/usr/bin:/bin`, KUBECONFIG: testKubeconfigPath(), HOME: work };
    const args = [
      "run", "example.com/npm/app:1", "-n", ns.name,
      "--node-selector", `pool=${POOL}`, "--toleration", `${TAINT.key}=${TAINT.value}:${TAINT.effect}`,
      "--prepull-pod-annotation", "sim.kube-prepull.io/pull-delay=1s",
    ];
    const text = await exec("kube-prepull", args, { cwd: work, env });
    const lines = text.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^succeeded: example\.com\/npm\/app:1 pulled on 2\/2 nodes in [\d.]+s$/, text.stdout);
    assert.match(lines[1]!, /^daemonset\/prepull-run-[0-9a-f]{12} deleted$/);
    assert.match(text.stderr, /pulling example\.com\/npm\/app:1 on 2 nodes with daemonset\/prepull-run-/);

    const json = await exec("kube-prepull", [...args, "--output", "json"], { cwd: work, env });
    const summary = JSON.parse(json.stdout) as RunSummary;
    assert.equal(summary.result, "succeeded", summary.message);
    assert.deepEqual(summary.nodes, { targeted: 2, pulled: 2, failed: 0, skipped: 0, unsupported: 0 });
  });
});
