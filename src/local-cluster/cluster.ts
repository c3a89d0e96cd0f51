// The embedded local cluster (spec §7): etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok started as processes on 127.0.0.1, with N simulated nodes, and
// optionally real nodes (kubelet + containerd) with a local registry (real-node/).
// Flags follow envtest and kwokctl's binary runtime (docs/local-cluster.md explains each choice).
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { packageRoot, type ControlPlaneBinaries } from "./binaries.js";
import { adminKubeconfig, writeClusterPki, type ClusterPki } from "./pki.js";
import { cleanEnvironment, isAlive, startProcess, stopProcessGroup, tail, type StartedProcess } from "./processes.js";
import { createNodes, waitForNodesReady } from "./nodes.js";
import { Interrupted, pollUntil, throwIfInterrupted, waitForServiceAccount } from "./wait.js";
import { checkRealNodePrerequisites } from "./real-node/prerequisites.js";
import { startRealNodes, stopRealNodes, type RealNodesState } from "./real-node/real-nodes.js";

export const COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"] as const;
export type Component = (typeof COMPONENTS)[number];

/** What `up` leaves in the state directory, so `down`, `status` and `env` work from another process. */
export interface ClusterState {
  name: string;
  stateDir: string;
  kubeconfig: string;
  server: string;
  binDir: string;
  ports: Record<string, number>;
  pids: Partial<Record<Component, number>>;
  startedAt: string;
  /** Real nodes and the local registry, when started with some. */
  real?: RealNodesState;
}

export interface StartOptions {
  name: string;
  /** Folder holding one sub-folder per cluster name (ignored by git). */
  stateRoot: string;
  binaries: ControlPlaneBinaries;
  nodes: number;
  /** Real nodes (kubelet + containerd) besides the simulated ones; 0 by default. */
  realNodes?: number;
  env: NodeJS.ProcessEnv;
  progress: (line: string) => void;
  /** Milliseconds to wait for each component to become healthy. */
  startTimeoutMs?: number;
  /** More kube-apiserver flags (benchmarks: an audit policy). */
  extraApiserverArgs?: string[];
  /**
   * SIGINT/SIGTERM of the caller: the start stops at its next step, stops what it launched and
   * removes the state directory (as `down`), then throws Interrupted.
   */
  signal?: AbortSignal;
}

export interface RunningCluster {
  state: ClusterState;
  kubeConfig: k8s.KubeConfig;
  stop: () => Promise<void>;
}

const STATE_FILE = "state.json";

export function stateDirOf(stateRoot: string, name: string): string {
  return path.join(stateRoot, name);
}

export function readClusterState(stateDir: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(path.join(stateDir, STATE_FILE), "utf8")) as ClusterState;
  } catch {
    return undefined;
  }
}

/** Replaces the state file whole (write, then rename): a process killed meanwhile leaves the previous one, never half of it. */
export function writeClusterState(state: ClusterState): void {
  const file = path.join(state.stateDir, STATE_FILE);
  writeFileSync(`${file}.new`, JSON.stringify(state, null, 2));
  renameSync(`${file}.new`, file);
}

/**
 * Stops every process recorded in the state directory and removes it. Safe after a crash (stale
 * PIDs are recognised by their command line, which names the state directory) and when nothing runs.
 */
export async function stopCluster(stateDir: string): Promise<void> {
  const state = readClusterState(stateDir);
  // Real nodes first: their kubelets must not outlive the apiserver they report to.
  if (state?.real) await stopRealNodes(state.real, stateDir);
  if (state) {
    // Reverse start order: kwok and the controllers first, etcd last.
    const order = [...COMPONENTS].reverse();
    await Promise.all(
      order.slice(0, 3).map(async (c) => {
        const pid = state.pids[c];
        if (pid) await stopProcessGroup(pid, stateDir);
      }),
    );
    if (state.pids["kube-apiserver"]) await stopProcessGroup(state.pids["kube-apiserver"], stateDir);
    if (state.pids.etcd) await stopProcessGroup(state.pids.etcd, stateDir);
  }
  rmSync(stateDir, { recursive: true, force: true });
}

type ControlPlanePorts = Record<"etcdClient" | "etcdPeer" | "apiserver" | "controllerManager" | "scheduler", number>;

