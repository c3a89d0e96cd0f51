import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFileSync } from "node:fs";
import path from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { packageRoot } from "../../../src/local-cluster/binaries.js";
import {
  firstNodeList,
  HELPER_PLATFORMS,
  listedNodes,
  nextWave,
  nodeHasImage,
  nodeIsUsable,
  nodeRunsHelper,
  nothingToPullMessage,
  parallelLimit,
  planNodes,
  podFitsNode,
  prepullAffinity,
  restrictToNodes,
  type Placement,
} from "../../../src/prepull/targets.js";

function node(name: string, options: { labels?: Record<string, string>; taints?: k8s.V1Taint[]; ready?: boolean; cordoned?: boolean; images?: string[][] } = {}): k8s.V1Node {
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", ...options.labels } },
    spec: { ...(options.taints ? { taints: options.taints } : {}), ...(options.cordoned ? { unschedulable: true } : {}) },
    status: {
      conditions: [{ type: "Ready", status: options.ready === false ? "False" : "True" }],
      images: (options.images ?? []).map((names) => ({ names, sizeBytes: 1 })),
    },
  };
}

const term = (...matchExpressions: k8s.V1NodeSelectorRequirement[]): k8s.V1NodeSelectorTerm => ({ matchExpressions });
const affinity = (...terms: k8s.V1NodeSelectorTerm[]): k8s.V1Affinity => ({
  nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
});

describe("node fit (nodeSelector, required node affinity, taints)", () => {
  const gpu = node("gpu-1", { labels: { accelerator: "nvidia", cores: "64", "kubernetes.io/arch": "amd64" }, taints: [{ key: "gpu", value: "true", effect: "NoSchedule" }] });
  const plain = node("plain-1", { labels: { cores: "8", "kubernetes.io/arch": "arm64" } });
  const cases: Array<[string, Placement, k8s.V1Node, boolean]> = [
    ["no placement fits an untainted node", {}, plain, true],
    ["an untolerated NoSchedule taint does not fit", {}, gpu, false],
    ["a toleration with key and value fits", { tolerations: [{ key: "gpu", operator: "Equal", value: "true", effect: "NoSchedule" }] }, gpu, true],
    ["a toleration with the wrong value does not fit", { tolerations: [{ key: "gpu", operator: "Equal", value: "false" }] }, gpu, false],
    ["Exists without key tolerates everything", { tolerations: [{ operator: "Exists" }] }, gpu, true],
    ["Exists with key, any effect", { tolerations: [{ key: "gpu", operator: "Exists" }] }, gpu, true],
    ["a toleration for another effect does not fit", { tolerations: [{ key: "gpu", operator: "Exists", effect: "NoExecute" }] }, gpu, false],
    ["nodeSelector matches", { nodeSelector: { "kubernetes.io/arch": "arm64" } }, plain, true],
    ["nodeSelector mismatches", { nodeSelector: { "kubernetes.io/arch": "amd64" } }, plain, false],
    ["affinity In", { affinity: affinity(term({ key: "kubernetes.io/arch", operator: "In", values: ["arm64", "riscv64"] })) }, plain, true],
    ["affinity NotIn", { affinity: affinity(term({ key: "kubernetes.io/arch", operator: "NotIn", values: ["arm64"] })) }, plain, false],
    ["affinity NotIn on a missing label matches", { affinity: affinity(term({ key: "zone", operator: "NotIn", values: ["a"] })) }, plain, true],
    ["affinity Exists", { affinity: affinity(term({ key: "accelerator", operator: "Exists" })) }, plain, false],
    ["affinity DoesNotExist", { affinity: affinity(term({ key: "accelerator", operator: "DoesNotExist" })) }, plain, true],
    ["affinity Gt", { affinity: affinity(term({ key: "cores", operator: "Gt", values: ["16"] })) }, plain, false],
    ["affinity Lt", { affinity: affinity(term({ key: "cores", operator: "Lt", values: ["16"] })) }, plain, true],
    ["terms are ORed", { affinity: affinity(term({ key: "accelerator", operator: "Exists" }), term({ key: "cores", operator: "In", values: ["8"] })) }, plain, true],
    ["requirements of a term are ANDed", { affinity: affinity(term({ key: "cores", operator: "In", values: ["8"] }, { key: "accelerator", operator: "Exists" })) }, plain, false],
    ["an empty term matches nothing", { affinity: affinity({}) }, plain, false],
    ["matchFields on the name", { affinity: affinity({ matchFields: [{ key: "metadata.name", operator: "In", values: ["plain-1"] }] }) }, plain, true],
    ["matchFields on another name", { affinity: affinity({ matchFields: [{ key: "metadata.name", operator: "In", values: ["gpu-1"] }] }) }, plain, false],
  ];
  for (const [name, spec, n, expected] of cases) {
    it(name, () => assert.equal(podFitsNode(spec, n), expected));
  }
  it("a PreferNoSchedule taint does not keep pods away", () => {
    assert.equal(podFitsNode({}, node("soft", { taints: [{ key: "x", effect: "PreferNoSchedule" }] })), true);
  });
});

