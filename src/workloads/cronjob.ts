// CronJobs (spec §3a): prepulled when the job template's images change, so the next scheduled run
// starts warm; no hold (a CronJob starts Jobs on its own schedule). Its rollout never "completes",
// so the prepull DaemonSet goes after the cleanup TTL; the images stay on the nodes until the
// kubelet's image garbage collection removes them (disk pressure, or imageMaximumGCAge).
// https://kubernetes.io/docs/concepts/architecture/garbage-collection/#container-image-garbage-collection
import type * as k8s from "@kubernetes/client-node";
import type { Workload } from "./workload.js";

const NO_HOLD = "a CronJob cannot be held: it starts its Jobs on its own schedule; kube-prepull prepulls when the job template's images change. Remove kube-prepull.io/hold";

export const cronJobWorkload: Workload<k8s.V1CronJob> = {
  kind: "CronJob",
  group: "batch",
  version: "v1",
  resource: "cronjobs",
  shortName: "cj",
  template: (cronJob) => cronJob.spec?.jobTemplate?.spec?.template,
  templateChanged: "object.spec.jobTemplate.spec.template != oldObject.spec.jobTemplate.spec.template",
  skipReason: () => undefined,
  startHold: () => ({ held: false, warning: NO_HOLD }),
  holdUnsupported: NO_HOLD,
  isHeld: () => false,
  release: () => [],
  rolloutComplete: () => false,
  api: {
    list: (c, params) => c.batch.listCronJobForAllNamespaces(params),
    listNamespaced: (c, namespace, params) => c.batch.listNamespacedCronJob({ namespace, ...params }),
    patch: (c, namespace, name, body, options) => c.batch.patchNamespacedCronJob({ namespace, name, body }, options),
  },
};
