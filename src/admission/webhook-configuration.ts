// kube-prepull's Mutating- and ValidatingWebhookConfigurations (spec §4 "Webhook configuration"),
// rendered for self-registration and for the manifests. Pure.
// https://kubernetes.io/docs/concepts/cluster-administration/admission-webhooks-good-practices/
import type * as k8s from "@kubernetes/client-node";
import { LABELS, MANAGED_BY } from "../prepull/annotations.js";
import { WORKLOADS } from "../workloads/kinds.js";
import type { Workload } from "../workloads/workload.js";
import { admissionPath } from "./paths.js";

export type InstallMode = "opt-in" | "cluster-wide";

export const SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease"];

export interface WebhookTarget {
  /** https://host:port (self-registration for local runs) … */
  url?: string;
  /** … or the in-cluster Service. */
  service?: { namespace: string; name: string; port: number };
  caBundlePem: string;
}

export interface WebhookConfigurationOptions {
  name: string;
  mode: InstallMode;
  ownNamespace: string;
  target: WebhookTarget;
  timeoutSeconds: number;
}

export function namespaceSelector(mode: InstallMode, ownNamespace: string): k8s.V1LabelSelector {
  const excluded = { key: "kubernetes.io/metadata.name", operator: "NotIn", values: [...new Set([...SYSTEM_NAMESPACES, ownNamespace])] };
  return mode === "opt-in"
    ? { matchLabels: { [LABELS.enabled]: "true" }, matchExpressions: [excluded] }
    : { matchExpressions: [excluded, { key: LABELS.enabled, operator: "NotIn", values: ["false"] }] };
}

function clientConfig(target: WebhookTarget, path: string): k8s.AdmissionregistrationV1WebhookClientConfig {
  const caBundle = Buffer.from(target.caBundlePem).toString("base64");
  if (target.url) return { url: `${target.url}${path}`, caBundle };
  if (!target.service) throw new Error("a webhook target needs a url or a service");
  return { service: { ...target.service, path }, caBundle };
}

// The workload resource without subresources: scale and status writes never reach the webhooks.
const rulesOf = (w: Workload): k8s.V1RuleWithOperations[] => [
  { apiGroups: [w.group], apiVersions: [w.version], operations: ["CREATE", "UPDATE"], resources: [w.resource], scope: "Namespaced" },
];
// Never our own objects: the prepull DaemonSets, and an install of kube-prepull itself, which must
// not hold its own rollout.
const OBJECT_SELECTOR: k8s.V1LabelSelector = {
  matchExpressions: [{ key: LABELS.managedBy, operator: "NotIn", values: [MANAGED_BY] }],
};

export function renderWebhookConfigurations(options: WebhookConfigurationOptions): {
  mutating: k8s.V1MutatingWebhookConfiguration;
  validating: k8s.V1ValidatingWebhookConfiguration;
} {
  const common = {
    admissionReviewVersions: ["v1"],
    // Side effects (DaemonSets, unpausing) happen in the controller after the object is persisted.
    sideEffects: "NoneOnDryRun",
    // An outage of kube-prepull never blocks a deploy.
    failurePolicy: "Ignore",
    matchPolicy: "Equivalent",
    timeoutSeconds: options.timeoutSeconds,
    namespaceSelector: namespaceSelector(options.mode, options.ownNamespace),
    objectSelector: OBJECT_SELECTOR,
  };
  const metadata = { name: options.name, labels: { [LABELS.managedBy]: MANAGED_BY } };
  return {
    mutating: {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata,
      webhooks: WORKLOADS.map((w) => ({
        ...common,
        name: `prepull.${w.resource}.kube-prepull.io`,
        rules: rulesOf(w),
        clientConfig: clientConfig(options.target, admissionPath("mutate", w)),
        // Idempotent: a re-invocation sees its own patch and changes nothing.
        reinvocationPolicy: "IfNeeded",
        // Only writes that can add images: every CREATE, and UPDATEs that change the pod template.
        matchConditions: [{ name: "template-changed", expression: `request.operation == 'CREATE' || ${w.templateChanged}` }],
      })),
    },
    validating: {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata,
      webhooks: WORKLOADS.map((w) => ({
        ...common,
        name: `annotations.${w.resource}.kube-prepull.io`,
        rules: rulesOf(w),
        clientConfig: clientConfig(options.target, admissionPath("validate", w)),
        matchConditions: [
          {
            name: "annotations-changed",
            expression:
              "request.operation == 'CREATE' || !has(object.metadata.annotations) || !has(oldObject.metadata.annotations) || object.metadata.annotations != oldObject.metadata.annotations",
          },
        ],
      })),
    },
  };
}
