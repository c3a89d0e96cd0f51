// What a real node makes on the host outside its processes — cgroups, mounts, a bridge and a
// route — and how `down` finds and removes exactly those again. Every name and path is derived from
// the node's own folder, so two clusters (or a crashed earlier run) never touch each other's.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";

const run = promisify(execFile);
const CGROUP_V1 = "/sys/fs/cgroup";

/** Names a node's host resources: the bridge (≤ 15 characters) and its cgroup root. */
export function hostNamesFor(nodeDir: string): { bridge: string; cgroupRoot: string } {
  const hash = createHash("sha256").update(path.resolve(nodeDir)).digest("hex").slice(0, 8);
  return { bridge: `kpp${hash}`, cgroupRoot: `/kube-prepull-${hash}` };
}

/** The cgroup v1 controller hierarchies (cpu, memory, …, name=systemd), or [] on a cgroup v2-only host. */
export function cgroupV1Hierarchies(mountinfo = readFileSync("/proc/self/mountinfo", "utf8")): string[] {
  return mountinfo
    .split("\n")
    .map((line) => line.split(" - "))
    .filter(([, rest]) => rest?.startsWith("cgroup "))
    .map(([head]) => head!.split(" ")[4]!)
    .filter((mountPoint) => mountPoint.startsWith(CGROUP_V1 + "/"));
}

/**
 * Creates the node's cgroup root in every hierarchy (the kubelet refuses a `cgroupRoot` that does
 * not exist). cpuset needs its CPUs and memory nodes copied from the parent before tasks can join.
 */
export function createCgroupRoot(cgroupRoot: string): void {
  for (const hierarchy of cgroupV1Hierarchies()) {
    const dir = path.join(hierarchy, cgroupRoot);
    mkdirSync(dir, { recursive: true });
    if (existsSync(path.join(dir, "cpuset.cpus"))) {
      for (const file of ["cpuset.cpus", "cpuset.mems"]) {
        writeFileSync(path.join(dir, file), readFileSync(path.join(hierarchy, file), "utf8"));
      }
    }
  }
}

function cgroupDirsDeepestFirst(root: string): string[] {
  if (!existsSync(root)) return [];
  const children = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory());
  return [...children.flatMap((c) => cgroupDirsDeepestFirst(path.join(root, c.name))), root];
}

/** PIDs of every process in the node's cgroups (its containers). */
export function processesInCgroupRoot(cgroupRoot: string): number[] {
  const pids = new Set<number>();
  for (const hierarchy of cgroupV1Hierarchies()) {
    for (const dir of cgroupDirsDeepestFirst(path.join(hierarchy, cgroupRoot))) {
      for (const pid of readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) pids.add(Number(pid));
    }
  }
  return [...pids];
}

/** Kills what is left in the node's cgroups, then removes them (deepest first). */
export async function removeCgroupRoot(cgroupRoot: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const pids = processesInCgroupRoot(cgroupRoot);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    await sleep(100);
  }
  for (const hierarchy of cgroupV1Hierarchies()) {
    for (const dir of cgroupDirsDeepestFirst(path.join(hierarchy, cgroupRoot))) {
      try {
        rmdirSync(dir);
      } catch {
        // a cgroup still in use is reported by the caller's leftovers check
      }
    }
  }
}

