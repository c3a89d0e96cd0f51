// A real node: its own containerd (with runc and the CNI bridge plugin from Debian) and a kubelet
// built with the control plane, registered as `system:node:<name>` and authorizing requests to it
// by webhook. Configurations follow ../shared/notes/real-node.md (what worked on these machines);
// docs/local-cluster.md explains each choice. State, sockets and logs live in the node's folder.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type * as k8s from "@kubernetes/client-node";
import type { PemKeyPair } from "../../tls/certificates.js";
import { kubeconfigFor } from "../pki.js";
import { commandLine, processesNaming, startProcess, stopProcessGroup, type StartedProcess } from "../processes.js";
import {
  createCgroupRoot, createPodNetwork, deletePodNetwork, hostLeftovers, hostNamesFor, missingHostDirs, removeCgroupRoot, removeCniCache,
  removeContainerLogLinks, removeCreatedHostDirs, unmountAllUnder,
} from "./host.js";
import type { RealNodePrerequisites } from "./prerequisites.js";

/** The taint every real node registers with: only pods that tolerate it (or everything) land there. */
export const REAL_NODE_TAINT = { key: "kube-prepull.io/real-node", value: "true", effect: "NoSchedule" } as const;
export const REAL_NODE_LABEL = "kube-prepull.io/real-node";

/** Pod spec fields that put a workload's pods on the real nodes (and only there): tests, bench. */
export const ON_REAL_NODES = {
  nodeSelector: { [REAL_NODE_LABEL]: "true" },
  tolerations: [{ key: REAL_NODE_TAINT.key, operator: "Exists", effect: REAL_NODE_TAINT.effect }],
  // No cluster DNS here; without it the kubelet warns on every pod.
  dnsPolicy: "Default",
} satisfies Partial<k8s.V1PodSpec>;

/** Where a real node's processes should never go: a closed port on 127.0.0.1 (see containerdEnvironment). */
const NOWHERE = "http://127.0.0.1:9";

export interface RealNodeState {
  name: string;
  dir: string;
  bridge: string;
  subnet: string;
  cgroupRoot: string;
  ports: { kubelet: number; healthz: number };
  pids: { containerd?: number; kubelet?: number };
  /** Fixed host folders (host.ts FIXED_HOST_DIRS) that did not exist before this node started. */
  createdHostDirs: string[];
}

export interface RealNodeInputs {
  name: string;
  dir: string;
  server: string;
  ca: PemKeyPair;
  caFile: string;
  nodeCertificate: PemKeyPair;
  /** host:port of every registry the node pulls from over plain HTTP (all on 127.0.0.1). */
  registries: string[];
  sandboxImage: string;
  subnet: string;
  ports: { kubelet: number; healthz: number };
}

function nodePaths(dir: string) {
  return {
    run: path.join(dir, "run"),
    socket: path.join(dir, "run", "containerd.sock"),
    containerdConfig: path.join(dir, "containerd.toml"),
    certsD: path.join(dir, "containerd", "certs.d"),
    cniConf: path.join(dir, "cni", "net.d"),
    kubeletConfig: path.join(dir, "kubelet.yaml"),
    kubeconfig: path.join(dir, "kubelet.kubeconfig"),
    kubeletRoot: path.join(dir, "kubelet"),
    logs: path.join(dir, "logs"),
  };
}

/** The node's CNI network name (also libcni's cache file prefix). */
export function networkName(bridge: string): string {
  return `kube-prepull-${bridge}`;
}

export function containerdConfig(dir: string, sandboxImage: string, tools: Pick<RealNodePrerequisites, "runc" | "cniBin">): string {
  const p = nodePaths(dir);
  return `version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
oom_score = 0
# Snapshotters this node never uses (they would touch the host's own paths).
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "${p.socket}"
[ttrpc]
  address = "${p.run}/containerd-ttrpc.sock"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${sandboxImage}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  disable_hugetlb_controller = true
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails (real-node.md).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "${tools.runc}"
        Root = "${dir}/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${path.dirname(tools.cniBin)}"
    conf_dir = "${p.cniConf}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${p.certsD}"
`;
}

