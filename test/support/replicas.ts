// `kube-prepull serve` replicas as real processes, and what a Service does in front of them, for
// the high-availability tests.
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { kubectl, testKubeConfig } from "./cluster.js";

export interface Replica {
  name: string;
  child: ChildProcess;
  admissionPort: number;
  opsPort: number;
  output: () => string;
}

/** Starts `kube-prepull serve ARGS` with POD_NAME=name; resolves once it prints where it serves. */
export function startReplica(name: string, args: string[]): Promise<Replica> {
  const child = spawn(process.execPath, [path.join(packageRoot(), "dist/src/cli/main.js"), "serve", "--port", "0", "--ops-port", "0", ...args], {
    env: { ...process.env, POD_NAME: name },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /serving admission on https:\/\/127\.0\.0\.1:(\d+), \/healthz \/readyz \/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match) resolve({ name, child, admissionPort: Number(match[1]), opsPort: Number(match[2]), output: () => output });
    });
    child.on("exit", (code) => reject(new Error(`replica ${name} exited (${code}): ${output}`)));
  });
}

/**
 * A kubeconfig file in `dir` for the test cluster that authenticates with a token of the
 * ServiceAccount kube-prepull/kube-prepull only: what the installed Deployment's pods run as.
 */
export async function serviceAccountKubeconfigFile(dir: string): Promise<string> {
  const { stdout } = await kubectl(["create", "token", "kube-prepull", "-n", "kube-prepull", "--duration=1h"]);
  const cluster = testKubeConfig().getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...cluster, name: "test" }],
    users: [{ name: "kube-prepull", token: stdout.trim() }],
    contexts: [{ name: "kube-prepull", cluster: "test", user: "kube-prepull" }],
    currentContext: "kube-prepull",
  });
  const file = path.join(dir, "kubeconfig");
  writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
  return file;
}

export function stopReplicas(replicas: Replica[]): Promise<void> {
  return Promise.all(replicas.map((r) => new Promise<void>((resolve) => {
    if (r.child.exitCode !== null || r.child.signalCode !== null) return resolve();
    r.child.once("exit", () => resolve());
    r.child.kill("SIGTERM");
  }))).then(() => undefined);
}

export async function isLeader(replica: Replica): Promise<boolean> {
  const text = await (await fetch(`http://127.0.0.1:${replica.opsPort}/metrics`)).text();
  return /^kube_prepull_leader 1$/m.test(text);
}

export async function isReady(replica: Replica): Promise<boolean> {
  return (await fetch(`http://127.0.0.1:${replica.opsPort}/readyz`)).ok;
}

/**
 * A TCP balancer on 127.0.0.1, as a Service in front of the replicas: each connection goes to the
 * next backend in turn (TLS passes through), skipping one that refuses it.
 */
export async function startBalancer(backends: () => number[]): Promise<{ port: number; close: () => Promise<void> }> {
  let next = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    const ports = backends();
    const attempt = (tries: number): void => {
      if (tries >= ports.length) return void client.destroy();
      const upstream = net.connect(ports[next++ % ports.length]!, "127.0.0.1");
      let connected = false;
      upstream.once("connect", () => {
        connected = true;
        sockets.add(upstream);
        upstream.on("close", () => sockets.delete(upstream));
        client.pipe(upstream).pipe(client);
      });
      upstream.on("error", () => (connected ? client.destroy() : attempt(tries + 1)));
      client.on("error", () => upstream.destroy());
    };
    attempt(0);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
