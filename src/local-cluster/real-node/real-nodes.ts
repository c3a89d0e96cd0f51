// Real nodes in the local cluster (docs/local-cluster.md, "Real nodes"): the registry and its
// proxy, the standard images, then per node a containerd and a kubelet, waited for until the
// node is Ready. `stopRealNodes` undoes all of it from the recorded state.
import { mkdirSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import type * as k8s from "@kubernetes/client-node";
import type { PemKeyPair } from "../../tls/certificates.js";
import type { ControlPlaneBinaries } from "../binaries.js";
import { isNodeSchedulable } from "../nodes.js";
import { issueNodeCertificate } from "../pki.js";
import { stopProcessGroup, type StartedProcess } from "../processes.js";
import { pollUntil, throwIfInterrupted } from "../wait.js";
import { freePodSubnet } from "./host.js";
import { buildHelperBinaries, PAUSE_IMAGE_NAME, pushImage, STANDARD_IMAGES } from "./images.js";
import { prepareRealNode, startContainerd, startKubelet, stopRealNode, type RealNodeState } from "./node.js";
import type { RealNodePrerequisites } from "./prerequisites.js";
import { registryAddresses, startRegistries, type RegistryAddresses } from "./registry.js";

export interface RegistryState {
  dir: string;
  addresses: RegistryAddresses;
  pids: { registry?: number; authRegistry?: number; proxy?: number };
}

export interface RealNodesState {
  registry: RegistryState;
  nodes: RealNodeState[];
}

export interface RealNodesOptions {
  count: number;
  stateDir: string;
  server: string;
  ca: PemKeyPair;
  caFile: string;
  binaries: ControlPlaneBinaries;
  core: k8s.CoreV1Api;
  env: NodeJS.ProcessEnv;
  freePorts: (count: number) => Promise<number[]>;
  /** Debian's containerd, runc, CNI plugins and registry (checkRealNodePrerequisites). */
  tools: RealNodePrerequisites;
  progress: (line: string) => void;
  /** Called with the state as it grows, so `down` can clean up after a failure half-way. */
  record: (state: RealNodesState) => void;
  /** Processes started, for the caller's failure report. */
  started: StartedProcess[];
  timeoutMs: number;
  /** Stops between steps (Interrupted); what was started is recorded, and the caller stops it. */
  signal?: AbortSignal;
}

export function realNodeName(index: number): string {
  return `real-node-${index}`;
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

async function startRegistry(options: RealNodesOptions, state: RealNodesState): Promise<void> {
  const [registry, authRegistry, proxy, authProxy] = await options.freePorts(4);
  const ports = { registry: registry!, authRegistry: authRegistry!, proxy: proxy!, authProxy: authProxy! };
  state.registry.addresses = registryAddresses(ports);
  mkdirSync(state.registry.dir, { recursive: true, mode: 0o700 });
  const processes = startRegistries({ dir: state.registry.dir, logDir: path.join(options.stateDir, "logs"), ports, binary: options.tools.registry, env: options.env });
  options.started.push(processes.registry, processes.authRegistry, processes.proxy);
  state.registry.pids = { registry: processes.registry.pid, authRegistry: processes.authRegistry.pid, proxy: processes.proxy.pid };
  options.record(state);
  const a = state.registry.addresses;
  const checks: [string, number][] = [[`http://${a.push}/v2/`, 200], [`http://127.0.0.1:${ports.authRegistry}/v2/`, 401], [`http://${a.pull}/v2/`, 200], [`http://${a.authPull}/v2/`, 401]];
  await Promise.all(checks.map(([url, expected]) => pollUntil(async () => (await httpStatus(url)) === expected,
    { what: `the local registry at ${url}`, timeoutMs: options.timeoutMs, signal: options.signal })));
}

async function pushStandardImages(options: RealNodesOptions, state: RealNodesState): Promise<void> {
  const work = path.join(state.registry.dir, "build");
  mkdirSync(work, { recursive: true });
  const helpers = await buildHelperBinaries(path.join(work, "helper"), options.env);
  for (const recipe of STANDARD_IMAGES) {
    throwIfInterrupted(options.signal);
    await pushImage({ crane: options.binaries.crane, registry: state.registry.addresses.push, recipe, helpers, workDir: work });
  }
}

class NodeProcessExited extends Error {}

async function waitForRealNodes(core: k8s.CoreV1Api, names: string[], timeoutMs: number, stillRunning: () => void, signal: AbortSignal | undefined): Promise<void> {
  await pollUntil(async () => {
    stillRunning();
    const nodes = await core.listNode({ labelSelector: "type=real" });
    const ready = nodes.items.filter((n) => names.includes(n.metadata!.name!) && isNodeSchedulable(n));
    return ready.length === names.length;
  }, { what: `real node(s) ${names.join(", ")} to be Ready`, timeoutMs, signal, isFatal: (e) => e instanceof NodeProcessExited });
}

/** Starts the registry, pushes the standard images and starts `count` real nodes. */
export async function startRealNodes(options: RealNodesOptions): Promise<RealNodesState> {
  const tools = options.tools;
  const state: RealNodesState = {
    // Addresses are set once the ports are chosen (startRegistry).
    registry: { dir: path.join(options.stateDir, "registry"), addresses: registryAddresses({ registry: 0, authRegistry: 0, proxy: 0, authProxy: 0 }), pids: {} },
    nodes: [],
  };
  options.progress("starting the local registry");
  await startRegistry(options, state);
  throwIfInterrupted(options.signal);
  options.progress("building and pushing the helper, sandbox and test images");
  await pushStandardImages(options, state);
  const a = state.registry.addresses;
  const processes: StartedProcess[] = [];
  for (let i = 1; i <= options.count; i++) {
    throwIfInterrupted(options.signal);
    const name = realNodeName(i);
    const dir = path.join(options.stateDir, "real-nodes", name);
    const [kubelet, healthz] = await options.freePorts(2);
    options.progress(`starting real node ${name} (containerd + kubelet)`);
    const node = await prepareRealNode({
      name, dir, server: options.server, ca: options.ca, caFile: options.caFile,
      nodeCertificate: issueNodeCertificate(options.ca, name, new Date()),
      registries: [a.push, a.pull, a.authPull], sandboxImage: `${a.pull}/${PAUSE_IMAGE_NAME}`,
      subnet: await freePodSubnet(dir), ports: { kubelet: kubelet!, healthz: healthz! },
    }, tools);
    state.nodes.push(node);
    options.record(state);
    const containerd = startContainerd(node, tools, options.env);
    node.pids.containerd = containerd.pid;
    processes.push(containerd);
    const kubeletProcess = startKubelet(node, options.binaries.kubelet, options.env);
    node.pids.kubelet = kubeletProcess.pid;
    processes.push(kubeletProcess);
    options.started.push(containerd, kubeletProcess);
    options.record(state);
  }
  await waitForRealNodes(options.core, state.nodes.map((n) => n.name), options.timeoutMs, () => {
    const dead = processes.find((p) => p.exited());
    if (dead) throw new NodeProcessExited(`${dead.name} exited (${JSON.stringify(dead.exited())}); see ${dead.logFile}`);
  }, options.signal);
  return state;
}

/** Stops the real nodes (each cleaned up completely), then the proxy and the registries. */
export async function stopRealNodes(state: RealNodesState, stateDir: string): Promise<void> {
  for (const node of state.nodes) await stopRealNode(node);
  const pids = state.registry.pids;
  await Promise.all([pids.proxy, pids.registry, pids.authRegistry].filter((p): p is number => p !== undefined).map((pid) => stopProcessGroup(pid, stateDir, 5000)));
}