describe("usable nodes", () => {
  it("only Ready, uncordoned nodes are usable", () => {
    assert.equal(nodeIsUsable(node("a")), true);
    assert.equal(nodeIsUsable(node("b", { ready: false })), false);
    assert.equal(nodeIsUsable(node("c", { cordoned: true })), false);
    assert.equal(nodeIsUsable({ metadata: { name: "d" } }), false);
  });
});

describe("images already on a node", () => {
  const digest = "sha256:" + "a".repeat(64);
  const n = node("n", { images: [[`docker.io/library/nginx@${digest}`, "docker.io/library/nginx:1.27"], ["registry.example:5000/team/app:v2"]] });
  const cases: Array<[string, string, string | undefined, boolean]> = [
    ["short name and tag", "nginx:1.27", "IfNotPresent", true],
    ["fully qualified", "docker.io/library/nginx:1.27", undefined, true],
    ["another tag", "nginx:1.28", "IfNotPresent", false],
    ["by digest", `nginx@${digest}`, "IfNotPresent", true],
    ["tag and digest: the digest decides", `nginx:whatever@${digest}`, "IfNotPresent", true],
    ["registry with a port", "registry.example:5000/team/app:v2", "IfNotPresent", true],
    ["Always pulls a tag again: not skipped", "nginx:1.27", "Always", false],
    ["Always with a digest: present", `nginx@${digest}`, "Always", true],
    ["another digest", `nginx@sha256:${"b".repeat(64)}`, "IfNotPresent", false],
  ];
  for (const [name, image, pullPolicy, expected] of cases) {
    it(name, () => assert.equal(nodeHasImage(n, pullPolicy ? { image, pullPolicy } : { image }), expected));
  }
});

describe("node plan", () => {
  const nodes = [
    node("c", { images: [["docker.io/library/app:v1"], ["docker.io/library/side:v1"]] }),
    node("a"),
    node("b", { ready: false }),
    node("d", { cordoned: true }),
    node("e", { labels: { pool: "gpu" } }),
    node("f", { images: [["docker.io/library/app:v1"]] }),
  ];
  it("targets usable, fitting nodes missing an image; skips nodes that have them all", () => {
    const plan = planNodes({}, nodes, [{ image: "app:v1" }, { image: "side:v1" }]);
    assert.deepEqual(plan.targets, ["a", "e", "f"]);
    assert.deepEqual(plan.skipped, ["c"]);
  });
  it("applies the placement", () => {
    const plan = planNodes({ nodeSelector: { pool: "gpu" } }, nodes, [{ image: "app:v1" }]);
    assert.deepEqual([plan.targets, plan.skipped], [["e"], []]);
  });
  it("names nodes by their hostname label, and leaves out nodes without one", () => {
    const renamed = node("ip-10-0-0-1.internal", { labels: { "kubernetes.io/hostname": "ip-10-0-0-1" } });
    const unlabelled: k8s.V1Node = { ...node("bare"), metadata: { name: "bare", labels: {} } };
    const plan = planNodes({}, [renamed, unlabelled], [{ image: "app:v1" }]);
    assert.deepEqual(plan.targets, ["ip-10-0-0-1"]);
    assert.deepEqual([...plan.hostnames], [["ip-10-0-0-1.internal", "ip-10-0-0-1"]]);
  });
});