/** Where a cluster's files are and how its components reach each other. */
interface ClusterLayout {
  stateDir: string;
  logDir: string;
  pki: ClusterPki;
  ports: ControlPlanePorts;
  server: string;
  kubeconfig: string;
  kwokConfig: string;
}

/** What the start steps share: the layout, the state being recorded and the processes so far. */
interface StartContext {
  options: StartOptions;
  layout: ClusterLayout;
  state: ClusterState;
  env: NodeJS.ProcessEnv;
  /** Every process started, for the logs shown on failure. */
  started: StartedProcess[];
  launch: (component: Component, command: string, args: string[]) => StartedProcess;
  tls: { ca: string; cert: string; key: string };
  timeoutMs: number;
}

/** Writes the state directory's folders, certificates, kubeconfig and kwok configuration. */
async function writeClusterFiles(stateDir: string, options: StartOptions): Promise<ClusterLayout> {
  const pkiDir = path.join(stateDir, "pki");
  const logDir = path.join(stateDir, "logs");
  for (const dir of [pkiDir, logDir, path.join(stateDir, "etcd")]) mkdirSync(dir, { recursive: true, mode: 0o700 });

  options.progress("generating certificates");
  const pki = writeClusterPki(pkiDir, new Date());
  const ports = await freePorts(["etcdClient", "etcdPeer", "apiserver", "controllerManager", "scheduler"]);
  const server = `https://127.0.0.1:${ports.apiserver}`;
  const kubeconfig = path.join(stateDir, "kubeconfig");
  writeFileSync(kubeconfig, adminKubeconfig(server, pki, options.name), { mode: 0o600 });
  const kwokConfig = path.join(stateDir, "kwok.yaml");
  writeFileSync(kwokConfig, KWOK_CONFIGURATION);
  return { stateDir, logDir, pki, ports, server, kubeconfig, kwokConfig };
}

/** Starts etcd, then kube-apiserver, then the controllers and kwok, each once the one before answers. */
async function startControlPlane(ctx: StartContext): Promise<{ kcm: StartedProcess; kwok: StartedProcess }> {
  const { options, launch } = ctx;
  const { stateDir, pki, ports, server, kubeconfig, kwokConfig } = ctx.layout;
  const healthy = (proc: StartedProcess, url: string): Promise<void> => waitHealthy(proc, url, ctx.tls, ctx.timeoutMs, options.signal);
  throwIfInterrupted(options.signal);
  options.progress("starting etcd");
  const etcd = launch("etcd", options.binaries.etcd, etcdArgs(stateDir, pki, ports));
  await healthy(etcd, `https://127.0.0.1:${ports.etcdClient}/health`);

  throwIfInterrupted(options.signal);
  options.progress("starting kube-apiserver");
  const apiserver = launch("kube-apiserver", options.binaries.kubeApiserver,
    [...apiserverArgs(stateDir, pki, ports), ...(options.extraApiserverArgs ?? [])]);
  // /readyz is polled with admin credentials: anonymous requests get 401/403 while RBAC bootstraps.
  await healthy(apiserver, `${server}/readyz`);

  throwIfInterrupted(options.signal);
  options.progress("starting kube-controller-manager, kube-scheduler and kwok");
  const kcm = launch("kube-controller-manager", options.binaries.kubeControllerManager,
    controllerManagerArgs(kubeconfig, pki, ports));
  const scheduler = launch("kube-scheduler", options.binaries.kubeScheduler, schedulerArgs(kubeconfig, pki, ports));
  const kwok = launch("kwok", options.binaries.kwok, kwokArgs(kubeconfig, kwokConfig));
  await Promise.all([
    healthy(kcm, `https://127.0.0.1:${ports.controllerManager}/healthz`),
    healthy(scheduler, `https://127.0.0.1:${ports.scheduler}/healthz`),
  ]);
  return { kcm, kwok };
}

