// A proxy on 127.0.0.1 in front of the local registry, so that pulls on the real node take a
// realistic time and registry failures can be served on purpose (docs/local-cluster.md, "The
// registry"). Link speed and latency apply to everything it forwards; fault rules answer matching
// requests with a status (401, 429, 500 …) or delay their first byte.
//
// Written by hand: the throttle is twenty lines, and the HTTP proxy libraries on npm either do not
// stream with back-pressure through a shared rate limit or bring a framework with them.
import http from "node:http";
import { Transform, pipeline, type TransformCallback } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";

export interface FaultRule {
  /** Regular expression matched against the request path (`/v2/<name>/manifests/<tag>` …). */
  path: string;
  /** Answer with this status instead of forwarding (a registry-style JSON error body). */
  status?: number;
  /** Seconds a 429 asks the client to wait (Retry-After). */
  retryAfterSeconds?: number;
  /** Hold the first byte of the answer this long. */
  firstByteDelayMs?: number;
  /** Apply to this many requests, then stop matching (unlimited when absent). */
  times?: number;
}

export interface ProxyConfig {
  /** Shared link speed in bytes per second for every answer body; 0 or absent = unlimited. */
  bytesPerSecond?: number;
  /** Added before each request is forwarded. */
  latencyMs?: number;
  faults?: FaultRule[];
}

export const CONTROL_PATH = "/_kube-prepull/proxy";

export interface ProxyStats {
  requests: number;
  bytesSent: number;
  faultsServed: number;
}

/**
 * A link of `bytesPerSecond` shared by every transfer: each chunk reserves its share of time on a
 * virtual clock, so concurrent pulls split the bandwidth as they would on one wire.
 */
export class SharedLink {
  private nextFreeAt = 0;
  constructor(private readonly bytesPerSecond: () => number, private readonly now: () => number = Date.now) {}

  /** Milliseconds the caller must wait before sending `bytes`. */
  reserve(bytes: number): number {
    const rate = this.bytesPerSecond();
    if (!(rate > 0)) return 0;
    const now = this.now();
    const start = Math.max(now, this.nextFreeAt);
    this.nextFreeAt = start + (bytes / rate) * 1000;
    return this.nextFreeAt - now;
  }
}

/** The first rule that matches the path and has uses left (consumed), or undefined. */
export function matchFault(rules: FaultRule[], path: string): FaultRule | undefined {
  for (const rule of rules) {
    if (rule.times !== undefined && rule.times <= 0) continue;
    if (!new RegExp(rule.path).test(path)) continue;
    if (rule.times !== undefined) rule.times -= 1;
    return rule;
  }
  return undefined;
}

const isHttpStatus = (value: unknown): boolean => typeof value === "number" && value >= 100 && value <= 599;

/** The first problem of one fault rule, named by its index. */
function faultRuleProblem(rule: unknown, i: number): string | undefined {
  const r = rule as Record<string, unknown>;
  if (typeof r?.path !== "string") return `faults[${i}].path must be a regular expression string`;
  try {
    new RegExp(r.path);
  } catch (error) {
    return `faults[${i}].path: ${(error as Error).message}`;
  }
  if (r.status !== undefined && !isHttpStatus(r.status)) return `faults[${i}].status must be an HTTP status`;
  return undefined;
}

/** Checks a configuration sent to the control endpoint; returns a message for the first problem. */
export function validateConfig(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "the configuration must be a JSON object";
  const config = value as Record<string, unknown>;
  for (const key of ["bytesPerSecond", "latencyMs"]) {
    if (config[key] !== undefined && (typeof config[key] !== "number" || config[key] < 0)) return `${key} must be a number ≥ 0`;
  }
  if (config.faults === undefined) return undefined;
  if (!Array.isArray(config.faults)) return "faults must be an array";
  for (const [i, rule] of (config.faults as unknown[]).entries()) {
    const problem = faultRuleProblem(rule, i);
    if (problem) return problem;
  }
  return undefined;
}

class Throttle extends Transform {
  constructor(private readonly link: SharedLink, private readonly onBytes: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const wait = this.link.reserve(chunk.length);
    this.onBytes(chunk.length);
    if (wait <= 0) return done(null, chunk);
    setTimeout(() => done(null, chunk), wait);
  }
}

function registryError(status: number): string {
  const code = status === 401 ? "UNAUTHORIZED" : status === 429 ? "TOOMANYREQUESTS" : status === 404 ? "MANIFEST_UNKNOWN" : "UNKNOWN";
  return JSON.stringify({ errors: [{ code, message: `injected by the kube-prepull registry proxy (${status})` }] });
}

export interface RegistryProxy {
  /** Applies a new configuration (what the control endpoint does). */
  configure: (config: ProxyConfig) => void;
  stats: () => ProxyStats;
  handler: http.RequestListener;
}

/** A request handler forwarding to `upstream` (http://127.0.0.1:PORT) under the current configuration. */
export function createRegistryProxy(upstream: URL, initial: ProxyConfig = {}): RegistryProxy {
  let config: ProxyConfig = { ...initial, faults: [...(initial.faults ?? [])] };
  const stats: ProxyStats = { requests: 0, bytesSent: 0, faultsServed: 0 };
  const link = new SharedLink(() => config.bytesPerSecond ?? 0);

  const control = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ config, stats }));
      return;
    }
    let body = "";
    req.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        res.writeHead(400).end("the body must be JSON\n");
        return;
      }
      const problem = validateConfig(parsed);
      if (problem) {
        res.writeHead(400).end(problem + "\n");
        return;
      }
      config = parsed as ProxyConfig;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ config }));
    });
  };

  const forward = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    stats.requests += 1;
    if (config.latencyMs) await sleep(config.latencyMs);
    const fault = matchFault(config.faults ?? [], req.url ?? "/");
    if (fault) stats.faultsServed += 1;
    if (fault?.firstByteDelayMs) await sleep(fault.firstByteDelayMs);
    if (fault?.status) {
      const headers: http.OutgoingHttpHeaders = { "content-type": "application/json" };
      if (fault.status === 401) headers["www-authenticate"] = 'Basic realm="kube-prepull-local"';
      if (fault.retryAfterSeconds !== undefined) headers["retry-after"] = String(fault.retryAfterSeconds);
      req.resume();
      res.writeHead(fault.status, headers).end(registryError(fault.status));
      return;
    }
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        pipeline(answer, new Throttle(link, (n) => (stats.bytesSent += n)), res, () => undefined);
      },
    );
    out.on("error", (error) => {
      if (!res.headersSent) res.writeHead(502).end(`upstream registry: ${error.message}\n`);
      else res.destroy(error);
    });
    pipeline(req, out, () => undefined);
  };

  return {
    configure: (next) => (config = next),
    stats: () => ({ ...stats }),
    handler: (req, res) => {
      if ((req.url ?? "").startsWith(CONTROL_PATH)) return control(req, res);
      forward(req, res).catch((error: Error) => res.destroy(error));
    },
  };
}
