// --help and hints tell the truth about the command line: the paths serve answers on, the cluster
// options every cluster subcommand takes, and the commands to use a cluster with another --name.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { ADMISSION_PATHS } from "../../../src/admission/paths.js";
import { clusterCommandLine } from "../../../src/cli/cluster-command.js";
import { runMain as cli } from "../../support/cli.js";

describe("serve --help", () => {
  it("names every webhook path and the operations endpoints", async () => {
    const { code, stdout } = await cli("serve", "--help");
    assert.equal(code, 0);
    assert.equal(ADMISSION_PATHS.length, 10);
    for (const p of ADMISSION_PATHS) assert.match(stdout, new RegExp(`\\s${p}(\\s|$)`), p);
    assert.match(stdout, /\/healthz, \/readyz, \/metrics/);
  });
});

describe("cluster subcommands' --help", () => {
  for (const sub of ["up", "down", "status", "env"]) {
    it(`cluster ${sub} --help lists --name and --state-dir`, async () => {
      const { code, stdout } = await cli("cluster", sub, "--help");
      assert.equal(code, 0);
      assert.match(stdout, /--name <name>/);
      assert.match(stdout, /--state-dir <dir>/);
    });
  }

  it("cluster --name after the subcommand is the cluster's name", async () => {
    const { code, stderr } = await cli("cluster", "env", "--name", "no-such-cluster", "--state-dir", "/nonexistent");
    assert.equal(code, 1);
    assert.match(stderr, /no cluster at \/nonexistent\/no-such-cluster; start one with: npm run -s cluster -- --name no-such-cluster --state-dir \/nonexistent up/);
  });
});

describe("clusterCommandLine", () => {
  const defaults = { name: "dev", stateDir: "/repo/.cluster" };
  it("leaves the defaults out", () => {
    assert.equal(clusterCommandLine(defaults, defaults, "env"), "npm run -s cluster -- env");
    assert.equal(clusterCommandLine({ name: "dev", stateDir: "/repo/.cluster/" }, defaults, "env"), "npm run -s cluster -- env");
  });
  it("names another cluster and state folder, quoted for the shell when needed", () => {
    assert.equal(clusterCommandLine({ name: "ci", stateDir: "/repo/.cluster" }, defaults, "env"), "npm run -s cluster -- --name ci env");
    assert.equal(
      clusterCommandLine({ name: "it's", stateDir: "/tmp/my clusters" }, defaults, "up"),
      `npm run -s cluster -- --name 'it'\\''s' --state-dir '/tmp/my clusters' up`,
    );
    assert.equal(clusterCommandLine({ name: "dev", stateDir: "rel" }, defaults, "env"), `npm run -s cluster -- --state-dir ${path.resolve("rel")} env`);
  });
});