/** Starts the real nodes and the local registry, recording them in the state file as they come. */
async function addRealNodes(ctx: StartContext, count: number, core: k8s.CoreV1Api): Promise<void> {
  const { options, layout, state } = ctx;
  state.real = await startRealNodes({
    count,
    stateDir: layout.stateDir,
    server: layout.server,
    ca: layout.pki.ca,
    caFile: layout.pki.files.caCert,
    binaries: options.binaries,
    core,
    env: ctx.env,
    tools: checkRealNodePrerequisites(),
    freePorts: async (n) => Object.values(await freePorts(Array.from({ length: n }, (_, i) => `p${i}`))),
    progress: options.progress,
    record: (real) => {
      state.real = real;
      writeClusterState(state);
    },
    started: ctx.started,
    timeoutMs: ctx.timeoutMs,
    signal: options.signal,
  });
  writeClusterState(state);
}

/** The end of every started component's log, for the error of a start that failed. */
function logTails(started: StartedProcess[]): string {
  return started
    .map((p) => `--- ${p.name} (${p.logFile}) ---\n${tail(p.logFile, 15)}`)
    .join("\n");
}

/** The state as `up` first records it: where everything is, no process yet. */
function initialState(options: StartOptions, layout: ClusterLayout): ClusterState {
  return {
    name: options.name,
    stateDir: layout.stateDir,
    kubeconfig: layout.kubeconfig,
    server: layout.server,
    binDir: options.binaries.dir,
    ports: layout.ports,
    pids: {},
    startedAt: new Date().toISOString(),
  };
}

/** The start steps' shared context; every launch is recorded in the state file before anything else runs. */
function startContext(options: StartOptions, layout: ClusterLayout, timeoutMs: number): StartContext {
  const state = initialState(options, layout);
  // Written before the first process starts, so `down` (and an interrupted `up`) finds everything.
  writeClusterState(state);
  const env = cleanEnvironment(options.env);
  const started: StartedProcess[] = [];
  const launch = (component: Component, command: string, args: string[]): StartedProcess => {
    const proc = startProcess({ name: component, command, args, env, logFile: path.join(layout.logDir, `${component}.log`) });
    started.push(proc);
    state.pids[component] = proc.pid;
    writeClusterState(state);
    return proc;
  };
  const { pki } = layout;
  const tls = { ca: pki.ca.certPem, cert: pki.admin.certPem, key: pki.admin.keyPem };
  return { options, layout, state, env, started, launch, tls, timeoutMs };
}

/** The nodes, then the default ServiceAccount: the cluster is usable once they are there. */
async function addNodes(ctx: StartContext, processes: { kcm: StartedProcess; kwok: StartedProcess }): Promise<k8s.KubeConfig> {
  const { options, timeoutMs } = ctx;
  const signal = options.signal;
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(ctx.layout.kubeconfig);
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  if (options.nodes > 0) {
    throwIfInterrupted(signal);
    options.progress(`creating ${options.nodes} simulated node(s)`);
    await createNodes(core, options.nodes, { signal });
    await waitForNodesReady(core, options.nodes, {
      timeoutMs: Math.max(timeoutMs, options.nodes * 300),
      progress: options.progress,
      stillRunning: () => assertRunning(processes.kwok),
      signal,
    });
  }
  if ((options.realNodes ?? 0) > 0) {
    throwIfInterrupted(signal);
    await addRealNodes(ctx, options.realNodes!, core);
  }
  throwIfInterrupted(signal);
  options.progress("waiting for the default ServiceAccount");
  assertRunning(processes.kcm);
  await waitForServiceAccount(core, "default", timeoutMs, signal);
  return kubeConfig;
}

export async function startCluster(options: StartOptions): Promise<RunningCluster> {
  const stateDir = path.resolve(stateDirOf(options.stateRoot, options.name));
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  // A previous run that crashed may have left processes and state behind.
  await stopCluster(stateDir);
  let ctx: StartContext | undefined;
  try {
    throwIfInterrupted(options.signal);
    ctx = startContext(options, await writeClusterFiles(stateDir, options), timeoutMs);
    const processes = await startControlPlane(ctx);
    const kubeConfig = await addNodes(ctx, processes);
    throwIfInterrupted(options.signal);
    return { state: ctx.state, kubeConfig, stop: () => stopCluster(stateDir) };
  } catch (error) {
    if (options.signal?.aborted) {
      options.progress(`${String(options.signal.reason)}: interrupted, stopping what it started`);
      await stopCluster(stateDir).catch(() => undefined);
      throw new Interrupted(options.signal.reason);
    }
    // Read before stopCluster removes the state directory the logs are in.
    const logs = logTails(ctx?.started ?? []);
    await stopCluster(stateDir).catch(() => undefined);
    throw new Error(`${(error as Error).message}\n${logs}`, { cause: error });
  }
}

