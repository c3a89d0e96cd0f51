// Finds (building on first use) the control plane binaries: tools/controlplane/build.sh builds them
// from their Go modules into a cache outside the work tree, keyed by versions.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Interrupted } from "./wait.js";

export interface ControlPlaneBinaries {
  dir: string;
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
  kwok: string;
  /** The real node's kubelet. */
  kubelet: string;
  /** Builds and pushes images to the local registry. */
  crane: string;
}

/** The repository (package) root: the nearest ancestor of this file holding package.json. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, "package.json"))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("package.json not found above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

export function binariesIn(dir: string): ControlPlaneBinaries {
  return {
    dir,
    etcd: path.join(dir, "etcd"),
    kubeApiserver: path.join(dir, "kube-apiserver"),
    kubeControllerManager: path.join(dir, "kube-controller-manager"),
    kubeScheduler: path.join(dir, "kube-scheduler"),
    kubectl: path.join(dir, "kubectl"),
    kwok: path.join(dir, "kwok"),
    kubelet: path.join(dir, "kubelet"),
    crane: path.join(dir, "crane"),
  };
}

/**
 * Runs the build script (a no-op on a cache hit) and returns the binaries. Progress lines of a cold
 * build go to `progress`. `cacheDir` overrides the cache root (default ~/.cache/kube-prepull).
 */
export async function ensureControlPlaneBinaries(options: BuildOptions): Promise<ControlPlaneBinaries> {
  const dir = await runBuildScript(path.join("tools", "controlplane", "build.sh"), "the control plane", "1.24", options);
  const binaries = binariesIn(dir);
  for (const file of Object.values(binaries) as string[]) {
    if (!existsSync(file)) throw new Error(`control plane build reported ${dir}, but ${file} is missing`);
  }
  return binaries;
}

/** The pinned helm CLI (tools/helm/build.sh, cached like the control plane under its own key): its path. */
export async function ensureHelm(options: BuildOptions): Promise<string> {
  const helm = await runBuildScript(path.join("tools", "helm", "build.sh"), "helm", "1.26", options);
  if (!existsSync(helm)) throw new Error(`helm build reported ${helm}, but it is missing`);
  return helm;
}

export interface BuildOptions {
  progress: (line: string) => void;
  cacheDir?: string;
  env: NodeJS.ProcessEnv;
  /** Stops the build (its whole process group: bash and the go commands) and throws Interrupted. */
  signal?: AbortSignal;
}

/** Runs a build script of this repository; resolves to the last line it printed on stdout. */
async function runBuildScript(script: string, what: string, goVersion: string, options: BuildOptions): Promise<string> {
  const file = path.join(packageRoot(), script);
  // The npm package ships the CLI only (package.json "files"): the local cluster builds from a checkout.
  if (!existsSync(file)) {
    throw new Error(`building ${what} needs a checkout of kube-prepull (the local cluster, demo and tests): ${file} is not in the installed npm package`);
  }
  const env = { ...options.env, ...(options.cacheDir ? { KUBE_PREPULL_CACHE: options.cacheDir } : {}) };
  if (options.signal?.aborted) throw new Interrupted(options.signal.reason);
  // With a signal, its own process group, so an interruption stops the go commands too, not only
  // bash; without, in ours, so a Ctrl-C reaches it.
  const child = spawn("bash", [file], { stdio: ["ignore", "pipe", "pipe"], env, detached: options.signal !== undefined });
  const stopBuild = (): void => {
    options.progress(`${String(options.signal?.reason)}: interrupted, stopping the build`);
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      // already gone
    }
  };
  options.signal?.addEventListener("abort", stopBuild, { once: true });
  let stdout = "";
  let stderrTail = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  let pending = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      options.progress(line);
      stderrTail = (stderrTail + line + "\n").slice(-4000);
    }
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  }).finally(() => options.signal?.removeEventListener("abort", stopBuild));
  if (options.signal?.aborted) throw new Interrupted(options.signal.reason);
  if (code !== 0) {
    throw new Error(
      `building ${what} failed (exit ${code}); is Go ≥ ${goVersion} installed and the Go module proxy reachable?\n${stderrTail}`,
    );
  }
  return stdout.trim().split("\n").pop() ?? "";
}
