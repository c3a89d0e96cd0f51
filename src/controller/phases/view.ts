// One decoded view of a workload's kube-prepull annotations per reconcile.
import { readSettings, SYSTEM_ANNOTATIONS } from "../../prepull/annotations.js";
import { prepullDaemonSetName } from "../../prepull/daemonset.js";
import { decodeStatus } from "../../prepull/progress.js";
import { decodeRequest } from "../../prepull/request.js";
import { decodeHeldBy } from "../../workloads/workload.js";
import type { Observed, View } from "./types.js";

export function viewOf({ workload, object }: Pick<Observed, "workload" | "object">): View {
  const annotations = object.metadata?.annotations ?? {};
  const request = decodeRequest(annotations[SYSTEM_ANNOTATIONS.request]);
  const heldByText = annotations[SYSTEM_ANNOTATIONS.heldBy];
  const { settings, problems } = readSettings(annotations);
  return {
    request,
    heldByText,
    heldBy: decodeHeldBy(heldByText),
    status: decodeStatus(annotations[SYSTEM_ANNOTATIONS.status]),
    settings,
    problems,
    currentName: request ? prepullDaemonSetName(object.metadata!.name!, request.images, workload) : undefined,
    template: workload.template(object)?.spec,
    deadline: request ? Date.parse(request.requestedAt) + settings.holdTimeoutSeconds * 1000 : Number.POSITIVE_INFINITY,
  };
}