/** hosts.toml for a registry on 127.0.0.1 served over plain HTTP. */
export function registryHostsToml(hostPort: string): string {
  return `server = "http://${hostPort}"\n[host."http://${hostPort}"]\n  capabilities = ["pull", "resolve"]\n`;
}

/**
 * Any other registry resolves to a closed port on 127.0.0.1, so a pod naming an outside image
 * fails at once on this machine instead of dialling out.
 */
export const DEFAULT_HOSTS_TOML = `server = "${NOWHERE}"\n[host."${NOWHERE}"]\n  capabilities = ["pull", "resolve"]\n`;

/** The L2-only bridge network: no gateway, no masquerade, so pods get no default route (real-node.md). */
export function cniConfig(bridge: string, subnet: string, ipamDir: string): string {
  return JSON.stringify({
    cniVersion: "0.4.0",
    name: networkName(bridge),
    plugins: [
      {
        type: "bridge",
        bridge,
        isGateway: false,
        isDefaultGateway: false,
        ipMasq: false,
        hairpinMode: false,
        ipam: { type: "host-local", ranges: [[{ subnet }]], dataDir: ipamDir },
      },
      { type: "loopback" },
    ],
  }, null, 2);
}

export function kubeletConfig(inputs: Pick<RealNodeInputs, "dir" | "caFile" | "ports">, cgroupRoot: string): string {
  const p = nodePaths(inputs.dir);
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: ${inputs.ports.kubelet}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${inputs.ports.healthz}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${inputs.caFile}}
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: ${cgroupRoot}
enforceNodeAllocatable: ["pods"]
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://${p.socket}
imageServiceEndpoint: unix://${p.socket}
staticPodPath: ""
serializeImagePulls: false
maxParallelImagePulls: 4
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%", imagefs.inodesFree: "1%"}
makeIPTablesUtilChains: false
resolvConf: ""
clusterDNS: []
registerNode: true
registerWithTaints:
- {key: ${REAL_NODE_TAINT.key}, value: "${REAL_NODE_TAINT.value}", effect: ${REAL_NODE_TAINT.effect}}
rotateCertificates: false
serverTLSBootstrap: false
# As on the apiserver (cluster.ts): image volumes reach the runtime, which must support them.
featureGates: {ImageVolume: true}
podLogsDir: ${path.join(inputs.dir, "pod-logs")}
volumePluginDir: ${path.join(inputs.dir, "volume-plugins")}
`;
}

/**
 * containerd's environment: no proxy for 127.0.0.1, and every other host sent to a closed port on
 * 127.0.0.1 (Go's HTTP client dials the proxy, never resolves the host), a second guard besides the
 * `_default` hosts.toml.
 */
export function containerdEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, HTTP_PROXY: NOWHERE, HTTPS_PROXY: NOWHERE, http_proxy: NOWHERE, https_proxy: NOWHERE, NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" };
}

/** Writes the node's configuration and creates its host resources; returns its state (no processes yet). */
export async function prepareRealNode(inputs: RealNodeInputs, tools: RealNodePrerequisites): Promise<RealNodeState> {
  const p = nodePaths(inputs.dir);
  if (p.socket.length > 100) throw new Error(`the real node's folder is too deep for a unix socket path (${p.socket.length} > 100 characters): ${p.socket}`);
  const { bridge, cgroupRoot } = hostNamesFor(inputs.dir);
  for (const dir of [p.run, p.cniConf, p.kubeletRoot, p.logs, path.join(p.certsD, "_default")]) mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(p.containerdConfig, containerdConfig(inputs.dir, inputs.sandboxImage, tools));
  writeFileSync(path.join(p.certsD, "_default", "hosts.toml"), DEFAULT_HOSTS_TOML);
  for (const registry of inputs.registries) {
    mkdirSync(path.join(p.certsD, registry), { recursive: true });
    writeFileSync(path.join(p.certsD, registry, "hosts.toml"), registryHostsToml(registry));
  }
  writeFileSync(path.join(p.cniConf, "10-kube-prepull.conflist"), cniConfig(bridge, inputs.subnet, path.join(inputs.dir, "cni", "ipam")));
  writeFileSync(p.kubeletConfig, kubeletConfig(inputs, cgroupRoot));
  writeFileSync(p.kubeconfig, kubeconfigFor(inputs.server, inputs.ca.certPem, inputs.nodeCertificate, "local", `system:node:${inputs.name}`), { mode: 0o600 });
  createCgroupRoot(cgroupRoot);
  await createPodNetwork(bridge, inputs.subnet);
  return { name: inputs.name, dir: inputs.dir, bridge, subnet: inputs.subnet, cgroupRoot, ports: inputs.ports, pids: {}, createdHostDirs: missingHostDirs() };
}

