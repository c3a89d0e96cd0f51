// Self-managed certificates, the Kubernetes objects (pure): the Secret body the manager writes, the
// JSON patch that puts the CA bundle into a webhook configuration, whether the configurations trust
// a certificate, and when to check again. certificate-manager.ts sends and reads these.
import type * as k8s from "@kubernetes/client-node";
import { LABELS, MANAGED_BY } from "../prepull/annotations.js";
import { bundleTrusts, encodeSecretData, type CertificateSet } from "./self-managed.js";

export interface JsonPatchOperation {
  op: "test" | "add";
  path: string;
  value: string;
}

/** The certificate Secret; `resourceVersion` (the one read) makes a replace a compare-and-swap. */
export function certificateSecret(input: { name: string; namespace: string; resourceVersion?: string; set: CertificateSet }): k8s.V1Secret {
  const { name, namespace, resourceVersion, set } = input;
  return {
    metadata: {
      name,
      namespace,
      labels: { [LABELS.managedBy]: MANAGED_BY },
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    type: "kubernetes.io/tls",
    data: encodeSecretData(set),
  };
}

/** The caBundle as a webhook's clientConfig holds it (base64 of the PEM bundle). */
export function base64Bundle(pemBundle: string): string {
  return Buffer.from(pemBundle, "utf8").toString("base64");
}

/**
 * Sets the caBundle of every webhook that does not have it yet; each `add` is guarded by a `test`
 * of the webhook's name, so a reordering meanwhile fails the patch instead of mixing webhooks up.
 */
export function caBundlePatch(webhooks: ReadonlyArray<k8s.V1MutatingWebhook | k8s.V1ValidatingWebhook>, bundle: string): JsonPatchOperation[] {
  return webhooks.flatMap((webhook, i): JsonPatchOperation[] =>
    webhook.clientConfig.caBundle === bundle
      ? []
      : [
          { op: "test", path: `/webhooks/${i}/name`, value: webhook.name },
          { op: "add", path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle },
        ],
  );
}

/** Exactly one configuration of each kind, each with webhooks, every one trusting `certPem`. */
export function configurationsTrust(
  mutating: readonly k8s.V1MutatingWebhookConfiguration[],
  validating: readonly k8s.V1ValidatingWebhookConfiguration[],
  certPem: string,
): boolean {
  const all = [...mutating, ...validating];
  return mutating.length === 1 && validating.length === 1 &&
    all.every((c) => (c.webhooks ?? []).length > 0 && (c.webhooks ?? []).every((w) =>
      w.clientConfig.caBundle !== undefined && bundleTrusts(Buffer.from(w.clientConfig.caBundle, "base64").toString("utf8"), certPem)));
}

/** Time to the next check: just after `at`, at least 100 ms, at most the check interval. */
export function recheckDelayMs(at: Date | undefined, now: Date, checkIntervalMs: number): number {
  return Math.min(checkIntervalMs, Math.max(100, (at?.getTime() ?? Infinity) - now.getTime() + 50));
}
