// The controller's writes to the cluster, each idempotent: creating what exists or deleting what is
// gone succeeds, and hold releases are conditional JSON patches that fail harmlessly when the
// workload's held-by changed meanwhile. Workloads are patched through their kind's adapter.
import * as k8s from "@kubernetes/client-node";
import { withCallTimeout } from "./request-timeout.js";
import { randomBytes } from "node:crypto";
import { SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { encodeStatus, type PrepullStatus } from "../prepull/progress.js";
import { pointerSegment, type JsonPatchOperation } from "../admission/review.js";
import type { Workload, WorkloadClients } from "../workloads/workload.js";
import { httpStatusOf } from "./api-errors.js";

/** One workload, with the adapter of its kind. */
export interface WorkloadRef {
  workload: Workload;
  namespace: string;
  name: string;
}

export interface ClusterActions {
  createDaemonSet(daemonSet: k8s.V1DaemonSet): Promise<void>;
  deleteDaemonSet(namespace: string, name: string): Promise<void>;
  /** Replaces the pod template's affinity (the node list of the next wave). */
  setDaemonSetAffinity(namespace: string, name: string, affinity: k8s.V1Affinity): Promise<void>;
  writeStatus(ref: WorkloadRef, status: PrepullStatus): Promise<void>;
  /**
   * Applies `release` (the adapter's operations; none when the user resumed the rollout
   * themselves) and removes held-by, if held-by still equals `heldBy`; false if it changed or the
   * workload is gone.
   */
  endHold(ref: WorkloadRef, heldBy: string, release: JsonPatchOperation[]): Promise<boolean>;
  /** An Event on the object of `kind` (list items carry no apiVersion/kind). */
  recordEvent(object: k8s.KubernetesObject, type: "Normal" | "Warning", reason: string, message: string, now: Date, kind: { apiVersion: string; kind: string }): Promise<void>;
}

/** The message of an ApiException (its body is a JSON string in client-node 1.x), or of any other error. */
export function apiErrorMessage(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  if (typeof body === "string") {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return error instanceof Error ? error.message : String(error);
}

const HELD_BY_PATH = `/metadata/annotations/${pointerSegment(SYSTEM_ANNOTATIONS.heldBy)}`;

export function createClusterActions(untimed: k8s.KubeConfig, component: string): ClusterActions {
  // The controller's workers wait on these calls: none may hang for the apiserver's 60 s.
  const kubeConfig = withCallTimeout(untimed);
  const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const clients: WorkloadClients = { apps, batch: kubeConfig.makeApiClient(k8s.BatchV1Api) };
  const jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
  const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

  return {
    async createDaemonSet(daemonSet) {
      try {
        await apps.createNamespacedDaemonSet({ namespace: daemonSet.metadata!.namespace!, body: daemonSet });
      } catch (error) {
        if (httpStatusOf(error) !== 409) throw error;
      }
    },
    async deleteDaemonSet(namespace, name) {
      try {
        await apps.deleteNamespacedDaemonSet({ name, namespace, propagationPolicy: "Background" });
      } catch (error) {
        if (httpStatusOf(error) !== 404) throw error;
      }
    },
    async setDaemonSetAffinity(namespace, name, affinity) {
      try {
        // A merge patch replaces lists wholesale: the new node list is exactly `affinity`'s.
        await apps.patchNamespacedDaemonSet({ name, namespace, body: { spec: { template: { spec: { affinity } } } } }, mergePatch);
      } catch (error) {
        if (httpStatusOf(error) !== 404) throw error;
      }
    },
    async writeStatus({ workload, namespace, name }, status) {
      try {
        await workload.api.patch(clients, namespace, name, { metadata: { annotations: { [SYSTEM_ANNOTATIONS.status]: encodeStatus(status) } } }, mergePatch);
      } catch (error) {
        if (httpStatusOf(error) !== 404) throw error;
      }
    },
    async endHold({ workload, namespace, name }, heldBy, release) {
      const body: JsonPatchOperation[] = [{ op: "test", path: HELD_BY_PATH, value: heldBy }, ...release, { op: "remove", path: HELD_BY_PATH }];
      try {
        await workload.api.patch(clients, namespace, name, body, jsonPatch);
        return true;
      } catch (error) {
        // 422: a `test` failed (held-by changed or is gone); 404: the workload is gone.
        if (httpStatusOf(error) === 422 || httpStatusOf(error) === 404) return false;
        throw error;
      }
    },
    async recordEvent(object, type, reason, message, now, kind) {
      const namespace = object.metadata!.namespace!;
      await core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name: `${object.metadata!.name}.${randomBytes(8).toString("hex")}`, namespace },
          involvedObject: {
            ...kind,
            name: object.metadata!.name!,
            namespace,
            uid: object.metadata!.uid!,
            resourceVersion: object.metadata!.resourceVersion!,
          },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component },
          reportingComponent: component,
          reportingInstance: component,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    },
  };
}
