// kube-prepull's Mutating- and ValidatingWebhookConfigurations (spec §4 "Webhook configuration"),
// rendered for self-registration and for the manifests. Pure.
// https://kubernetes.io/docs/concepts/cluster-administration/admission-webhooks-good-practices/
import type * as k8s from "@kubernetes/client-node";
import { LABELS, MANAGED_BY, PREFIX, SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
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

/** Seconds the API server waits for each configuration's answer (failurePolicy Ignore after that). */
export interface WebhookTimeouts {
  mutating: number;
  validating: number;
}

/**
 * What a hung kube-prepull may add to a write: 2 s + 1 s, and 2 s for the writes that set no
 * kube-prepull.io/ annotation (the validating webhook is not called for them). Measured admission
 * latency is p99 ≤ 27 ms for typical reviews, 0.2–3.6 s only for 290–580 KiB reviews under 32
 * concurrent connections (docs/benchmarks.md); docs/architecture.md#webhook-timeouts says why.
 */
export const WEBHOOK_TIMEOUT_SECONDS: WebhookTimeouts = { mutating: 2, validating: 1 };

export interface WebhookConfigurationOptions {
  name: string;
  mode: InstallMode;
  ownNamespace: string;
  target: WebhookTarget;
  timeoutSeconds: WebhookTimeouts;
}

/**
 * The validating webhook can deny only a write that sets a user's kube-prepull.io/ annotation to a
 * new value (annotation-validation.ts): every other write skips it, so it costs nothing there —
 * not even its timeout when kube-prepull hangs. Its own annotations (request, status, held-by) are
 * never denied, so the mutating webhook's request and the controller's status writes skip it too.
 */
export const VALIDATION_MATCH_CONDITION = [
  "has(object.metadata.annotations) && object.metadata.annotations.exists(k, ",
  `k.startsWith('${PREFIX}') && !(k in [${Object.values(SYSTEM_ANNOTATIONS).map((a) => `'${a}'`).join(", ")}]) && `,
  "(request.operation == 'CREATE' || !has(oldObject.metadata.annotations) || !(k in oldObject.metadata.annotations) || ",
  "oldObject.metadata.annotations[k] != object.metadata.annotations[k]))",
].join("");

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
        timeoutSeconds: options.timeoutSeconds.mutating,
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
        timeoutSeconds: options.timeoutSeconds.validating,
        name: `annotations.${w.resource}.kube-prepull.io`,
        rules: rulesOf(w),
        clientConfig: clientConfig(options.target, admissionPath("validate", w)),
        matchConditions: [{ name: "user-annotation-set", expression: VALIDATION_MATCH_CONDITION }],
      })),
    },
  };
}
