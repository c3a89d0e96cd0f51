// Jobs (spec §3a): a Job's pod template cannot change after creation, so only CREATE prepulls. A
// new Job with `hold` is created suspended (`spec.suspend`) and resumed once pulled; its
// activeDeadlineSeconds counts from the resume. A Job its user created suspended is never
// resumed by kube-prepull. Jobs a CronJob creates are covered by the CronJob's own prepull.
// https://kubernetes.io/docs/concepts/workloads/controllers/job/#suspending-a-job
import type * as k8s from "@kubernetes/client-node";
import type { Workload } from "./workload.js";

const finished = (job: k8s.V1Job): boolean =>
  (job.status?.conditions ?? []).some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");

/** Every pod the Job runs at once has started (or the Job is over): its images are in use. */
export function jobStarted(job: k8s.V1Job): boolean {
  if (job.spec?.suspend === true) return false;
  if (finished(job)) return true;
  const status = job.status ?? {};
  const wanted = Math.min(job.spec?.parallelism ?? 1, job.spec?.completions ?? Number.MAX_SAFE_INTEGER);
  return (status.ready ?? 0) + (status.succeeded ?? 0) >= Math.max(1, wanted);
}

const ownedByCronJob = (job: k8s.V1Job): boolean => (job.metadata?.ownerReferences ?? []).some((o) => o.kind === "CronJob" && o.controller === true);

export const jobWorkload: Workload<k8s.V1Job> = {
  kind: "Job",
  group: "batch",
  version: "v1",
  resource: "jobs",
  shortName: "job",
  template: (job) => job.spec?.template,
  templateChanged: "object.spec.template != oldObject.spec.template",
  skipReason(job, operation) {
    if (operation === "UPDATE") return "a Job's pod template cannot change after creation";
    if (ownedByCronJob(job)) return "a CronJob's Job: the CronJob's prepull covers it";
    return job.spec?.parallelism === 0 ? "parallelism is 0" : undefined;
  },
  startHold(job) {
    if (job.spec?.suspend === true) {
      return { held: false, warning: "the Job is suspended by its user; prepulling without holding (it will not be resumed)" };
    }
    return { held: true, patch: [{ op: "add", path: "/spec/suspend", value: true }] };
  },
  isHeld: (job) => job.spec?.suspend === true,
  release: () => [{ op: "replace", path: "/spec/suspend", value: false }],
  rolloutComplete: jobStarted,
  api: {
    list: (c, params) => c.batch.listJobForAllNamespaces(params),
    listNamespaced: (c, namespace, params) => c.batch.listNamespacedJob({ namespace, ...params }),
    patch: (c, namespace, name, body, options) => c.batch.patchNamespacedJob({ namespace, name, body }, options),
  },
};
