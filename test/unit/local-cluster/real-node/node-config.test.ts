import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../../../src/local-cluster/binaries.js";
import { REAL_NODE_PACKAGES } from "../../../../src/local-cluster/real-node/prerequisites.js";
import { cgroupV1Hierarchies, hostNamesFor, mountsUnder } from "../../../../src/local-cluster/real-node/host.js";
import { cniConfig, containerdConfig, containerdEnvironment, DEFAULT_HOSTS_TOML, kubeletConfig, REAL_NODE_TAINT } from "../../../../src/local-cluster/real-node/node.js";

const MOUNTINFO = [
  "25 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
  "30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
  "31 25 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "32 25 0:28 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
  "40 25 0:50 / /work/.cluster/t/real-nodes/n/kubelet rw - ext4 /dev/vda rw",
  "41 40 0:51 / /work/.cluster/t/real-nodes/n/kubelet/pods/x/volumes/empty\\040dir rw - tmpfs tmpfs rw",
  "42 25 0:52 / /work/.cluster/t/real-nodes/n2 rw - tmpfs tmpfs rw",
].join("\n");

describe("a real node's host resources", () => {
  it("finds the cgroup v1 hierarchies, not cgroup2", () => {
    assert.deepEqual(cgroupV1Hierarchies(MOUNTINFO), ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory"]);
  });

  it("unmounts only what is under the node's folder, deepest first, spaces decoded", () => {
    assert.deepEqual(mountsUnder("/work/.cluster/t/real-nodes/n", MOUNTINFO), [
      "/work/.cluster/t/real-nodes/n/kubelet/pods/x/volumes/empty dir",
      "/work/.cluster/t/real-nodes/n/kubelet",
    ]);
  });

  it("names its bridge within the 15 characters Linux allows, one per folder", () => {
    const a = hostNamesFor("/work/.cluster/a/real-nodes/real-node-1");
    const b = hostNamesFor("/work/.cluster/b/real-nodes/real-node-1");
    assert.ok(a.bridge.length <= 15);
    assert.notEqual(a.bridge, b.bridge);
    assert.notEqual(a.cgroupRoot, b.cgroupRoot);
  });
});

describe("a real node's configuration", () => {
  it("gives pods an L2-only bridge: no gateway, no masquerade (so no forwarding is turned on)", () => {
    const cni = JSON.parse(cniConfig("kpp1", "10.250.3.0/24", "/x/ipam")) as { plugins: Record<string, unknown>[] };
    assert.equal(cni.plugins[0]!.isGateway, false);
    assert.equal(cni.plugins[0]!.isDefaultGateway, false);
    assert.equal(cni.plugins[0]!.ipMasq, false);
  });

  it("keeps containerd's state in the node's folder and off everything but 127.0.0.1", () => {
    const toml = containerdConfig("/n", "127.0.0.1:5001/kube-prepull/pause:3.10", { runc: "/usr/sbin/runc", cniBin: "/usr/lib/cni/bridge" });
    for (const line of ['root = "/n/containerd/root"', 'Root = "/n/runc"', 'BinaryName = "/usr/sbin/runc"', 'bin_dir = "/usr/lib/cni"', 'address = "/n/run/containerd.sock"', "restrict_oom_score_adj = true", 'stream_server_address = "127.0.0.1"']) {
      assert.ok(toml.includes(line), `containerd.toml has ${line}`);
    }
    assert.match(DEFAULT_HOSTS_TOML, /server = "http:\/\/127\.0\.0\.1:9"/, "unknown registries resolve to a closed loopback port");
    const env = containerdEnvironment({ PATH: "/bin" });
    assert.equal(env.HTTPS_PROXY, "http://127.0.0.1:9");
    assert.equal(env.NO_PROXY, "127.0.0.1,localhost");
  });

  it("registers the kubelet tainted, authenticating by certificate and authorizing by webhook", () => {
    const yaml = kubeletConfig({ dir: "/n", caFile: "/pki/ca.crt", ports: { kubelet: 10250, healthz: 10248 } }, "/kube-prepull-1");
    assert.match(yaml, /anonymous: \{enabled: false\}/);
    assert.match(yaml, /mode: Webhook/);
    assert.match(yaml, /clientCAFile: \/pki\/ca.crt/);
    assert.match(yaml, /address: 127\.0\.0\.1/);
    assert.match(yaml, /cgroupRoot: \/kube-prepull-1/);
    assert.ok(yaml.includes(`key: ${REAL_NODE_TAINT.key}, value: "true", effect: NoSchedule`));
  });
});

describe("the real node's Debian packages", () => {
  it("are the ones .ci/run installs", () => {
    const ci = readFileSync(path.join(packageRoot(), ".ci", "run"), "utf8");
    const listed = /real_node_packages=\(([^)]*)\)/.exec(ci)?.[1]?.split(/\s+/).filter(Boolean).sort();
    assert.deepEqual(listed, [...REAL_NODE_PACKAGES].sort());
  });
});
