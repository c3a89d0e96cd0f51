import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import {
  applyCertificateAction, caBundleOf, decideCertificateAction, encodeSecretData, serviceDnsNames, type CertificatePolicy,
} from "../../../src/tls/self-managed.js";
import { base64Bundle, caBundlePatch, certificateSecret, configurationsTrust, recheckDelayMs } from "../../../src/tls/self-managed-objects.js";

const policy: CertificatePolicy = {
  dnsNames: serviceDnsNames("kube-prepull", "kube-prepull"),
  ipAddresses: [],
  caValiditySeconds: 900,
  servingValiditySeconds: 300,
  caPropagationSeconds: 10,
};
const t0 = new Date("2026-11-22T10:00:00Z");
const action = decideCertificateAction({ set: undefined, now: t0, policy, signerTrustedSince: undefined });
const set = applyCertificateAction(undefined, action, t0, policy)!;
const bundle = base64Bundle(caBundleOf(set));
const webhook = (name: string, caBundle?: string): k8s.V1MutatingWebhook =>
  ({ name, clientConfig: { ...(caBundle ? { caBundle } : {}) }, admissionReviewVersions: ["v1"], sideEffects: "None" });
const configuration = (...webhooks: k8s.V1MutatingWebhook[]): k8s.V1MutatingWebhookConfiguration => ({ metadata: { name: "kube-prepull" }, webhooks });

describe("self-managed certificates: Kubernetes objects", () => {
  it("writes a kubernetes.io/tls Secret, carrying the resourceVersion read when there is one", () => {
    const fresh = certificateSecret({ name: "tls", namespace: "ns", set });
    assert.equal(fresh.type, "kubernetes.io/tls");
    assert.deepEqual(fresh.metadata, { name: "tls", namespace: "ns", labels: { "app.kubernetes.io/managed-by": "kube-prepull" } });
    assert.deepEqual(fresh.data, encodeSecretData(set));
    assert.equal(certificateSecret({ name: "tls", namespace: "ns", resourceVersion: "42", set }).metadata?.resourceVersion, "42");
  });

  it("patches only the webhooks without the bundle, each add guarded by a test of the webhook's name", () => {
    assert.deepEqual(caBundlePatch([webhook("a", bundle), webhook("b", "c3RhbGU=")], bundle), [
      { op: "test", path: "/webhooks/1/name", value: "b" },
      { op: "add", path: "/webhooks/1/clientConfig/caBundle", value: bundle },
    ]);
    assert.deepEqual(caBundlePatch([webhook("a", bundle)], bundle), []);
  });

  it("trusts only with one configuration of each kind, each with webhooks that all trust the certificate", () => {
    const trusting = configuration(webhook("a", bundle), webhook("b", bundle));
    assert.equal(configurationsTrust([trusting], [trusting], set.serving.certPem), true);
    assert.equal(configurationsTrust([trusting], [configuration(webhook("a", bundle), webhook("b"))], set.serving.certPem), false);
    assert.equal(configurationsTrust([trusting], [configuration()], set.serving.certPem), false);
    assert.equal(configurationsTrust([trusting], [], set.serving.certPem), false);
    assert.equal(configurationsTrust([trusting, trusting], [trusting], set.serving.certPem), false);
  });

  it("checks again just after the due time, no sooner than 100 ms and no later than the interval", () => {
    assert.equal(recheckDelayMs(new Date(t0.getTime() + 1000), t0, 60_000), 1050);
    assert.equal(recheckDelayMs(new Date(t0.getTime() - 1000), t0, 60_000), 100);
    assert.equal(recheckDelayMs(undefined, t0, 60_000), 60_000);
    assert.equal(recheckDelayMs(new Date(t0.getTime() + 3_600_000), t0, 60_000), 60_000);
  });
});
