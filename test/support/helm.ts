// The pinned helm CLI (tools/helm/build.sh; test/run-with-cluster.ts passes its path as
// KUBE_PREPULL_TEST_HELM) with its state in a temporary directory, never the user's.
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { testKubeconfigPath } from "./cluster.js";

const run = promisify(execFile);

export const CHART_DIR = path.join(packageRoot(), "charts", "kube-prepull");

let home: string | undefined;

function helmPath(): string {
  const helm = process.env.KUBE_PREPULL_TEST_HELM;
  if (!helm) throw new Error("KUBE_PREPULL_TEST_HELM is not set: the chart's tests run through `npm test` (test/run-with-cluster.ts)");
  return helm;
}

/**
 * The environment to run commands of the docs in: the pinned helm and the cluster's kubectl first
 * on PATH, KUBECONFIG the test cluster's, helm's state in a temporary directory.
 */
export function helmEnv(options: { cluster: boolean } = { cluster: true }): NodeJS.ProcessEnv {
  home ??= mkdtempSync(path.join(os.tmpdir(), "kube-prepull-helm-"));
  const binDir = process.env.KUBE_PREPULL_TEST_BIN_DIR ?? "";
  return {
    ...process.env,
    PATH: [path.dirname(helmPath()), binDir, process.env.PATH].join(path.delimiter),
    // Rendering and linting must not need a cluster.
    KUBECONFIG: options.cluster ? testKubeconfigPath() : "/dev/null",
    HELM_CACHE_HOME: path.join(home, "cache"),
    HELM_CONFIG_HOME: path.join(home, "config"),
    HELM_DATA_HOME: path.join(home, "data"),
  };
}

/** Runs helm; rejects (with stdout and stderr on the error) when it exits non-zero. */
export function helm(args: string[], options: { cluster?: boolean } = {}): Promise<{ stdout: string; stderr: string }> {
  return run(helmPath(), args, { env: helmEnv({ cluster: options.cluster ?? false }), maxBuffer: 64 * 1024 * 1024 });
}

/** `helm template` of the chart with these `--set`-style values (a JSON value each), parsed. */
export async function renderChart(values: Record<string, unknown> = {}, namespace = "kube-prepull"): Promise<k8s.KubernetesObject[]> {
  const { stdout } = await helm(["template", "kube-prepull", CHART_DIR, "--namespace", namespace, ...setJsonArgs(values)]);
  return parseAllDocuments(stdout).map((d) => d.toJS() as k8s.KubernetesObject | null).filter((o): o is k8s.KubernetesObject => o !== null);
}

/** `--set-json key=<json>` per value: types survive (a string stays a string). */
export function setJsonArgs(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([key, value]) => ["--set-json", `${key}=${JSON.stringify(value)}`]);
}
