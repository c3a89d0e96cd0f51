// The Prometheus Operator's CRDs (ServiceMonitor, PodMonitor, PrometheusRule, …) as its Go module
// ships them (example/prometheus-operator-crd/), fetched from the Go module proxy with
// `go mod download` into the Go module cache, outside the work tree and keyed by version: a cache
// hit makes no network call.
import { execFile } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator";
/** The one place the version is pinned (v0.95.x is not served by the proxy this project uses). */
export const PROMETHEUS_OPERATOR_VERSION = "v0.94.0";

/** The directory of the CRD YAML files, downloading the module on first use. */
export async function prometheusOperatorCrdDir(): Promise<string> {
  const module = `${PROMETHEUS_OPERATOR_MODULE}@${PROMETHEUS_OPERATOR_VERSION}`;
  let stdout: string;
  try {
    // Outside any Go module (the temp dir), so no go.mod is read or changed.
    ({ stdout } = await run("go", ["mod", "download", "-json", module], { cwd: os.tmpdir(), env: { ...process.env, GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" } }));
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === "ENOENT") throw new Error("go not found on PATH: Go ≥ 1.24 is needed to fetch the Prometheus Operator CRDs");
    throw new Error(`go mod download ${module} failed: ${e.stdout ?? ""}${e.stderr ?? e.message}`);
  }
  const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download ${module}: ${info.Error ?? "no directory"}`);
  return path.join(info.Dir, "example", "prometheus-operator-crd");
}

/** The CRD file of one resource, e.g. "servicemonitors". */
export function crdFile(dir: string, plural: string): string {
  return path.join(dir, `monitoring.coreos.com_${plural}.yaml`);
}
