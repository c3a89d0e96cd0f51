// `kube-prepull status`, the executable, without a cluster: usage errors, an unreachable API server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../../src/local-cluster/binaries.js";
import { unreachableKubeconfig } from "../../support/cli.js";

const MAIN = path.join(packageRoot(), "dist", "src", "cli", "main.js");

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(MAIN, ...args);
}

function run(main: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { env: { PATH: process.env.PATH ?? "" }, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: unknown }).code) : 0, stdout, stderr });
    });
  });
}

describe("kube-prepull status, the executable", () => {
  it("exits 2 on usage errors, before reading any kubeconfig", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["status", "pods/web"], /"pods" is not a workload kind/],
      [["status", "Web"], /"Web" is not a workload name/],
      [["status", "-A", "-n", "x"], /--all-namespaces and --namespace/],
      [["status", "-A", "web"], /cannot be named across all namespaces/],
      [["status", "-o", "table"], /Allowed choices are wide, json, yaml/],
      [["status", "a", "b"], /too many arguments/],
    ];
    for (const [args, message] of cases) {
      const { code, stdout, stderr } = await cli(...args, "--kubeconfig", "/nonexistent/kubeconfig");
      assert.equal(code, 2, args.join(" "));
      assert.equal(stdout, "");
      assert.match(stderr, message);
    }
  });

  it("exits 5 when the kubeconfig cannot be read or the API server cannot be reached", async () => {
    const unreadable = await cli("status", "--kubeconfig", "/nonexistent/kubeconfig");
    assert.equal(unreadable.code, 5);
    assert.match(unreadable.stderr, /^kube-prepull: cannot load the kubeconfig: .*ENOENT/);
    const kubeconfig = unreachableKubeconfig("shop");
    const refused = await cli("status", "deployment/web", "--kubeconfig", kubeconfig);
    assert.equal(refused.code, 5);
    assert.equal(refused.stdout, "");
    assert.match(refused.stderr, /^kube-prepull: cannot list deployments in namespace shop: .*ECONNREFUSED/);
  });

  it("calls itself `kubectl prepull` when run as kubectl-prepull (the kubectl plugin's name)", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "kubectl-prepull-"));
    try {
      const plugin = path.join(dir, "kubectl-prepull");
      symlinkSync(MAIN, plugin);
      const help = await run(plugin, "--help");
      assert.equal(help.code, 0);
      assert.match(help.stdout, /^Usage: kubectl prepull \[options\] \[command\]/);
      assert.match(help.stdout, /^ {2}status \[options\] \[workload\]/m);
      const usage = await run(plugin, "status", "pods/x");
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /^kubectl prepull: WORKLOAD: "pods" is not a workload kind/);
      assert.match((await run(MAIN, "status", "--help")).stdout, /^Usage: kube-prepull status /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
