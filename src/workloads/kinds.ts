// Every workload kind kube-prepull serves (spec §3a), and the lookups by kind, resource and owner.
import type * as k8s from "@kubernetes/client-node";
import { cronJobWorkload } from "./cronjob.js";
import { daemonSetWorkload } from "./daemonset.js";
import { deploymentWorkload } from "./deployment.js";
import { jobWorkload } from "./job.js";
import { statefulSetWorkload } from "./statefulset.js";
import { apiVersionOf, type Workload } from "./workload.js";

export const WORKLOADS: readonly Workload[] = [
  deploymentWorkload,
  statefulSetWorkload,
  daemonSetWorkload,
  jobWorkload,
  cronJobWorkload,
];

/** The workload of an AdmissionReview's `kind` (group, kind; any served version is converted to v1 by matchPolicy Equivalent). */
export function workloadOfKind(group: string, kind: string): Workload | undefined {
  return WORKLOADS.find((w) => w.group === group && w.kind === kind);
}

export function workloadOfResource(resource: string): Workload | undefined {
  return WORKLOADS.find((w) => w.resource === resource);
}

/** The workload a prepull DaemonSet belongs to, from its ownerReferences. */
export function ownerWorkload(object: k8s.KubernetesObject): { workload: Workload; name: string } | undefined {
  for (const owner of object.metadata?.ownerReferences ?? []) {
    const workload = WORKLOADS.find((w) => w.kind === owner.kind && apiVersionOf(w) === owner.apiVersion);
    if (workload) return { workload, name: owner.name };
  }
  return undefined;
}
