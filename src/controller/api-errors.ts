// What the controller does when the API server refuses to create a prepull DaemonSet (issue 15,
// docs/architecture.md#api-errors). Pure: the error's HTTP code decides.
//   permanent  400, 403 (RBAC, ResourceQuota, a terminating namespace), 404, 422 and any other
//              4xx but 401, 408, 429: the same request would be refused again, so the prepull
//              fails at once (status Failed, one Warning Event with the API server's message) and
//              its hold is released. A quota raised later does not restart it: the next image
//              change does — a held rollout must not wait on an administrator.
//   transient  no answer (network, timeout), 401, 408, 429 and 5xx: retried with the work queue's
//              per-key backoff until the hold deadline, then Failed with the last message.
// https://kubernetes.io/docs/reference/using-api/api-concepts/#http-status-codes
import { apiErrorMessage } from "../kube/cluster-actions.js";
import { httpStatusOf } from "../kube/api-errors.js";

export type ApiErrorClass = "permanent" | "transient";

const TRANSIENT_CLIENT_ERRORS = new Set([401, 408, 429]);

export function classifyApiError(code: number | undefined): ApiErrorClass {
  if (code === undefined || code >= 500 || TRANSIENT_CLIENT_ERRORS.has(code)) return "transient";
  return code >= 400 ? "permanent" : "transient";
}

/** The last refused create of a request's DaemonSet, as the controller remembers it per workload. */
export interface CreateFailure {
  /** The request whose DaemonSet could not be created. */
  request: string;
  code?: number;
  /** The API server's message. */
  message: string;
  permanent: boolean;
}

export function createFailureOf(request: string, error: unknown): CreateFailure {
  const code = httpStatusOf(error);
  return { request, ...(code !== undefined ? { code } : {}), message: apiErrorMessage(error), permanent: classifyApiError(code) === "permanent" };
}
