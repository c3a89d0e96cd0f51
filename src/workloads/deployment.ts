// Deployments (spec §3a): held by `spec.paused`, the pause `kubectl rollout pause` sets; a
// Deployment its user paused is never held, so never resumed, by kube-prepull.
import type * as k8s from "@kubernetes/client-node";
import type { Workload } from "./workload.js";

/** kubectl rollout status: the new ReplicaSet has every replica updated and available, old ones gone. */
export function deploymentRolledOut(deployment: k8s.V1Deployment): boolean {
  const status = deployment.status ?? {};
  const replicas = deployment.spec?.replicas ?? 1;
  const updated = status.updatedReplicas ?? 0;
  return (
    deployment.spec?.paused !== true &&
    (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0) &&
    updated >= replicas &&
    (status.replicas ?? 0) <= updated &&
    (status.availableReplicas ?? 0) >= updated
  );
}

export const deploymentWorkload: Workload<k8s.V1Deployment> = {
  kind: "Deployment",
  group: "apps",
  version: "v1",
  resource: "deployments",
  shortName: "deploy",
  template: (d) => d.spec?.template,
  templateChanged: "object.spec.template != oldObject.spec.template",
  skipReason: (d) => (d.spec?.replicas === 0 ? "replicas is 0" : undefined),
  startHold(d, _operation, before) {
    // Paused now and not held by kube-prepull before this write: the user's own pause.
    if (d.spec?.paused === true && !before) {
      return { held: false, warning: "the Deployment is paused by its user; prepulling without holding (it will not be resumed)" };
    }
    return { held: true, patch: d.spec?.paused === true ? [] : [{ op: "add", path: "/spec/paused", value: true }] };
  },
  isHeld: (d) => d.spec?.paused === true,
  release: () => [{ op: "replace", path: "/spec/paused", value: false }],
  rolloutComplete: deploymentRolledOut,
  api: {
    list: (c, params) => c.apps.listDeploymentForAllNamespaces(params),
    listNamespaced: (c, namespace, params) => c.apps.listNamespacedDeployment({ namespace, ...params }),
    patch: (c, namespace, name, body, options) => c.apps.patchNamespacedDeployment({ namespace, name, body }, options),
  },
};