export interface ComponentStatus {
  component: string;
  pid: number | undefined;
  running: boolean;
}

export function clusterStatus(stateDir: string): { state: ClusterState; components: ComponentStatus[] } | undefined {
  const state = readClusterState(stateDir);
  if (!state) return undefined;
  return {
    state,
    components: [...COMPONENTS.map((c) => [c, state.pids[c]] as const), ...realProcesses(state.real)].map(([component, pid]) => (
      { component, pid, running: pid !== undefined && isAlive(pid) })),
  };
}

function realProcesses(real: RealNodesState | undefined): (readonly [string, number | undefined])[] {
  if (!real) return [];
  const r = real.registry.pids;
  return [
    ["registry", r.registry], ["auth-registry", r.authRegistry], ["registry-proxy", r.proxy],
    ...real.nodes.flatMap((n) => [[`${n.name}/containerd`, n.pids.containerd], [`${n.name}/kubelet`, n.pids.kubelet]] as const),
  ];
}

/** Shell lines that point kubectl (the version-matched one first on PATH) at the cluster. */
export function envLines(state: ClusterState): string[] {
  const quote = (s: string): string => `'${s.replaceAll("'", `'"'"'`)}'`;
  return [`export KUBECONFIG=${quote(state.kubeconfig)}`, `export PATH=${quote(state.binDir)}:"$PATH"`];
}


// ---- component flags ----

function etcdArgs(stateDir: string, pki: ClusterPki, ports: Record<string, number>): string[] {
  const client = `https://127.0.0.1:${ports.etcdClient}`;
  const peer = `https://127.0.0.1:${ports.etcdPeer}`;
  const f = pki.files;
  return [
    "--name=local",
    `--data-dir=${path.join(stateDir, "etcd")}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=local=${peer}`,
    `--cert-file=${f.serverCert}`,
    `--key-file=${f.serverKey}`,
    `--trusted-ca-file=${f.caCert}`,
    "--client-cert-auth=true",
    `--peer-cert-file=${f.serverCert}`,
    `--peer-key-file=${f.serverKey}`,
    `--peer-trusted-ca-file=${f.caCert}`,
    "--peer-client-cert-auth=true",
    // Test data: durability is not needed, speed is (envtest does the same).
    "--unsafe-no-fsync=true",
    "--quota-backend-bytes=8589934592",
    "--auto-compaction-mode=periodic",
    "--auto-compaction-retention=5m",
    "--log-level=warn",
  ];
}

