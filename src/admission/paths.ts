// The HTTPS paths of the admission webhooks: one per webhook and workload resource, so logs,
// metrics and the webhook configurations say which kind a review was for.
import { WORKLOADS } from "../workloads/kinds.js";
import type { Workload } from "../workloads/workload.js";

export type WebhookName = "mutate" | "validate";

export const admissionPath = (webhook: WebhookName, workload: Pick<Workload, "resource">): string => `/${webhook}/${workload.resource}`;

export const ADMISSION_PATHS: readonly string[] = WORKLOADS.flatMap((w) => [admissionPath("mutate", w), admissionPath("validate", w)]);