describe("platforms (spec §3 nodes: only Linux nodes of the helper's architectures)", () => {
  const windows = node("win-1", { labels: { "kubernetes.io/os": "windows" } });
  const s390x = node("z-1", { labels: { "kubernetes.io/arch": "s390x" } });
  const arm = node("arm-1", { labels: { "kubernetes.io/arch": "arm64" } });
  const unlabelled: k8s.V1Node = { ...node("old-1"), metadata: { name: "old-1", labels: { "kubernetes.io/hostname": "old-1" } } };

  it("are the ones helper/build.sh builds the helper for", () => {
    const build = readFileSync(path.join(packageRoot(), "helper", "build.sh"), "utf8");
    assert.match(build, /GOOS=linux /);
    assert.deepEqual(/^for arch in ([\w ]+); do$/m.exec(build)?.[1]?.split(" "), [...HELPER_PLATFORMS.architectures]);
  });

  it("runs the helper on Linux amd64 and arm64 only; a node without the kubelet's labels is no exception", () => {
    assert.deepEqual([node("a"), arm, windows, s390x, unlabelled].map(nodeRunsHelper), [true, true, false, false, false]);
  });

  it("skips nodes of another OS or architecture, counted as unsupported, whatever their state", () => {
    const downWindows = node("win-2", { labels: { "kubernetes.io/os": "windows" }, ready: false });
    const plan = planNodes({ tolerations: [{ operator: "Exists" }] }, [node("a"), arm, windows, s390x, downWindows, unlabelled], [{ image: "app:v1" }]);
    assert.deepEqual(plan.targets, ["a", "arm-1"]);
    assert.deepEqual([plan.unsupported, plan.unusable, plan.skipped], [4, 0, []]);
  });

  it("counts only nodes the placement admits", () => {
    const plan = planNodes({ nodeSelector: { "kubernetes.io/os": "windows" } }, [node("a"), windows], [{ image: "app:v1" }]);
    assert.deepEqual([plan.targets, plan.unsupported], [[], 1]);
    const elsewhere = planNodes({ nodeSelector: { pool: "web" } }, [node("a", { labels: { pool: "web" } }), windows], [{ image: "app:v1" }]);
    assert.deepEqual([elsewhere.targets, elsewhere.unsupported], [["a"], 0]);
  });

  it("needs no node list for them (the DaemonSet's affinity leaves them out), and says so when nothing can pull", () => {
    const plan = planNodes({}, [node("a"), windows, s390x], [{ image: "app:v1" }]);
    assert.equal(firstNodeList(plan, 10), undefined);
    const none = planNodes({}, [windows], [{ image: "app:v1" }]);
    assert.equal(nothingToPullMessage(none), "no Ready, schedulable node can run these pods; 1 node skipped: not Linux on amd64 or arm64");
    const present = planNodes({}, [node("a", { images: [["docker.io/library/app:v1"]] }), windows, s390x], [{ image: "app:v1" }]);
    assert.equal(nothingToPullMessage(present), "already present on all 1 node; 2 nodes skipped: not Linux on amd64 or arm64");
  });

  it("puts Linux and the helper's architectures into every required term of the pod's affinity, before the node list", () => {
    const platform: k8s.V1NodeSelectorRequirement[] = [
      { key: "kubernetes.io/os", operator: "In", values: ["linux"] },
      { key: "kubernetes.io/arch", operator: "In", values: ["amd64", "arm64"] },
    ];
    assert.deepEqual(prepullAffinity({}, undefined), affinity(term(...platform)));
    const pool = { key: "pool", operator: "In", values: ["a"] };
    const zone = { key: "zone", operator: "Exists" };
    const placed = prepullAffinity({ affinity: affinity(term(pool), term(zone)) }, ["n1"]);
    const hostname = { key: "kubernetes.io/hostname", operator: "In", values: ["n1"] };
    assert.deepEqual(placed, affinity(term(pool, ...platform, hostname), term(zone, ...platform, hostname)));
    assert.deepEqual(listedNodes({ spec: { selector: {}, template: { spec: { containers: [], affinity: placed } } } }), ["n1"]);
    // The affinity admits exactly the nodes nodeRunsHelper does.
    for (const n of [node("a"), arm, windows, s390x, unlabelled]) assert.equal(podFitsNode({ affinity: prepullAffinity({}, undefined) }, n), nodeRunsHelper(n), n.metadata!.name);
  });
});

