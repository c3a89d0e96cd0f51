// Child processes of the local cluster: spawned in their own process group (so `down` can end
// each one with everything it started), logged to files, and found again by PID after a crash of
// the process that started them.
import { spawn } from "node:child_process";
import { openSync, closeSync, readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export interface StartedProcess {
  name: string;
  pid: number;
  logFile: string;
  /** Set once the process has exited (only while this Node process is the one that started it). */
  exited: () => { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

// Proxy variables would route the components' loopback traffic (and the apiserver's webhook calls)
// through a proxy; the local cluster talks to 127.0.0.1 only.
const PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"];

export function cleanEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const cleaned: NodeJS.ProcessEnv = { ...env, NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" };
  for (const key of PROXY_VARIABLES) delete cleaned[key];
  return cleaned;
}

export function startProcess(options: {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env: NodeJS.ProcessEnv;
}): StartedProcess {
  const out = openSync(options.logFile, "a");
  const child = spawn(options.command, options.args, {
    detached: true, // own process group: stopped as a group, survives `cluster up` returning
    stdio: ["ignore", out, out],
    env: options.env,
  });
  closeSync(out);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.on("exit", (code, signal) => {
    exit = { code, signal };
  });
  child.on("error", () => {
    exit = { code: -1, signal: null };
  });
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${options.name} (${options.command})`);
  return { name: options.name, pid: child.pid, logFile: options.logFile, exited: () => exit };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The command line of a running process, or undefined when it is gone. */
export function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return undefined;
  }
}

/** PIDs of running processes (other than this one) whose command line names `marker`. */
export function processesNaming(marker: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => pid !== process.pid && commandLine(pid)?.includes(marker));
}

/**
 * Ends a process group: SIGTERM, then SIGKILL after `graceMs`. `marker` must appear in the leader's
 * command line, so a PID reused by an unrelated process after a crash is never signalled.
 */
export async function stopProcessGroup(pid: number, marker: string, graceMs = 10_000): Promise<void> {
  const cmd = commandLine(pid);
  if (cmd === undefined || !cmd.includes(marker)) return;
  signalGroup(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid) || isZombie(pid)) break;
    await sleep(100);
  }
  signalGroup(pid, "SIGKILL"); // the rest of the group, if anything lingers
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}

/** A kB field of /proc/<pid>/status in bytes, or undefined (no such process). */
function statusBytes(pid: number, field: "VmHWM" | "VmRSS"): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Peak resident set size (VmHWM) of a running process in bytes, or undefined. */
export const peakMemoryBytes = (pid: number): number | undefined => statusBytes(pid, "VmHWM");

/** Resident set size now (VmRSS) of a running process in bytes, or undefined. */
export const residentMemoryBytes = (pid: number): number | undefined => statusBytes(pid, "VmRSS");

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
