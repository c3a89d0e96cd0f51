import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import {
  applyCertificateAction, bundleTrusts, caBundleOf, decideCertificateAction, decodeSecretData, encodeSecretData,
  pemCertificates, serviceDnsNames, splitSubjectAltNames, type CertificatePolicy, type CertificateSet,
} from "../../../src/tls/self-managed.js";

const policy: CertificatePolicy = {
  dnsNames: serviceDnsNames("kube-prepull", "kube-prepull"),
  ipAddresses: ["127.0.0.1"],
  caValiditySeconds: 900,
  servingValiditySeconds: 300,
  caPropagationSeconds: 10,
};
const t0 = new Date("2026-11-22T10:00:00Z");
const at = (seconds: number): Date => new Date(t0.getTime() + seconds * 1000);
const cert = (pem: string): X509Certificate => new X509Certificate(pem);
const signedBy = (leafPem: string, caPem: string): boolean => cert(leafPem).verify(cert(caPem).publicKey);

function created(): CertificateSet {
  const action = decideCertificateAction({ set: undefined, now: t0, policy, signerTrustedSince: undefined });
  assert.equal(action.kind, "create");
  return applyCertificateAction(undefined, action, t0, policy)!;
}

describe("self-managed certificates", () => {
  const initial = created();

  it("creates a CA and a serving certificate for the Service names and extra SANs, signed by it", () => {
    assert.equal(cert(initial.signer.certPem).ca, true);
    assert.deepEqual(initial.trusted, [initial.signer.certPem]);
    assert.ok(signedBy(initial.serving.certPem, initial.signer.certPem));
    const serving = cert(initial.serving.certPem);
    assert.equal(serving.checkHost("kube-prepull.kube-prepull.svc"), "kube-prepull.kube-prepull.svc");
    assert.equal(serving.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(new Date(serving.validTo).toISOString(), at(300).toISOString());
    assert.equal(new Date(cert(initial.signer.certPem).validTo).toISOString(), at(900).toISOString());
  });

  it("round-trips through the Secret's data; incomplete data reads as nothing", () => {
    const data = encodeSecretData(initial);
    assert.deepEqual(Object.keys(data).sort(), ["ca.crt", "signer.crt", "signer.key", "tls.crt", "tls.key"]);
    assert.deepEqual(decodeSecretData(data), { ...initial, trusted: initial.trusted.map((p) => pemCertificates(p)[0]!) });
    assert.equal(decodeSecretData({ ...data, "tls.key": "" }), undefined);
    assert.equal(decodeSecretData(undefined), undefined);
  });

  it("keeps a fresh set and says when to look again (the serving certificate's renewal time)", () => {
    const action = decideCertificateAction({ set: initial, now: at(60), policy, signerTrustedSince: at(1) });
    assert.equal(action.kind, "keep");
    assert.equal(action.kind === "keep" && action.recheckAt?.toISOString(), at(200).toISOString());
  });

  it("renews the serving certificate after two thirds of its lifetime, from the same CA", () => {
    assert.equal(decideCertificateAction({ set: initial, now: at(199), policy, signerTrustedSince: at(1) }).kind, "keep");
    const action = decideCertificateAction({ set: initial, now: at(200), policy, signerTrustedSince: at(1) });
    assert.equal(action.kind, "renew-serving");
    const renewed = applyCertificateAction(initial, action, at(200), policy)!;
    assert.notEqual(renewed.serving.certPem, initial.serving.certPem);
    assert.equal(renewed.signer, initial.signer);
    assert.deepEqual(renewed.trusted, initial.trusted);
    assert.ok(signedBy(renewed.serving.certPem, initial.signer.certPem));
  });

  it("re-issues the serving certificate when the names change", () => {
    const other = { ...policy, ipAddresses: ["127.0.0.2"] };
    assert.equal(decideCertificateAction({ set: initial, now: at(10), policy: other, signerTrustedSince: at(1) }).kind, "renew-serving");
  });

  it("rotates the CA in steps: trust both, wait until injected and propagated, then serve from the new one, then drop the old", () => {
    const renewed = applyCertificateAction(initial, { kind: "renew-serving", reason: "" }, at(550), policy)!;
    const rotate = decideCertificateAction({ set: renewed, now: at(600), policy, signerTrustedSince: at(1) });
    assert.equal(rotate.kind, "rotate-ca");
    const both = applyCertificateAction(renewed, rotate, at(600), policy)!;
    assert.deepEqual(both.trusted, [both.signer.certPem, initial.signer.certPem], "new and old CA trusted");
    assert.equal(both.serving, renewed.serving, "still serving the certificate of the old CA");
    // Not yet in every webhook configuration: wait, at most until the serving certificate expires.
    const notInjected = decideCertificateAction({ set: both, now: at(601), policy, signerTrustedSince: undefined });
    assert.deepEqual(notInjected, { kind: "keep", reason: "waiting for every webhook configuration to trust the new CA", recheckAt: at(850) });
    const waiting = decideCertificateAction({ set: both, now: at(605), policy, signerTrustedSince: at(602) });
    assert.deepEqual(waiting, { kind: "keep", reason: "waiting for every webhook configuration to trust the new CA", recheckAt: at(612) });
    const move = decideCertificateAction({ set: both, now: at(612), policy, signerTrustedSince: at(602) });
    assert.equal(move.kind, "renew-serving");
    const moved = applyCertificateAction(both, move, at(612), policy)!;
    assert.ok(signedBy(moved.serving.certPem, moved.signer.certPem));
    assert.ok(bundleTrusts(caBundleOf(moved), moved.serving.certPem));
    assert.ok(bundleTrusts(caBundleOf(moved), renewed.serving.certPem), "replicas still on the old certificate stay trusted");
    assert.equal(decideCertificateAction({ set: moved, now: at(620), policy, signerTrustedSince: at(602) }).kind, "keep");
    const later = applyCertificateAction(moved, { kind: "renew-serving", reason: "" }, at(890), policy)!;
    const prune = decideCertificateAction({ set: later, now: at(901), policy, signerTrustedSince: at(602) });
    assert.equal(prune.kind, "prune-trusted", "the old CA expired at 900");
    assert.deepEqual(applyCertificateAction(later, prune, at(901), policy)!.trusted, [moved.signer.certPem]);
  });

  it("renews at once a serving certificate that expired while waiting, and starts over from a broken or expired CA", () => {
    const both = applyCertificateAction(initial, { kind: "rotate-ca", reason: "" }, at(600), policy)!;
    assert.equal(decideCertificateAction({ set: both, now: at(301), policy, signerTrustedSince: undefined }).kind, "renew-serving");
    assert.equal(decideCertificateAction({ set: initial, now: at(901), policy, signerTrustedSince: at(1) }).kind, "create");
    const wrongKey = { ...initial, signer: { ...initial.signer, keyPem: both.signer.keyPem } };
    assert.equal(decideCertificateAction({ set: wrongKey, now: at(1), policy, signerTrustedSince: at(1) }).kind, "create");
    const untrusted = { ...initial, trusted: [both.signer.certPem] };
    assert.equal(decideCertificateAction({ set: untrusted, now: at(1), policy, signerTrustedSince: at(1) }).kind, "create");
  });

  it("checks trust as the apiserver does: some CA of the bundle signed the certificate", () => {
    const other = created();
    assert.equal(bundleTrusts(caBundleOf(initial), initial.serving.certPem), true);
    assert.equal(bundleTrusts(caBundleOf(other), initial.serving.certPem), false);
    assert.equal(bundleTrusts("", initial.serving.certPem), false);
    assert.equal(bundleTrusts(caBundleOf(initial), "not a certificate"), false);
  });

  it("splits --tls-san values into DNS names and IP addresses", () => {
    assert.deepEqual(splitSubjectAltNames(["127.0.0.1", "webhook.example", "::1"]), { dnsNames: ["webhook.example"], ipAddresses: ["127.0.0.1", "::1"] });
  });
});