/** Mount points at or under `dir`, deepest first (octal escapes in mountinfo decoded). */
export function mountsUnder(dir: string, mountinfo = readFileSync("/proc/self/mountinfo", "utf8")): string[] {
  const prefix = path.resolve(dir);
  return mountinfo
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((m): m is string => m !== undefined)
    .map((m) => m.replace(/\\(\d{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((m) => m === prefix || m.startsWith(prefix + "/"))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts everything under `dir` (lazily: a busy mount is detached, not left behind). */
export async function unmountAllUnder(dir: string): Promise<void> {
  for (let pass = 0; pass < 5; pass++) {
    const mounts = mountsUnder(dir);
    if (mounts.length === 0) return;
    for (const mount of mounts) await run("umount", ["-l", mount]).catch(() => undefined);
  }
}

async function linkExists(name: string): Promise<boolean> {
  return run("ip", ["link", "show", name]).then(() => true, () => false);
}

/**
 * The node's pod network: a bridge with no address (so the host has no route into it through
 * the bridge) and a blackhole route for the subnet, so that anything that dials a pod address
 * fails here instead of leaving by the default route. IPv6 is off on the bridge (no router
 * solicitations). IP forwarding is not touched.
 */
export async function createPodNetwork(bridge: string, subnet: string): Promise<void> {
  await deletePodNetwork(bridge, subnet);
  await run("ip", ["link", "add", bridge, "type", "bridge"]);
  await run("sysctl", ["-q", "-w", `net.ipv6.conf.${bridge}.disable_ipv6=1`]).catch(() => undefined);
  await run("ip", ["link", "set", bridge, "up"]);
  await run("ip", ["route", "replace", "blackhole", subnet]);
}

export async function deletePodNetwork(bridge: string, subnet: string | undefined): Promise<void> {
  if (await linkExists(bridge)) await run("ip", ["link", "delete", bridge]);
  if (subnet) await run("ip", ["route", "del", "blackhole", subnet]).catch(() => undefined);
}

/**
 * A /24 in 10.250.0.0/16 that no route on the host covers yet, chosen from the node's hash: the
 * addresses host-local IPAM gives pods on the bridge. Nothing listens on or dials them (the
 * blackhole route above makes any attempt fail on this machine).
 */
export async function freePodSubnet(nodeDir: string): Promise<string> {
  const { stdout } = await run("ip", ["-4", "route", "show", "table", "all"]);
  const used = new Set([...stdout.matchAll(/10\.250\.(\d+)\.0\/24/g)].map((m) => Number(m[1])));
  const start = parseInt(createHash("sha256").update(path.resolve(nodeDir)).digest("hex").slice(0, 4), 16) % 250;
  for (let i = 0; i < 250; i++) {
    const candidate = (start + i) % 250;
    if (!used.has(candidate)) return `10.250.${candidate}.0/24`;
  }
  throw new Error("no free /24 left in 10.250.0.0/16 for a real node's pods");
}

/** Removes the kubelet's /var/log/containers links that point into the node's folder. */
export function removeContainerLogLinks(nodeDir: string): void {
  const dir = "/var/log/containers";
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const link = path.join(dir, name);
    try {
      if (readlinkSync(link).startsWith(path.resolve(nodeDir) + "/")) rmSync(link, { force: true });
    } catch {
      // not a link
    }
  }
}

/**
 * Removes libcni's cached results for the node's network (/var/lib/cni/results/<network>-<id>-eth0)
 * and the loopback plugin's for the same sandboxes (cni-loopback-<id>-lo).
 */
export function removeCniCache(network: string): void {
  const dir = "/var/lib/cni/results";
  if (!existsSync(dir)) return;
  const ours = readdirSync(dir).filter((name) => name.startsWith(`${network}-`));
  const sandboxes = ours.map((name) => name.slice(network.length + 1).replace(/-[^-]+$/, ""));
  for (const name of [...ours, ...sandboxes.map((id) => `cni-loopback-${id}-lo`)]) rmSync(path.join(dir, name), { force: true });
}

/**
 * Folders a kubelet or containerd creates at fixed host paths whatever their configuration says
 * (device plugin socket, shim sockets, libcni's cache, container log links).
 */
export const FIXED_HOST_DIRS = ["/run/containerd", "/var/lib/cni", "/var/lib/kubelet", "/var/log/containers"];

/** Which of FIXED_HOST_DIRS do not exist yet (so this node may remove them again). */
export function missingHostDirs(): string[] {
  return FIXED_HOST_DIRS.filter((dir) => !existsSync(dir));
}

function onlyEmptyFolders(dir: string, ignore: string[]): boolean {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (ignore.includes(full)) continue;
    if (!entry.isDirectory() || !onlyEmptyFolders(full, ignore)) return false;
  }
  return true;
}

/**
 * Removes the fixed host folders this node created, if nothing but empty folders (and the
 * kubelet's device plugin socket, which a stopped kubelet leaves behind) remains in them: a folder
 * some other program put files into since is left alone.
 */
export function removeCreatedHostDirs(created: string[]): void {
  const kubeletSocket = "/var/lib/kubelet/device-plugins/kubelet.sock";
  for (const dir of created) {
    if (existsSync(dir) && onlyEmptyFolders(dir, [kubeletSocket])) rmSync(dir, { recursive: true, force: true });
  }
}

/** What of a node's host resources is still there (after `down`, this should be nothing). */
export async function hostLeftovers(nodeDir: string, bridge: string, subnet: string, cgroupRoot: string): Promise<string[]> {
  const left: string[] = [];
  for (const mount of mountsUnder(nodeDir)) left.push(`mount ${mount}`);
  for (const hierarchy of cgroupV1Hierarchies()) if (existsSync(path.join(hierarchy, cgroupRoot))) left.push(`cgroup ${path.join(hierarchy, cgroupRoot)}`);
  if (await linkExists(bridge)) left.push(`network device ${bridge}`);
  const { stdout } = await run("ip", ["-4", "route", "show", "table", "all"]);
  if (stdout.includes(`blackhole ${subnet}`)) left.push(`route blackhole ${subnet}`);
  return left;
}