export function startContainerd(node: RealNodeState, tools: RealNodePrerequisites, env: NodeJS.ProcessEnv): StartedProcess {
  const p = nodePaths(node.dir);
  return startProcess({
    name: `${node.name}/containerd`,
    command: tools.containerd,
    args: ["--config", p.containerdConfig, "--log-level", "warn"],
    env: containerdEnvironment(env),
    logFile: path.join(p.logs, "containerd.log"),
  });
}

export function startKubelet(node: RealNodeState, kubelet: string, env: NodeJS.ProcessEnv): StartedProcess {
  const p = nodePaths(node.dir);
  return startProcess({
    name: `${node.name}/kubelet`,
    command: kubelet,
    args: [
      `--config=${p.kubeletConfig}`,
      `--kubeconfig=${p.kubeconfig}`,
      `--hostname-override=${node.name}`,
      `--root-dir=${p.kubeletRoot}`,
      `--cert-dir=${path.join(p.kubeletRoot, "pki")}`,
      `--node-labels=${REAL_NODE_LABEL}=true,type=real`,
      "--v=1",
    ],
    env,
    logFile: path.join(p.logs, "kubelet.log"),
  });
}

/** Everything of a stopped node still on the host: processes, mounts, cgroups, bridge, route, folder. */
export async function realNodeLeftovers(node: RealNodeState): Promise<string[]> {
  const left = await hostLeftovers(node.dir, node.bridge, node.subnet, node.cgroupRoot);
  for (const pid of processesNaming(node.dir)) left.push(`process ${pid}: ${commandLine(pid)?.slice(0, 120)}`);
  if (existsSync(node.dir)) left.push(`folder ${node.dir}`);
  return left;
}

/**
 * The sockets of the node's containerd shims: containerd 1.6 keeps them at a fixed place
 * (/run/containerd/s/<hash>) whatever its configuration, and writes each one's address into the
 * task's folder of its own state. A shim that is killed leaves its socket behind.
 */
function shimSockets(dir: string): string[] {
  const tasks = path.join(dir, "containerd", "state", "io.containerd.runtime.v2.task");
  const sockets: string[] = [];
  for (const namespace of existsSync(tasks) ? readdirSync(tasks) : []) {
    for (const id of readdirSync(path.join(tasks, namespace))) {
      try {
        sockets.push(readFileSync(path.join(tasks, namespace, id, "address"), "utf8").trim().replace(/^unix:\/\//, ""));
      } catch {
        // a task without an address file: nothing to remove
      }
    }
  }
  return sockets.filter((s) => s.startsWith("/run/containerd/s/"));
}

/**
 * Stops a real node and removes everything it made: the kubelet first (so it restarts nothing),
 * then every container (the node's cgroups) and containerd shim, containerd, mounts, cgroups, the
 * bridge and route, libcni's cache and the kubelet's log links. Safe after a crash and when
 * nothing runs.
 */
export async function stopRealNode(node: RealNodeState): Promise<void> {
  if (node.pids.kubelet) await stopProcessGroup(node.pids.kubelet, node.dir, 5000);
  await removeCgroupRoot(node.cgroupRoot);
  const sockets = shimSockets(node.dir);
  const socket = nodePaths(node.dir).socket;
  // Shims outlive containerd by design (own process group); their containers are gone by now.
  for (const pid of processesNaming(socket)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  if (node.pids.containerd) await stopProcessGroup(node.pids.containerd, node.dir, 5000);
  for (const file of sockets) rmSync(file, { force: true });
  await unmountAllUnder(node.dir);
  await deletePodNetwork(node.bridge, node.subnet);
  removeCniCache(networkName(node.bridge));
  removeContainerLogLinks(node.dir);
  removeCreatedHostDirs(node.createdHostDirs ?? []);
}
