// The common scripted prepull (bench/scripted-prepull.sh) on the cluster kube-prepull was just measured
// on: the script runs as its own ServiceAccount, so the audit log counts its requests apart from
// serve's; the benchmark watches the DaemonSet as the (unaudited) admin to see when the cluster had
// every pod Ready, next to when the script noticed.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { packageRoot } from "../src/local-cluster/binaries.js";
import { auditedRequests, countBetween, SCRIPT_ACCOUNT } from "./support/audit.js";
import { stopOnInterrupt } from "./support/interruption.js";
import { log } from "./support/machine.js";

export interface ScriptedRun {
  /** Milliseconds from the script's start until the cluster's DaemonSet status had every pod Ready. */
  allReadyMs: number | undefined;
  /** ... until the script saw it (it then deletes the DaemonSet). */
  scriptSawReadyMs: number;
  /** ... until the script's delete returned. */
  doneMs: number;
  requests: Map<string, number>;
}

export async function measureScripted(options: {
  kc: k8s.KubeConfig; kubectl: string; kubeconfig: string; auditLog: string; stateDir: string;
  namespace: string; nodes: number; pullDelay: string;
  /** The DaemonSet's name (one per run). */
  name: string;
}): Promise<ScriptedRun> {
  const NAME = options.name;
  const apps = options.kc.makeApiClient(k8s.AppsV1Api);
  const cacheDir = path.join(options.stateDir, "scripted-kube-cache"); // a fresh kubectl cache, as on a CI runner
  mkdirSync(cacheDir, { recursive: true });
  const before = auditedRequests(options.auditLog, SCRIPT_ACCOUNT);
  const t0 = Date.now();
  const child = spawn("bash", [path.join(packageRoot(), "bench", "scripted-prepull.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
    env: {
      ...process.env, KUBECTL: options.kubectl, KUBECONFIG: options.kubeconfig, KUBECACHEDIR: cacheDir,
      NAMESPACE: options.namespace, NAME, PULL_DELAY: options.pullDelay,
      IMAGES: "registry.example.com/shop/app:v2 registry.example.com/shop/sidecar:v2",
    },
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const release = stopOnInterrupt(async () => {
    child.kill();
    await exited;
  });
  let allReadyMs: number | undefined;
  let stopWatching = false;
  const watching = (async () => {
    while (!stopWatching && allReadyMs === undefined) {
      const ds = await apps.readNamespacedDaemonSet({ name: NAME, namespace: options.namespace }).catch(() => undefined);
      if ((ds?.status?.numberReady ?? 0) >= options.nodes) allReadyMs = Date.now() - t0;
      await sleep(100);
    }
  })();
  const seen = new Map<string, number>();
  for await (const line of createInterface({ input: child.stdout })) {
    seen.set(line.trim(), Date.now() - t0);
    log(`${options.nodes} nodes, script: ${line.trim()} after ${Date.now() - t0} ms`);
  }
  const code = await exited;
  release();
  stopWatching = true;
  await watching;
  if (code !== 0 || !seen.has("done")) throw new Error(`bench/scripted-prepull.sh exited with ${code}`);
  await sleep(1000); // the audit log is written in blocking mode; this is only for safety
  return {
    allReadyMs,
    scriptSawReadyMs: seen.get("all-ready")!,
    doneMs: seen.get("done")!,
    requests: countBetween(before, auditedRequests(options.auditLog, SCRIPT_ACCOUNT)),
  };
}
