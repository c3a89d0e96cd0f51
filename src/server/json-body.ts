// Reads one JSON request body. Hand-written instead of express.json() (body-parser): at 8
// connections body-parser cost about 40 % of the webhook's throughput for typical reviews
// (docs/benchmarks.md, "express-parse" against "bare-parse"), for features an apiserver never uses
// (compressed bodies, charsets other than UTF-8, non-strict JSON). The limits and answers are the
// same: 415 for another content type, 413 over the limit, 400 for no body or invalid JSON.
import type { IncomingMessage } from "node:http";

const mebibytes = (bytes: number): string => `${Math.round(bytes / 2 ** 20)}mb`;

export type JsonBody = { ok: true; value: unknown } | { ok: false; status: 400 | 413 | 415; message: string };

/** The request's media type and charset, lower-cased: "application/json", "utf-8". */
function contentType(req: IncomingMessage): { type: string | undefined; charset: string | undefined } {
  const header = req.headers["content-type"];
  if (!header) return { type: undefined, charset: undefined };
  const [type, ...params] = header.split(";");
  const charset = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith("charset="))?.slice(8).replace(/"/g, "");
  return { type: type!.trim().toLowerCase(), charset };
}

/** Whether the request has a body at all (RFC 9110 §6.4.1: Content-Length or Transfer-Encoding). */
const hasBody = (req: IncomingMessage): boolean =>
  req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0");

export async function readJsonBody(req: IncomingMessage, limitBytes: number): Promise<JsonBody> {
  if (!hasBody(req)) {
    req.resume();
    return { ok: false, status: 400, message: "malformed AdmissionReview: the request has no body" };
  }
  const { type, charset } = contentType(req);
  if (type !== "application/json" || (charset !== undefined && charset !== "utf-8")) {
    req.resume();
    return { ok: false, status: 415, message: `expected Content-Type application/json, got ${req.headers["content-type"] ?? "none"}` };
  }
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limitBytes) {
    req.resume();
    return { ok: false, status: 413, message: `request body larger than ${mebibytes(limitBytes)}` };
  }
  const body = await collect(req, limitBytes);
  if (!body) return { ok: false, status: 413, message: `request body larger than ${mebibytes(limitBytes)}` };
  try {
    return { ok: true, value: JSON.parse(body.toString("utf8")) };
  } catch (error) {
    return { ok: false, status: 400, message: `invalid JSON: ${(error as Error).message}` };
  }
}

/**
 * The body, or undefined once it passes the limit; the rest is then drained, not kept, and the
 * socket stays usable for the answer (destroying the request would close it).
 */
function collect(req: IncomingMessage, limitBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limitBytes) chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("error", reject);
    req.once("end", () => resolve(size <= limitBytes ? Buffer.concat(chunks, size) : undefined));
  });
}
