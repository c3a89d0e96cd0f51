import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { stopCluster, type ClusterState } from "../../../src/local-cluster/cluster.js";
import { cleanEnvironment, isAlive } from "../../../src/local-cluster/processes.js";

function sleeper(marker: string): number {
  // `sleep` with the marker in its command line, in its own process group, like a component.
  const child = spawn("bash", ["-c", `sleep 300; : ${marker}`], { detached: true, stdio: "ignore" });
  child.unref();
  return child.pid!;
}

describe("stopping a cluster from its state folder", () => {
  it("ends the recorded process groups and removes the folder, as after a crash", async () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), "kp-state-"));
    mkdirSync(path.join(stateDir, "logs"));
    const pid = sleeper(stateDir);
    const state: Partial<ClusterState> = { name: "t", stateDir, pids: { etcd: pid, kwok: pid } };
    writeFileSync(path.join(stateDir, "state.json"), JSON.stringify(state));
    assert.equal(isAlive(pid), true);
    await stopCluster(stateDir);
    await sleep(100);
    assert.equal(isAlive(pid), false, "the component process is gone");
    assert.equal(existsSync(stateDir), false, "the state folder is removed");
  });

  it("never signals a process whose command line does not name the state folder (a reused PID)", async () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), "kp-state-"));
    const stranger = sleeper("unrelated");
    try {
      writeFileSync(path.join(stateDir, "state.json"), JSON.stringify({ name: "t", stateDir, pids: { etcd: stranger } }));
      await stopCluster(stateDir);
      assert.equal(isAlive(stranger), true, "the unrelated process still runs");
    } finally {
      process.kill(-stranger, "SIGKILL");
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it("is a no-op when nothing was started", async () => {
    const missing = path.join(os.tmpdir(), `kp-missing-${process.pid}`);
    await stopCluster(missing);
    assert.equal(existsSync(missing), false);
  });
});

describe("component environment", () => {
  it("drops proxy variables so loopback traffic never goes through a proxy", () => {
    const env = cleanEnvironment({ PATH: "/bin", HTTPS_PROXY: "http://proxy:3128", http_proxy: "x" });
    assert.equal(env.HTTPS_PROXY, undefined);
    assert.equal(env.http_proxy, undefined);
    assert.equal(env.PATH, "/bin");
    assert.equal(env.NO_PROXY, "127.0.0.1,localhost");
  });
});
