// What a failed Kubernetes API call says about the apiserver: its HTTP status, if it answered, and
// whether the failure is the apiserver being unavailable (down, starting, overloaded, or its etcd
// gone) rather than a refusal that will not heal by itself (403, 404, 422, a quota).

/** The HTTP status of a failed call (client-node's ApiException.code, a watch's Error.statusCode), if one answered. */
export function httpStatusOf(error: unknown): number | undefined {
  const { code, statusCode } = (error ?? {}) as { code?: unknown; statusCode?: unknown };
  if (typeof code === "number") return code;
  return typeof statusCode === "number" ? statusCode : undefined;
}

/** No answer from the apiserver: the connection was refused, reset or timed out (a system error code). */
export function isNoAnswer(error: unknown): boolean {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  return (typeof code === "string" && /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(code)) || name === "AbortError" || name === "TimeoutError";
}

/** No answer, 429, or 5xx: it heals when the apiserver does (a TypeError of ours is not this). */
export function isUnavailable(error: unknown): boolean {
  const status = httpStatusOf(error);
  return status === undefined ? isNoAnswer(error) : status === 429 || status >= 500;
}

/**
 * The apiserver (or its etcd) is unavailable — not an admission webhook of someone else's that is
 * down: the apiserver answers that one with a 500 "failed calling webhook", and retrying it soon
 * heals nothing (docs/architecture.md#api-errors: backoff, then the hold deadline).
 */
export function isApiserverUnavailable(error: unknown): boolean {
  return isUnavailable(error) && !(httpStatusOf(error) === 500 && /failed calling webhook/.test(messageOf(error)));
}

/** The error's message and, for an ApiException, its body (where the apiserver's message is). */
function messageOf(error: unknown): string {
  const { message, body } = (error ?? {}) as { message?: unknown; body?: unknown };
  return `${typeof message === "string" ? message : ""} ${typeof body === "string" ? body : JSON.stringify(body ?? "")}`;
}