describe("waves", () => {
  it("limits by count or percentage, at least one node", () => {
    assert.equal(parallelLimit({ kind: "count", value: 10 }, 1000), 10);
    assert.equal(parallelLimit({ kind: "percent", value: 25 }, 10), 3);
    assert.equal(parallelLimit({ kind: "percent", value: 1 }, 10), 1);
    assert.equal(parallelLimit({ kind: "percent", value: 100 }, 0), 1);
  });
  it("adds waiting nodes as slots free up, in batches of a quarter of the limit", () => {
    const waiting = ["e", "f", "g", "h", "i"];
    assert.equal(nextWave({ listed: ["a", "b", "c", "d"], waiting, inFlight: 4, limit: 4 }), undefined, "no free slot");
    assert.deepEqual(nextWave({ listed: ["a", "b", "c", "d"], waiting, inFlight: 3, limit: 4 }), ["a", "b", "c", "d", "e"]);
    assert.equal(nextWave({ listed: ["a"], waiting, inFlight: 9, limit: 10 }), undefined, "1 free of 10: wait for 3");
    assert.deepEqual(nextWave({ listed: ["a"], waiting, inFlight: 7, limit: 10 }), ["a", "e", "f", "g"]);
    assert.deepEqual(nextWave({ listed: ["a"], waiting: ["z"], inFlight: 9, limit: 10 }), ["a", "z"], "the last waiting node");
    assert.equal(nextWave({ listed: ["a"], waiting: [], inFlight: 0, limit: 10 }), undefined, "nothing waits");
  });
  it("restricts placement to the listed nodes, keeping every term of the workload", () => {
    const workload = affinity(term({ key: "pool", operator: "In", values: ["x"] }), term({ key: "pool", operator: "In", values: ["y"] }));
    const restricted = restrictToNodes(workload, ["n1", "n2"]);
    const terms = restricted.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
    assert.equal(terms.length, 2);
    for (const t of terms) {
      assert.deepEqual(t.matchExpressions?.[1], { key: "kubernetes.io/hostname", operator: "In", values: ["n1", "n2"] });
      assert.equal(t.matchExpressions?.length, 2);
    }
    assert.deepEqual(listedNodes({ spec: { selector: {}, template: { spec: { containers: [], affinity: restricted } } } }), ["n1", "n2"]);
    const alone = restrictToNodes(undefined, ["n1"]);
    assert.equal(podFitsNode({ affinity: alone }, node("n1")), true);
    assert.equal(podFitsNode({ affinity: alone }, node("n2")), false);
    assert.equal(podFitsNode({ affinity: restricted }, node("n1", { labels: { pool: "y" } })), true);
    assert.equal(podFitsNode({ affinity: restricted }, node("n1", { labels: { pool: "z" } })), false);
  });
});
