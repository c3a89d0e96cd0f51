// The kube-prepull executable: exit codes and streams as a CI job sees them, without a cluster.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runMain as cli, unreachableKubeconfig } from "../../support/cli.js";

describe("kube-prepull run, the executable", () => {
  it("exits 0 for --help, which lists the flags", async () => {
    const { code, stdout } = await cli("run", "--help");
    assert.equal(code, 0);
    assert.match(stdout, /--max-parallel <n\|p%>/);
  });

  it("exits 2 for a usage error, with the error on stderr and nothing on stdout", async () => {
    for (const args of [["run"], ["run", "app:1", "--timeout", "soon"], ["run", "Bad Image"], ["no-such-command"]]) {
      const { code, stdout, stderr } = await cli(...args);
      assert.equal(code, 2, `kube-prepull ${args.join(" ")}`);
      assert.equal(stdout, "");
      assert.notEqual(stderr, "");
    }
  });

  it("exits 5 with one JSON summary when the API server cannot be reached", async () => {
    const kubeconfig = unreachableKubeconfig("ci");
    const { code, stdout } = await cli("run", "app:1", "--kubeconfig", kubeconfig, "--output", "json");
    assert.equal(code, 5);
    const summary = JSON.parse(stdout) as { result: string; namespace: string; message: string; daemonSet: unknown };
    assert.deepEqual([summary.result, summary.namespace, summary.daemonSet], ["error", "ci", null], "the context's namespace");
    assert.match(summary.message, /^cannot list DaemonSets in namespace ci: .*ECONNREFUSED/);
    const unknownContext = await cli("run", "app:1", "--kubeconfig", kubeconfig, "--context", "nope");
    assert.equal(unknownContext.code, 2);
    assert.match(unknownContext.stderr, /no context "nope"/);
  });

  it("exits 5 when the kubeconfig cannot be read", async () => {
    const { code, stdout } = await cli("run", "app:1", "--kubeconfig", "/nonexistent/kubeconfig");
    assert.equal(code, 5);
    assert.match(stdout, /^error: cannot load the kubeconfig: .*ENOENT/);
  });
});

describe("kube-prepull serve, the executable", () => {
  // Flag combinations checked after parsing: each one a clear message on stderr, exit 2, before any
  // kubeconfig or cluster is looked at (no --kubeconfig here, and no cluster).
  const cases: Array<[string[], RegExp]> = [
    [["--tls-secret", "x", "--tls-cert-file", "y", "--tls-key-file", "z"], /--tls-secret .* and --tls-cert-file .* choose one/],
    [["--tls-cert-file", "y"], /--tls-cert-file and --tls-key-file go together/],
    [["--tls-key-file", "z"], /--tls-cert-file and --tls-key-file go together/],
    [["--register", "--tls-cert-file", "y", "--tls-key-file", "z"], /--register with --tls-cert-file needs --tls-ca-file/],
    [["--tls-validity", "10h", "--tls-ca-validity", "20h"], /--tls-validity must be at most a third of --tls-ca-validity/],
  ];
  for (const [flags, message] of cases) {
    it(`serve ${flags.join(" ")}: exit 2 with "${message.source}"`, async () => {
      const { code, stdout, stderr } = await cli("serve", ...flags);
      assert.equal(code, 2);
      assert.equal(stdout, "");
      assert.match(stderr, message);
    });
  }
});
