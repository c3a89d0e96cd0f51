// The local OCI registry of a cluster with real nodes: Debian's `docker-registry` (distribution
// 2.8) twice over one storage folder — one open, one requiring credentials (htpasswd) — and the
// registry proxy (registry-proxy.ts) in front of each, which is what the nodes pull through.
// Everything listens on 127.0.0.1. Images are pushed to the open registry directly.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import bcrypt from "bcryptjs";
import { packageRoot } from "../binaries.js";
import { startProcess, type StartedProcess } from "../processes.js";

/** Credentials of the authenticating registry (test data: the registry exists only on 127.0.0.1). */
export const REGISTRY_CREDENTIALS = { username: "kube-prepull", password: "local-registry-password" } as const;

export interface RegistryAddresses {
  /** host:port of the open registry itself (pushes). */
  push: string;
  /** host:port the nodes pull open images from (the proxy). */
  pull: string;
  /** host:port the nodes pull images that need credentials from (the proxy of the htpasswd registry). */
  authPull: string;
  /** Control endpoints of the two proxies (http://…/_kube-prepull/proxy). */
  pullControl: string;
  authPullControl: string;
}

export interface RegistryPorts {
  registry: number;
  authRegistry: number;
  proxy: number;
  authProxy: number;
}

export function registryAddresses(ports: RegistryPorts): RegistryAddresses {
  const at = (port: number): string => `127.0.0.1:${port}`;
  return {
    push: at(ports.registry),
    pull: at(ports.proxy),
    authPull: at(ports.authProxy),
    pullControl: `http://${at(ports.proxy)}/_kube-prepull/proxy`,
    authPullControl: `http://${at(ports.authProxy)}/_kube-prepull/proxy`,
  };
}

function registryConfig(storage: string, port: number, htpasswd: string | undefined): string {
  return [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${storage}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    ...(htpasswd ? ["auth:", "  htpasswd:", "    realm: kube-prepull-local", `    path: ${htpasswd}`] : []),
    "",
  ].join("\n");
}

/** Starts both registries and the proxy process; returns the processes in start order. */
export function startRegistries(options: {
  dir: string;
  logDir: string;
  ports: RegistryPorts;
  binary: string;
  env: NodeJS.ProcessEnv;
}): { registry: StartedProcess; authRegistry: StartedProcess; proxy: StartedProcess } {
  const { dir, ports } = options;
  const storage = path.join(dir, "storage");
  mkdirSync(storage, { recursive: true });
  const htpasswd = path.join(dir, "htpasswd");
  // distribution reads only bcrypt entries.
  writeFileSync(htpasswd, `${REGISTRY_CREDENTIALS.username}:${bcrypt.hashSync(REGISTRY_CREDENTIALS.password, 10)}\n`, { mode: 0o600 });
  const start = (name: string, port: number, auth: string | undefined): StartedProcess => {
    const config = path.join(dir, `${name}.yaml`);
    writeFileSync(config, registryConfig(storage, port, auth));
    return startProcess({ name, command: options.binary, args: ["serve", config], env: options.env, logFile: path.join(options.logDir, `${name}.log`) });
  };
  const registry = start("registry", ports.registry, undefined);
  const authRegistry = start("auth-registry", ports.authRegistry, htpasswd);
  const proxyMain = path.join(packageRoot(), "dist", "src", "local-cluster", "real-node", "registry-proxy-main.js");
  const proxy = startProcess({
    name: "registry-proxy",
    command: process.execPath,
    args: [proxyMain, "--state-dir", dir, `${ports.proxy}=http://127.0.0.1:${ports.registry}`, `${ports.authProxy}=http://127.0.0.1:${ports.authRegistry}`],
    env: options.env,
    logFile: path.join(options.logDir, "registry-proxy.log"),
  });
  return { registry, authRegistry, proxy };
}
