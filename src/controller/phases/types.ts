// What the reconcile phases share: the observed state, the decoded view of the workload, the
// actions they ask for and the controller's settings.
import type * as k8s from "@kubernetes/client-node";
import type { JsonPatchOperation } from "../../admission/review.js";
import type { CreateFailure } from "../api-errors.js";
import type { AnnotationProblem, PrepullSettings } from "../../prepull/annotations.js";
import type { PrepullPodConfig } from "../../prepull/daemonset.js";
import type { PrepullResult, PrepullStatus } from "../../prepull/progress.js";
import type { PrepullRequest } from "../../prepull/request.js";
import type { HeldBy, Workload, WorkloadObject } from "../../workloads/workload.js";

export interface ControllerConfig {
  /** Keep-warm lists: ConfigMaps in this namespace (kube-prepull's own); absent: off. */
  keepWarm?: { namespace: string };
  pod: PrepullPodConfig;
  /** Time after a prepull ends before its DaemonSet is deleted even if the rollout has not completed. */
  cleanupTtlSeconds: number;
  /** Time after a DaemonSet's creation before pods the scheduler cannot place stop counting. */
  schedulingGraceSeconds: number;
  /** Cluster-wide cap on prepulls pulling at once; more wait in a queue. */
  maxConcurrentPrepulls: number;
}

export type Action =
  | { kind: "create-daemonset"; daemonSet: k8s.V1DaemonSet }
  | { kind: "delete-daemonset"; name: string; reason: string }
  | { kind: "set-daemonset-nodes"; name: string; affinity: k8s.V1Affinity; added: number }
  | { kind: "write-status"; status: PrepullStatus }
  /** Undo the hold (`release`: the adapter's operations) and drop held-by, if held-by is still `heldBy`. */
  | { kind: "release-hold"; heldBy: string; release: JsonPatchOperation[]; reason: string }
  /** Drop held-by only: the user undid the hold themselves. */
  | { kind: "forget-hold"; heldBy: string; reason: string }
  | { kind: "event"; type: "Normal" | "Warning"; reason: string; message: string }
  | { kind: "count"; result: PrepullResult; seconds: number; pulled: number; failed: number };

export interface Decision {
  actions: Action[];
  /** Run again after this many ms (a deadline is coming), if nothing else happens first. */
  requeueAfterMs?: number;
}

export interface Observed {
  /** The adapter of the workload's kind. */
  workload: Workload;
  object: WorkloadObject;
  /** Prepull DaemonSets of this workload (by owner). */
  daemonSets: k8s.V1DaemonSet[];
  /**
   * Pending pods of this workload's prepull DaemonSets, by DaemonSet name: only for those whose
   * counts stalled and whose pending pods were listed under their current status (pod-detail.ts).
   */
  pendingPods: ReadonlyMap<string, k8s.V1Pod[]>;
  /** Every node of the cluster. */
  nodes: k8s.V1Node[];
  /** Whether a new prepull may start now under the cluster-wide cap (spec §4 "Scale"). */
  mayStart: boolean;
  /** The API server refused to create a DaemonSet of this workload (api-errors.ts). */
  createFailure?: CreateFailure;
  now: Date;
}

/** The workload's annotations, decoded once per reconcile. */
export interface View {
  request: PrepullRequest | undefined;
  /** held-by verbatim (the conditional patches test it) and decoded. */
  heldByText: string | undefined;
  heldBy: HeldBy | undefined;
  /** The status annotation, whichever request it is for. */
  status: PrepullStatus | undefined;
  settings: PrepullSettings;
  problems: AnnotationProblem[];
  /** The DaemonSet name of the current request. */
  currentName: string | undefined;
  template: k8s.V1PodSpec | undefined;
  /** When the current request's hold times out (ms). */
  deadline: number;
}

/** What a phase adds: actions, requeue delays, and the status it leaves for the next phase. */
export interface PhaseResult {
  actions: Action[];
  requeue: number[];
  current: PrepullStatus | undefined;
}

export const secondsSince = (from: string, to: Date): number => Math.max(0, (to.getTime() - Date.parse(from)) / 1000);