function apiserverArgs(stateDir: string, pki: ClusterPki, ports: Record<string, number>): string[] {
  const f = pki.files;
  return [
    `--etcd-servers=https://127.0.0.1:${ports.etcdClient}`,
    `--etcd-cafile=${f.caCert}`,
    `--etcd-certfile=${f.serverCert}`,
    `--etcd-keyfile=${f.serverKey}`,
    "--bind-address=127.0.0.1",
    // Without it the apiserver advertises the default route's address, or dies when there is none.
    "--advertise-address=127.0.0.1",
    `--secure-port=${ports.apiserver}`,
    `--cert-dir=${path.join(stateDir, "pki")}`,
    `--tls-cert-file=${f.serverCert}`,
    `--tls-private-key-file=${f.serverKey}`,
    `--client-ca-file=${f.caCert}`,
    "--authorization-mode=Node,RBAC",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${f.serviceAccountPub}`,
    `--service-account-signing-key-file=${f.serviceAccountKey}`,
    "--service-cluster-ip-range=10.96.0.0/16",
    "--allow-privileged=true",
    // No Endpoints for the kubernetes Service: nothing dials the service network here.
    "--endpoint-reconciler-type=none",
    "--kubelet-preferred-address-types=InternalIP",
    // Who the apiserver is towards kubelets (real nodes authorize it by webhook; nothing here dials them).
    `--kubelet-client-certificate=${f.kubeletClientCert}`,
    `--kubelet-client-key=${f.kubeletClientKey}`,
    "--profiling=false",
    // Image volumes (KEP-4639) are beta but off by default in 1.34 (on from 1.35): on here, so the
    // "image-volumes" pull strategy can be tested; without the gate the apiserver drops them.
    "--feature-gates=ImageVolume=true",
    // Admission plugins: the defaults, which include MutatingAdmissionWebhook,
    // ValidatingAdmissionWebhook, PodSecurity, ServiceAccount, NamespaceLifecycle and
    // TaintNodesByCondition. Priority and fairness stay on, so overload shows up as 429s.
  ];
}

function controllerManagerArgs(kubeconfig: string, pki: ClusterPki, ports: Record<string, number>): string[] {
  const f = pki.files;
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${ports.controllerManager}`,
    `--tls-cert-file=${f.serverCert}`,
    `--tls-private-key-file=${f.serverKey}`,
    // A restart must not wait for an old lease (~15 s); there is only one instance.
    "--leader-elect=false",
    `--service-account-private-key-file=${f.serviceAccountKey}`,
    `--root-ca-file=${f.caCert}`,
    // kwok renews node leases every 50 s (lease 200 s); NotReady only after the lease really lapsed.
    "--node-monitor-period=5s",
    "--node-monitor-grace-period=3m20s",
    // The default client QPS (20) makes the DaemonSet controller the bottleneck at 1000 nodes.
    "--kube-api-qps=500",
    "--kube-api-burst=1000",
    "--concurrent-daemonset-syncs=4",
    "--concurrent-deployment-syncs=8",
    "--concurrent-replicaset-syncs=8",
    "--profiling=false",
  ];
}

function schedulerArgs(kubeconfig: string, pki: ClusterPki, ports: Record<string, number>): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${ports.scheduler}`,
    `--tls-cert-file=${pki.files.serverCert}`,
    `--tls-private-key-file=${pki.files.serverKey}`,
    "--leader-elect=false",
    "--kube-api-qps=500",
    "--kube-api-burst=1000",
    "--profiling=false",
  ];
}

function kwokArgs(kubeconfig: string, kwokConfig: string): string[] {
  const stages = path.join(packageRoot(), "tools", "controlplane", "kwok", "stages.yaml");
  return [
    `--kubeconfig=${kubeconfig}`,
    `--config=${kwokConfig}`,
    `--config=${stages}`,
    // Only the simulated nodes (they carry this annotation), never a real node's kubelet.
    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
    // Simulated kubelets "live" on 127.0.0.1; the apiserver never dials them (no logs/exec here).
    "--node-ip=127.0.0.1",
    // Pod IPs: one pool, large enough that 1000 nodes' pods never exhaust it.
    "--cidr=10.64.0.0/12",
    "--node-lease-duration-seconds=200",
  ];
}

const KWOK_CONFIGURATION = `apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  # Default 4: too few workers to play 1000 pods' stages promptly.
  podPlayStageParallelism: 16
  nodePlayStageParallelism: 16
  nodeLeaseParallelism: 8
`;

// ---- helpers ----

async function freePorts<K extends string>(names: K[]): Promise<Record<K, number>> {
  // Hold every listener open until all are bound so no two names get the same port.
  const servers = await Promise.all(
    names.map(
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = {} as Record<K, number>;
  names.forEach((name, i) => (ports[name] = (servers[i]!.address() as net.AddressInfo).port));
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

class ProcessExited extends Error {}

function assertRunning(proc: StartedProcess): void {
  const exit = proc.exited();
  if (exit) throw new ProcessExited(`${proc.name} exited (code ${exit.code}, signal ${exit.signal})`);
}

/** The HTTP status a component's health endpoint answers, over TLS with the admin client certificate. */
export function httpsStatus(url: string, tls: { ca: string | Buffer; cert: string | Buffer; key: string | Buffer }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tls, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

async function waitHealthy(
  proc: StartedProcess,
  url: string,
  tls: { ca: string; cert: string; key: string },
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  await pollUntil(async () => {
    assertRunning(proc);
    return (await httpsStatus(url, tls)) === 200;
  }, { what: `${proc.name} to answer 200 on ${url}`, timeoutMs, signal, isFatal: (error) => error instanceof ProcessExited });
}

