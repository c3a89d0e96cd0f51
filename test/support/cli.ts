// The kube-prepull command tree as unit tests build it: no output unless asked for, no signal
// handlers, no exit code set.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Command } from "commander";
import { buildProgram } from "../../src/cli/program.js";
import { packageRoot } from "../../src/local-cluster/binaries.js";

export function testProgram(err: (line: string) => void = () => undefined): Command {
  return buildProgram({ env: {}, out: () => undefined, err }, {
    isTty: false,
    onStop: () => undefined,
    interruption: () => new AbortController().signal,
    stderr: { isTty: false, columns: () => 80, write: () => undefined },
    setExitCode: () => undefined,
  });
}

/** Runs the built executable (dist/src/cli/main.js) as a CI job would: its exit code and streams. */
export function runMain(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const main = path.join(packageRoot(), "dist", "src", "cli", "main.js");
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { env: { PATH: process.env.PATH ?? "" }, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: unknown }).code) : 0, stdout, stderr });
    });
  });
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the built executable as a child process (to signal it, or to wait): its streams collected. */
export function startMain(args: string[]): { child: ChildProcess; finished: Promise<Finished> } {
  const child = spawn(process.execPath, [path.join(packageRoot(), "dist", "src", "cli", "main.js"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const finished = new Promise<Finished>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return { child, finished };
}

/** A kubeconfig file whose API server is unreachable (port 1 on 127.0.0.1: refused at once), in `namespace`. */
export function unreachableKubeconfig(namespace: string): string {
  const kubeconfig = path.join(mkdtempSync(path.join(tmpdir(), "kube-prepull-unreachable-")), "kubeconfig");
  writeFileSync(kubeconfig, [
    "apiVersion: v1", "kind: Config", "current-context: c",
    "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]",
    "users: [{name: u, user: {token: t}}]",
    `contexts: [{name: c, context: {cluster: c, user: u, namespace: ${namespace}}}]`,
  ].join("\n"));
  return kubeconfig;
}
