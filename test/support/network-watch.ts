// Watches, for the whole test run, for TCP connections to any address outside 127.0.0.0/8 (and
// ::1) made by the suite's processes: everything the test runner started (the cluster, serve,
// the tests), the real nodes' containerd shims and containers (their cgroups), and the pods'
// own network namespaces. It samples /proc/net/tcp{,6} every 100 ms, so a connection shorter than
// that can slip through; the real nodes are built so that none can leave anyway (no route out of
// the pod bridge, a blackhole route for pod addresses, registries other than the local one sent
// to a closed loopback port). docs/local-cluster.md, "Network safety".
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { commandLine } from "../../src/local-cluster/processes.js";

export interface TcpSocket {
  local: string;
  remote: string;
  /** The kernel's state code: 01 ESTABLISHED, 02 SYN_SENT, 0A LISTEN, … */
  state: string;
  inode: number;
}

function hexToIpv4(hex: string): string {
  return [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join(".");
}

function hexToIpv6(hex: string): string {
  // /proc prints four 32-bit words, each in host (little-endian) byte order; URL compresses the result.
  const bytes = Array.from({ length: 4 }, (_, w) => hex.toLowerCase().slice(w * 8, w * 8 + 8).match(/../g)!.reverse().join("")).join("");
  return new URL(`http://[${bytes.match(/..../g)!.join(":")}]/`).hostname.slice(1, -1);
}

function endpoint(field: string, v6: boolean): string {
  const [addr, port] = field.split(":");
  return `${v6 ? `[${hexToIpv6(addr!)}]` : hexToIpv4(addr!)}:${parseInt(port!, 16)}`;
}

/** Parses /proc/net/tcp or /proc/net/tcp6. */
export function parseProcNetTcp(text: string, v6: boolean): TcpSocket[] {
  return text
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length > 9)
    .map((f) => ({ local: endpoint(f[1]!, v6), remote: endpoint(f[2]!, v6), state: f[3]!, inode: Number(f[9]) }));
}

/** True for an address on this machine's loopback (127.0.0.0/8, ::1, ::ffff:127.x) or unset (0.0.0.0). */
export function isLoopbackOrUnset(endpointText: string): boolean {
  const host = endpointText.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host.startsWith("127.") || host === "::1" || /^::ffff:(127\.|7f)/.test(host) || host === "0.0.0.0" || host === "::";
}

/** Sockets (not listeners) whose remote end is outside loopback. */
export function outsideConnections(sockets: TcpSocket[]): TcpSocket[] {
  return sockets.filter((s) => s.state !== "0A" && !isLoopbackOrUnset(s.remote));
}

export interface Violation {
  remote: string;
  state: string;
  owner: string;
}

function read(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function pids(): number[] {
  return readdirSync("/proc").filter((e) => /^\d+$/.test(e)).map(Number);
}

function parentOf(pid: number): number {
  return Number(/^PPid:\s+(\d+)/m.exec(read(`/proc/${pid}/status`))?.[1] ?? 0);
}

/** The suite's processes: descendants of `root`, and any whose command line or cgroup names one of `markers`. */
function suiteProcesses(root: number, markers: string[]): Set<number> {
  const all = pids();
  const parents = new Map(all.map((p) => [p, parentOf(p)]));
  const ours = new Set<number>();
  const isDescendant = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parents.get(p) ?? 0, hops++) if (p === root) return true;
    return false;
  };
  for (const pid of all) {
    const cmdline = commandLine(pid) ?? "";
    const cgroup = read(`/proc/${pid}/cgroup`);
    if (isDescendant(pid) || markers.some((m) => cmdline.includes(m) || cgroup.includes(m))) ours.add(pid);
  }
  return ours;
}

function socketOwner(inode: number, candidates: Set<number>): number | undefined {
  const target = `socket:[${inode}]`;
  for (const pid of candidates) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return pid;
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

/** Starts sampling; `stop` returns what was seen. `markers`: the state folder, the real nodes' cgroup names. */
export function watchNetwork(markers: () => string[], root = process.pid, intervalMs = 100): { stop: () => Violation[] } {
  const seen = new Map<string, Violation>();
  const sample = (): void => {
    const ours = suiteProcesses(root, markers());
    // The host's network namespace, then each pod's (read through one of its processes).
    const namespaces = new Map<string, number>([[readlinkSafe("/proc/self/ns/net"), process.pid]]);
    for (const pid of ours) namespaces.set(readlinkSafe(`/proc/${pid}/ns/net`), pid);
    for (const [ns, pid] of namespaces) {
      const hostNs = pid === process.pid;
      const sockets = [...parseProcNetTcp(read(`/proc/${pid}/net/tcp`), false), ...parseProcNetTcp(read(`/proc/${pid}/net/tcp6`), true)];
      for (const socket of outsideConnections(sockets)) {
        const owner = hostNs ? socketOwner(socket.inode, ours) : pid;
        if (owner === undefined) continue; // a socket of some other program on the machine
        const key = `${ns} ${socket.local} ${socket.remote}`;
        if (!seen.has(key)) seen.set(key, { remote: socket.remote, state: socket.state, owner: `${owner} ${(commandLine(owner) ?? "").slice(0, 200)}` });
      }
    }
  };
  const timer = setInterval(sample, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return [...seen.values()];
    },
  };
}

function readlinkSafe(file: string): string {
  try {
    return readlinkSync(file);
  } catch {
    return file;
  }
}
