// What a real node needs from the machine besides the binaries built with the control plane:
// Debian's containerd, runc, CNI plugins and registry, iproute2 and tar, and root. `up
// --real-nodes` checks them first and names the package to install for anything missing.
import { accessSync, constants } from "node:fs";

export interface RealNodePrerequisites {
  containerd: string;
  runc: string;
  cniBin: string;
  registry: string;
}

/** Each needed file and the Debian package that installs it. */
const NEEDED: { file: string; pkg: string; key?: keyof RealNodePrerequisites }[] = [
  { file: "/usr/bin/containerd", pkg: "containerd", key: "containerd" },
  { file: "/usr/bin/containerd-shim-runc-v2", pkg: "containerd" },
  { file: "/usr/sbin/runc", pkg: "runc", key: "runc" },
  { file: "/usr/lib/cni/bridge", pkg: "containernetworking-plugins", key: "cniBin" },
  { file: "/usr/lib/cni/host-local", pkg: "containernetworking-plugins" },
  { file: "/usr/lib/cni/loopback", pkg: "containernetworking-plugins" },
  { file: "/usr/bin/docker-registry", pkg: "docker-registry", key: "registry" },
  { file: "/usr/sbin/ip", pkg: "iproute2" },
  { file: "/usr/bin/tar", pkg: "tar" },
];

export const REAL_NODE_PACKAGES = [...new Set(NEEDED.map((n) => n.pkg))];

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The tools, or an error naming every missing file and the `apt-get install` line that brings them. */
export function checkRealNodePrerequisites(isRoot = process.getuid?.() === 0): RealNodePrerequisites {
  const missing = NEEDED.filter((n) => !executable(n.file));
  const problems: string[] = [];
  if (!isRoot) problems.push("real nodes need root (a kubelet and containerd manage cgroups, mounts and network devices)");
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((m) => m.pkg))].join(" ");
    problems.push(`missing ${missing.map((m) => m.file).join(", ")}: install with  apt-get install -y ${packages}`);
  }
  if (problems.length > 0) throw new Error(`cannot start real nodes: ${problems.join("; ")}`);
  const fileOf = (key: keyof RealNodePrerequisites): string => NEEDED.find((n) => n.key === key)!.file;
  return { containerd: fileOf("containerd"), runc: fileOf("runc"), cniBin: fileOf("cniBin"), registry: fileOf("registry") };
}
