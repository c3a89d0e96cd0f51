// What kube-prepull needs to know about one workload kind (spec §3a), behind one interface: where
// its pod template is, when a write needs no prepull, how a rollout is held and released, when it
// is complete, and how it is listed and patched. One module per kind (deployment.ts, …); nothing
// else in the admission path or the controller names a kind. Pure, except `api`, which is the
// kind's typed client calls.
import type * as k8s from "@kubernetes/client-node";
import type { JsonPatchOperation } from "../admission/review.js";
import type { ListResult } from "../kube/reflector.js";

export type WorkloadKindName = "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob";

/** A workload object as the adapters read it: metadata plus kind-specific spec and status. */
export type WorkloadObject = k8s.KubernetesObject & { spec?: object; status?: object };

/** The hold recorded in `held-by`: the request that holds, and what the release restores. */
export interface HeldBy {
  request: string;
  /** The user's own values the hold replaced (a StatefulSet's partition, a DaemonSet's strategy). */
  restore?: Record<string, unknown>;
}

/** How a write with `hold: "true"` is held: the patch that holds it, or why it is not held. */
export type HoldStart =
  | { held: true; patch: JsonPatchOperation[]; restore?: Record<string, unknown> }
  | { held: false; warning: string };

export interface WorkloadClients {
  apps: k8s.AppsV1Api;
  batch: k8s.BatchV1Api;
}

/** Header options of a patch (its Content-Type), as `k8s.setHeaderOptions` makes them. */
export type PatchOptions = ReturnType<typeof k8s.setHeaderOptions>;

export interface ListParams {
  labelSelector?: string;
  fieldSelector?: string;
  limit: number;
  _continue?: string;
}

export interface Workload<T extends WorkloadObject = WorkloadObject> {
  kind: WorkloadKindName;
  group: string;
  version: string;
  /** Plural resource name: webhook rules, RBAC, admission paths. */
  resource: string;
  /** kubectl's short name, in prepull DaemonSet names. */
  shortName: string;
  /** The pod template whose images are prepulled and whose placement the prepull copies. */
  template(object: T): k8s.V1PodTemplateSpec | undefined;
  /** CEL over `object`/`oldObject` that is true when the pod template changed (webhook matchConditions). */
  templateChanged: string;
  /** Why this write never needs a prepull whatever its images (replicas 0, …); undefined otherwise. */
  skipReason(object: T, operation: "CREATE" | "UPDATE"): string | undefined;
  /**
   * The hold of a write that asks for one; `before` is the hold the object had before this write
   * (if kube-prepull held it then), whose restore values stay the user's own.
   */
  startHold(object: T, operation: "CREATE" | "UPDATE", before: HeldBy | undefined): HoldStart;
  /** Why `hold: "true"` is refused on this kind (the validating webhook's message); undefined: it can hold. */
  holdUnsupported?: string;
  /** Whether the mechanism kube-prepull set still holds (false: its user undid it, which is respected). */
  isHeld(object: T, heldBy: HeldBy): boolean;
  /** The operations that release the hold (the caller adds the held-by test and removal). */
  release(object: T, heldBy: HeldBy): JsonPatchOperation[];
  /** The rollout has completed (the prepull DaemonSet may go). */
  rolloutComplete(object: T): boolean;
  api: {
    list(clients: WorkloadClients, params: ListParams): Promise<ListResult<T>>;
    /** The same in one namespace (what a user with namespaced permissions may do). */
    listNamespaced(clients: WorkloadClients, namespace: string, params: ListParams): Promise<ListResult<T>>;
    patch(clients: WorkloadClients, namespace: string, name: string, body: object, options: PatchOptions): Promise<unknown>;
  };
}

export const apiVersionOf = (workload: Pick<Workload, "group" | "version">): string =>
  workload.group ? `${workload.group}/${workload.version}` : workload.version;

/** The key of one workload in queues and logs: "<Kind>/<namespace>/<name>". */
export const workloadKey = (kind: WorkloadKindName, namespace: string, name: string): string => `${kind}/${namespace}/${name}`;

export function parseWorkloadKey(key: string): { kind: WorkloadKindName; namespace: string; name: string } | undefined {
  const [kind, namespace, name, ...rest] = key.split("/");
  if (!kind || !namespace || !name || rest.length > 0) return undefined;
  return { kind: kind as WorkloadKindName, namespace, name };
}

/** `held-by`: the request id, then the restore values as JSON when there are any. */
export function encodeHeldBy(heldBy: HeldBy): string {
  return heldBy.restore ? `${heldBy.request} ${JSON.stringify(heldBy.restore)}` : heldBy.request;
}

export function decodeHeldBy(text: string | undefined): HeldBy | undefined {
  if (!text) return undefined;
  const space = text.indexOf(" ");
  if (space < 0) return { request: text };
  try {
    const restore = JSON.parse(text.slice(space + 1)) as unknown;
    if (restore && typeof restore === "object" && !Array.isArray(restore)) {
      return { request: text.slice(0, space), restore: restore as Record<string, unknown> };
    }
  } catch {
    // not ours to interpret: the request id alone
  }
  return { request: text.slice(0, space) };
}
