// The HTTPS request handler for admission: a defensive edge (content type, body size, JSON, review
// shape → clear 4xx, never a crash) in front of pure decisions. No TLS or listen here.
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { decideMutation } from "../admission/mutation.js";
import { validateAnnotations } from "../admission/annotation-validation.js";
import { ADMISSION_PATHS, admissionPath } from "../admission/paths.js";
import { allow, deny, parseReview, patched, type AdmissionRequest, type AdmissionReviewResponse } from "../admission/review.js";
import type { Metrics } from "../observability/metrics.js";
import { readJsonBody } from "./json-body.js";
import { WORKLOADS } from "../workloads/kinds.js";

// The apiserver sends at most 3 MiB of object (MaxRequestBodyBytes) and a review carries object and
// oldObject: 8 MiB leaves room without inviting abuse. Express's default (100 KiB) rejects real ones.
export const BODY_LIMIT_BYTES = 8 * 2 ** 20;

export interface AdmissionAppDeps {
  log: Logger;
  metrics: Metrics;
  now: () => Date;
}

type Decider = (request: AdmissionRequest, log: Logger) => { review: AdmissionReviewResponse; decision: string };

export function createAdmissionApp(deps: AdmissionAppDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  const mutate: Decider = (request, log) => {
    const decision = decideMutation(request, deps.now());
    if (decision.kind === "skip") {
      log.debug({ reason: decision.reason }, "no prepull");
      return { review: allow(request.uid, decision.warnings), decision: "skip" };
    }
    log.info({ images: decision.request.images, hold: decision.hold, request: decision.request.id }, "prepull requested");
    return { review: patched(request.uid, decision.patch, decision.warnings), decision: decision.hold ? "prepull-hold" : "prepull" };
  };
  const validate: Decider = (request) => {
    const decision = validateAnnotations(request);
    return decision.allowed
      ? { review: allow(request.uid), decision: "allowed" }
      : { review: deny(request.uid, decision.message), decision: "denied" };
  };

  const route = (webhook: string, decide: Decider) => async (req: Request, res: Response): Promise<void> => {
    const body = await readJsonBody(req, BODY_LIMIT_BYTES);
    if (!body.ok) {
      sendJson(res, body.status, { error: body.message });
      return;
    }
    const started = process.hrtime.bigint();
    const parsed = parseReview(body.value);
    if (!parsed.ok) {
      deps.log.warn({ webhook, problem: parsed.message }, "malformed AdmissionReview");
      sendJson(res, 400, { error: `malformed AdmissionReview: ${parsed.message}` });
      return;
    }
    const request = parsed.request;
    const log = deps.log.child({ uid: request.uid, namespace: request.namespace, name: request.name, operation: request.operation, dryRun: request.dryRun === true });
    let outcome: { review: AdmissionReviewResponse; decision: string };
    try {
      outcome = decide(request, log);
    } catch (error) {
      // Prepull is an optimisation: an internal error never blocks a write.
      log.error({ err: error }, "admission decision failed; allowing unchanged");
      outcome = { review: allow(request.uid, ["kube-prepull: internal error; the object was admitted unchanged"]), decision: "error" };
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    deps.metrics.admissionDuration.observe({ webhook, operation: request.operation, decision: outcome.decision }, seconds);
    deps.metrics.admissions.inc({ webhook, decision: outcome.decision });
    log.debug({ webhook, decision: outcome.decision, durationMs: seconds * 1000 }, "admission answered");
    sendJson(res, 200, outcome.review);
  };

  for (const workload of WORKLOADS) {
    app.post(admissionPath("mutate", workload), route("mutate", mutate));
    app.post(admissionPath("validate", workload), route("validate", validate));
  }
  app.use((_req: Request, res: Response) => {
    sendJson(res, 404, { error: `not found; admission paths are ${ADMISSION_PATHS.join(", ")}` });
  });
  // A request that failed while its body was read (the client went away, a broken chunk).
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    deps.log.warn({ err: error }, "admission request failed");
    if (!res.headersSent) sendJson(res, (error as { status?: number }).status ?? 400, { error: "the request could not be read" });
  });
  return app;
}

// Not res.json(): it also resolves a charset and runs freshness and ETag rules, which showed in a
// CPU profile of the admission benchmark (docs/benchmarks.md); these answers are always fresh,
// uncached JSON, so Node's own writeHead/end do all that is needed.
function sendJson(res: Response, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) }).end(text);
}
