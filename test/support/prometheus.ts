// Prometheus and promtool from Debian's `prometheus` package (.ci/run installs it): promtool for
// the rules, a real Prometheus for the cluster test. Prometheus listens on 127.0.0.1 only, on a
// free port, with its storage in a temporary directory; stop() ends it by PID and removes the
// directory, whatever happened.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { pollUntil } from "../../src/local-cluster/wait.js";

const MISSING = (tool: string): string =>
  `${tool} not found on PATH: install Debian's prometheus package (apt-get install prometheus; .ci/run does)`;

/** Runs promtool; resolves with its exit code and output (a failing check is a result, not an error). */
export function promtool(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile("promtool", args, { cwd }, (error, stdout, stderr) => {
      if ((error as NodeJS.ErrnoException | null)?.code === "ENOENT") return reject(new Error(MISSING("promtool")));
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

/** A port nothing listens on now, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface ScrapeJob {
  job: string;
  targets: string[];
  /** Extra scrape_config fields (scheme, tls_config, …). */
  config?: Record<string, unknown>;
}

export interface RunningPrometheus {
  url: string;
  /** GET an HTTP API path (/api/v1/…) and return its `data`; throws on an error status. */
  api: <T>(pathAndQuery: string) => Promise<T>;
  /** An instant query's vector result. */
  query: (expr: string) => Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  /** The last lines of Prometheus's own log. */
  log: () => string;
  stop: () => Promise<void>;
}

/**
 * `files` are written beside the configuration (credentials a job's tls_config names by relative
 * path, which Prometheus resolves against the configuration's directory).
 */
export async function startPrometheus(options: { jobs: ScrapeJob[]; rules: string; interval: string; files?: Record<string, string> }): Promise<RunningPrometheus> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kube-prepull-prometheus-"));
  writeFileSync(path.join(dir, "rules.yaml"), options.rules);
  for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(path.join(dir, name), content, { mode: 0o600 });
  writeFileSync(path.join(dir, "prometheus.yml"), stringify({
    global: { scrape_interval: options.interval, scrape_timeout: options.interval, evaluation_interval: options.interval },
    rule_files: ["rules.yaml"],
    scrape_configs: options.jobs.map((j) => ({ job_name: j.job, static_configs: [{ targets: j.targets }], ...j.config })),
  }));
  const port = await freePort();
  const logFile = path.join(dir, "prometheus.log");
  const logFd = openSync(logFile, "a");
  const child = spawn("prometheus", [
    `--config.file=${path.join(dir, "prometheus.yml")}`,
    `--storage.tsdb.path=${path.join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--storage.tsdb.retention.time=1h",
  ], { stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => { exited = true; resolve(); }));
  const spawnError = new Promise<Error>((resolve) => child.once("error", (error) => { exited = true; resolve(error); }));
  const log = (): string => { try { return readFileSync(logFile, "utf8").split("\n").slice(-30).join("\n"); } catch { return ""; } };
  // Should the test process end without stop() (an uncaught error), Prometheus and its directory
  // go with it.
  const killOnExit = (): void => {
    if (!exited) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", killOnExit);
  const stop = async (): Promise<void> => {
    process.removeListener("exit", killOnExit);
    if (!exited && child.pid !== undefined) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exit;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const response = await fetch(url + pathAndQuery);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`${pathAndQuery}: ${body.error ?? response.status}`);
    return body.data;
  };
  try {
    await Promise.race([
      spawnError.then((error) => { throw (error as NodeJS.ErrnoException).code === "ENOENT" ? new Error(MISSING("prometheus")) : error; }),
      pollUntil(async () => {
        if (exited) throw new Error(`prometheus exited:\n${log()}`);
        return (await fetch(`${url}/-/ready`)).ok;
      }, { what: "Prometheus to be ready", timeoutMs: 30_000, isFatal: (e) => exited && e instanceof Error }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url, api, log, stop,
    query: async (expr) => (await api<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
  };
}
