// The short chaos soak (issue 15 item 1; the full one is `npm run soak`, docs/reliability.md): two
// replicas behind the test balancer, 10 Deployments with hold changing images for 90 s, replicas
// SIGKILLed, the apiserver and etcd restarted once each. It restarts the cluster's components: run
// it on a cluster of your own, never a shared one. Every component is back at its end.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { reportLines, runSoak } from "../../bench/soak/scenario.js";
import { testKubeconfigPath } from "../support/cluster.js";

describe("chaos soak (short)", () => {
  it("leaves nothing held, every status terminal and current, no DaemonSet behind, every hold released in time", async () => {
    const seed = Number(process.env.KUBE_PREPULL_SOAK_SEED ?? Date.now() % 2 ** 31);
    const report = await runSoak({
      kubeconfig: testKubeconfigPath(),
      stateDir: process.env.KUBE_PREPULL_TEST_STATE_DIR ?? "",
      durationMs: 90_000,
      deployments: 10,
      seed,
      holdTimeouts: ["30s"],
      apiserverDownMs: 5000,
      etcdDownMs: 5000,
      killEveryMs: [5000, 30_000],
      cleanupTtl: "10s",
      log: (line) => console.log(`soak: ${line}`),
    });
    console.log(reportLines(report).join("\n"));
    assert.deepEqual(report.violations, [], `seed ${seed}`);
    assert.ok(report.holds >= 10 && report.releases === report.holds, `every hold seen was released (seed ${seed})`);
    assert.ok(report.kills >= 2, "replicas were killed");
    assert.equal(report.restarts.length, 2, "the apiserver and etcd were restarted");
  });
});
