// Stopping and starting one component of a running local cluster (`cluster restart`), so tests and
// the soak can play a control-plane outage: the component's process group is stopped, it stays down
// for a while, then it is launched again with the command line, environment and log file it had,
// and the state file records its new PID (docs/local-cluster.md "Restarting a component").
import { readFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { COMPONENTS, httpsStatus, readClusterState, writeClusterState, type ClusterState, type Component } from "./cluster.js";
import { commandLine, isAlive, startProcess, stopProcessGroup, tail, type StartedProcess } from "./processes.js";
import { pollUntil } from "./wait.js";

export interface RestartOptions {
  /** How long the component stays down before it is started again (default 0). */
  downForMs?: number;
  /** How long to wait for the component to answer its health check once started (default 120 s). */
  readyTimeoutMs?: number;
  progress?: (line: string) => void;
}

export interface RestartResult {
  component: Component;
  oldPid: number;
  newPid: number;
  /** When the old process was gone and when the new one answered its health check (epoch ms). */
  stoppedAt: number;
  readyAt: number;
}

export function isComponent(name: string): name is Component {
  return (COMPONENTS as readonly string[]).includes(name);
}

/** argv of a running process, as recorded in /proc (NUL-separated), or undefined when gone. */
function argvOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
  } catch {
    return undefined;
  }
}

/** The environment a running process was started with (what `startCluster` gave it). */
function environmentOf(pid: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const at = entry.indexOf("=");
    if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return env;
}

/** The URL each component answers 200 on once it works again (as `cluster up` waits for it). */
function healthUrl(state: ClusterState, component: Component): string | undefined {
  const p = state.ports;
  switch (component) {
    case "etcd": return `https://127.0.0.1:${p.etcdClient}/health`;
    case "kube-apiserver": return `${state.server}/readyz`;
    case "kube-controller-manager": return `https://127.0.0.1:${p.controllerManager}/healthz`;
    case "kube-scheduler": return `https://127.0.0.1:${p.scheduler}/healthz`;
    case "kwok": return undefined; // no health port of its own here: running is all we can check
  }
}

function httpsStatusOf(url: string, stateDir: string): Promise<number> {
  const pki = path.join(stateDir, "pki");
  return httpsStatus(url, {
    ca: readFileSync(path.join(pki, "ca.crt")),
    cert: readFileSync(path.join(pki, "admin.crt")),
    key: readFileSync(path.join(pki, "admin.key")),
  });
}

/** The component's recorded PID and argv; an error when it does not run. */
function runningComponent(stateDir: string, component: Component): { state: ClusterState; oldPid: number; argv: string[] } {
  const state = readClusterState(stateDir);
  if (!state) throw new Error(`no cluster at ${stateDir}`);
  const oldPid = state.pids[component];
  const argv = oldPid !== undefined && commandLine(oldPid)?.includes(state.stateDir) ? argvOf(oldPid) : undefined;
  if (oldPid === undefined || !argv || argv.length === 0) {
    throw new Error(`${component} of cluster ${state.name} is not running (pid ${oldPid ?? "none"}); restart needs a running cluster`);
  }
  return { state, oldPid, argv };
}

/** Whether the cluster's `component` answers its health check now (kwok: whether it runs). */
export async function componentHealthy(stateDir: string, component: Component): Promise<boolean> {
  const state = readClusterState(stateDir);
  const pid = state?.pids[component];
  if (!state || pid === undefined) return false;
  const url = healthUrl(state, component);
  if (url === undefined) return isAlive(pid);
  return (await httpsStatusOf(url, state.stateDir).catch(() => 0)) === 200;
}

class ExitedAgain extends Error {}

async function waitHealthy(state: ClusterState, component: Component, started: StartedProcess, timeoutMs: number): Promise<void> {
  const url = healthUrl(state, component);
  await pollUntil(async () => {
    const exit = started.exited();
    if (exit) throw new ExitedAgain(`${component} exited again (code ${exit.code}, signal ${exit.signal}):\n${tail(started.logFile, 15)}`);
    return url === undefined ? isAlive(started.pid) : (await httpsStatusOf(url, state.stateDir)) === 200;
  }, { what: `${component} to answer 200 on ${url ?? "(running)"}`, timeoutMs, isFatal: (e) => e instanceof ExitedAgain });
}

/**
 * Stops `component` of the cluster in `stateDir` (SIGTERM to its process group, SIGKILL after
 * 10 s), waits `downForMs`, starts it again exactly as it ran, and returns once it answers its
 * health check. The cluster must be running: a component that is not is an error.
 */
export async function restartComponent(stateDir: string, component: Component, options: RestartOptions = {}): Promise<RestartResult> {
  const progress = options.progress ?? (() => undefined);
  const { state, oldPid, argv } = runningComponent(stateDir, component);
  const env = environmentOf(oldPid);
  progress(`stopping ${component} (pid ${oldPid})`);
  await stopProcessGroup(oldPid, state.stateDir);
  // Gone, or a zombie (empty command line) until the process that started it reaps it.
  await pollUntil(() => Promise.resolve(!isAlive(oldPid) || !(commandLine(oldPid) ?? "").includes(state.stateDir)), { what: `${component} to exit`, timeoutMs: 15_000, intervalMs: 50 });
  const stoppedAt = Date.now();
  if ((options.downForMs ?? 0) > 0) {
    progress(`${component} down for ${((options.downForMs ?? 0) / 1000).toFixed(0)}s`);
    await sleep(options.downForMs);
  }
  const logFile = path.join(state.stateDir, "logs", `${component}.log`);
  const started = startProcess({ name: component, command: argv[0]!, args: argv.slice(1), env, logFile });
  // Re-read: another restart (or `up`) may have written the file meanwhile.
  const current = readClusterState(stateDir) ?? state;
  current.pids[component] = started.pid;
  writeClusterState(current);
  progress(`started ${component} again (pid ${started.pid})`);
  await waitHealthy(state, component, started, options.readyTimeoutMs ?? 120_000);
  return { component, oldPid, newPid: started.pid, stoppedAt, readyAt: Date.now() };
}
