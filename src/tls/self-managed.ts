// Self-managed certificates (spec §5): a CA and the serving certificate it signs, kept in one Secret
// that every replica reads and writes (the Secret is the source of truth, as in
// open-policy-agent/cert-controller). This module is the pure part: what the Secret holds, and what
// to do next given it, the clock and whether the webhook configurations already trust the CA.
//
// Renewal happens once two thirds of a certificate's lifetime have passed (cert-manager's default,
// https://cert-manager.io/docs/usage/certificate/#renewal). A CA rotation is made in two steps so no
// request ever meets a certificate its caller does not trust: first the new CA is added to the
// trusted bundle (old and new both trusted) and injected into the webhook configurations; only once
// every webhook trusts it, plus a propagation delay for the apiserver to pick the change up, is the
// serving certificate re-issued from the new CA. The old CA leaves the bundle when it expires.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { isIP } from "node:net";
import { createCertificateAuthority, issueCertificate, type PemKeyPair } from "./certificates.js";

/** The Secret's keys: `tls.crt`/`tls.key` as in a `kubernetes.io/tls` Secret, `ca.crt` the trusted bundle. */
export const SECRET_KEYS = {
  servingCert: "tls.crt",
  servingKey: "tls.key",
  trusted: "ca.crt",
  signerCert: "signer.crt",
  signerKey: "signer.key",
} as const;

export interface CertificateSet {
  /** The CA that signs serving certificates (the newest). */
  signer: PemKeyPair;
  /** Every CA the webhook configurations must trust, signer first (caBundle). */
  trusted: string[];
  serving: PemKeyPair;
}

export interface CertificatePolicy {
  dnsNames: string[];
  ipAddresses: string[];
  caValiditySeconds: number;
  servingValiditySeconds: number;
  /** After every webhook trusts a new CA, wait this long before serving a certificate it signed. */
  caPropagationSeconds: number;
}

export const DEFAULT_POLICY_DURATIONS = {
  caValiditySeconds: 10 * 365 * 24 * 3600,
  servingValiditySeconds: 365 * 24 * 3600,
  caPropagationSeconds: 10,
};

/** Service DNS names a webhook's `clientConfig.service` is reached by (<svc>.<ns>.svc is the one checked). */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

/** Splits --tls-san values into DNS names and IP addresses. */
export function splitSubjectAltNames(names: string[]): { dnsNames: string[]; ipAddresses: string[] } {
  return { dnsNames: names.filter((n) => isIP(n) === 0), ipAddresses: names.filter((n) => isIP(n) !== 0) };
}

export type CertificateAction =
  | { kind: "keep"; reason: string; recheckAt?: Date }
  | { kind: "create"; reason: string }
  | { kind: "rotate-ca"; reason: string }
  | { kind: "renew-serving"; reason: string }
  | { kind: "prune-trusted"; reason: string };

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function pemCertificates(bundle: string): string[] {
  return bundle.match(PEM_CERTIFICATE) ?? [];
}

export function decodeSecretData(data: Record<string, string> | undefined): CertificateSet | undefined {
  const text = (key: string): string | undefined => (data?.[key] ? Buffer.from(data[key], "base64").toString("utf8") : undefined);
  const [servingCert, servingKey, trusted, signerCert, signerKey] = [
    SECRET_KEYS.servingCert, SECRET_KEYS.servingKey, SECRET_KEYS.trusted, SECRET_KEYS.signerCert, SECRET_KEYS.signerKey,
  ].map(text);
  if (!servingCert || !servingKey || !trusted || !signerCert || !signerKey) return undefined;
  return { signer: { certPem: signerCert, keyPem: signerKey }, trusted: pemCertificates(trusted), serving: { certPem: servingCert, keyPem: servingKey } };
}

export function encodeSecretData(set: CertificateSet): Record<string, string> {
  const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");
  return {
    [SECRET_KEYS.servingCert]: b64(set.serving.certPem),
    [SECRET_KEYS.servingKey]: b64(set.serving.keyPem),
    [SECRET_KEYS.trusted]: b64(caBundleOf(set)),
    [SECRET_KEYS.signerCert]: b64(set.signer.certPem),
    [SECRET_KEYS.signerKey]: b64(set.signer.keyPem),
  };
}

/** The PEM bundle for `caBundle`. */
export function caBundleOf(set: CertificateSet): string {
  return set.trusted.map((pem) => pem.trim() + "\n").join("");
}

function parse(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function keyMatches(pair: PemKeyPair): boolean {
  try {
    return new X509Certificate(pair.certPem).checkPrivateKey(createPrivateKey(pair.keyPem));
  } catch {
    return false;
  }
}

const issuedBy = (cert: X509Certificate, ca: X509Certificate): boolean => cert.checkIssued(ca) && cert.verify(ca.publicKey);

/** Whether some CA in `bundlePem` signed `certPem`: what the apiserver checks when it calls the webhook. */
export function bundleTrusts(bundlePem: string, certPem: string): boolean {
  const cert = parse(certPem);
  return cert !== undefined && pemCertificates(bundlePem).some((pem) => {
    const ca = parse(pem);
    return ca !== undefined && issuedBy(cert, ca);
  });
}

const notAfterOf = (cert: X509Certificate): Date => new Date(cert.validTo);

function subjectAltNames(cert: X509Certificate): { dns: string[]; ip: string[] } {
  const entries = (cert.subjectAltName ?? "").split(", ").filter(Boolean);
  return {
    dns: entries.filter((e) => e.startsWith("DNS:")).map((e) => e.slice(4)).sort(),
    ip: entries.filter((e) => e.startsWith("IP Address:")).map((e) => e.slice(11)).sort(),
  };
}

function sameNames(cert: X509Certificate, policy: CertificatePolicy): boolean {
  const names = subjectAltNames(cert);
  const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
  return same(names.dns, [...policy.dnsNames].sort()) && same(names.ip, [...policy.ipAddresses].sort());
}

/** When a certificate is due: a third of its configured lifetime before it expires. */
function renewalTime(cert: X509Certificate, validitySeconds: number): Date {
  return new Date(notAfterOf(cert).getTime() - (validitySeconds * 1000) / 3);
}

/** The signing CA, if it parses, is a CA, matches its key and has not expired. */
function usableSigner(pair: PemKeyPair, now: Date): X509Certificate | undefined {
  const signer = parse(pair.certPem);
  return signer?.ca && keyMatches(pair) && notAfterOf(signer) > now ? signer : undefined;
}

/** The serving certificate, if it parses, matches its key, has not expired and a trusted CA signed it. */
function usableServing(pair: PemKeyPair, trusted: (X509Certificate | undefined)[], now: Date): X509Certificate | undefined {
  const serving = parse(pair.certPem);
  const usable = serving !== undefined && keyMatches(pair) && notAfterOf(serving) > now &&
    trusted.some((ca) => ca !== undefined && issuedBy(serving, ca));
  return usable ? serving : undefined;
}

function servingDue(serving: X509Certificate, now: Date, policy: CertificatePolicy): boolean {
  return now >= renewalTime(serving, policy.servingValiditySeconds) || !sameNames(serving, policy);
}

/** What to do with a serving certificate that is valid but not signed by the current signer. */
function moveToSigner(serving: X509Certificate, now: Date, policy: CertificatePolicy, signerTrustedSince: Date | undefined): CertificateAction {
  // Signed by an earlier CA: move to the signer once every webhook has trusted it long enough.
  const readyAt = signerTrustedSince && new Date(signerTrustedSince.getTime() + policy.caPropagationSeconds * 1000);
  if (readyAt && now >= readyAt) return { kind: "renew-serving", reason: "moving to the new CA" };
  // Look again when it may move, or at the latest when the current one expires.
  const recheckAt = new Date(Math.min(readyAt?.getTime() ?? Infinity, notAfterOf(serving).getTime()));
  return { kind: "keep", reason: "waiting for every webhook configuration to trust the new CA", recheckAt };
}

/** Signer and serving certificate are current: drop expired earlier CAs, or look again when something is due. */
function pruneOrKeep(signer: X509Certificate, serving: X509Certificate, trusted: (X509Certificate | undefined)[], now: Date, policy: CertificatePolicy): CertificateAction {
  if (trusted.some((ca) => ca === undefined || notAfterOf(ca) <= now)) {
    return { kind: "prune-trusted", reason: "an earlier CA expired" };
  }
  const next = [renewalTime(signer, policy.caValiditySeconds), renewalTime(serving, policy.servingValiditySeconds),
    ...trusted.filter((ca) => ca!.fingerprint256 !== signer.fingerprint256).map((ca) => notAfterOf(ca!))];
  return { kind: "keep", reason: "up to date", recheckAt: new Date(Math.min(...next.map((d) => d.getTime()))) };
}

/**
 * What to do with the Secret's certificates now. `signerTrustedSince`: since when every webhook's
 * caBundle has trusted the current signer (undefined: not yet, or not known).
 */
export function decideCertificateAction(input: {
  set: CertificateSet | undefined;
  now: Date;
  policy: CertificatePolicy;
  signerTrustedSince: Date | undefined;
}): CertificateAction {
  const { set, now, policy } = input;
  if (!set) return { kind: "create", reason: "no certificates yet" };
  const signer = usableSigner(set.signer, now);
  if (!signer) return { kind: "create", reason: "the signing CA is missing, invalid or expired" };
  const trusted = set.trusted.map(parse);
  if (!trusted.some((ca) => ca?.fingerprint256 === signer.fingerprint256)) {
    return { kind: "create", reason: "the signing CA is not in the trusted bundle" };
  }
  if (now >= renewalTime(signer, policy.caValiditySeconds)) {
    return { kind: "rotate-ca", reason: `the CA expires at ${notAfterOf(signer).toISOString()}` };
  }

  const serving = usableServing(set.serving, trusted, now);
  if (!serving) return { kind: "renew-serving", reason: "the serving certificate is missing, invalid, expired or untrusted" };
  if (!issuedBy(serving, signer)) return moveToSigner(serving, now, policy, input.signerTrustedSince);
  if (servingDue(serving, now, policy)) return { kind: "renew-serving", reason: `due (expires ${notAfterOf(serving).toISOString()}) or names changed` };
  return pruneOrKeep(signer, serving, trusted, now, policy);
}

/** Carries out an action: the only part with an effect (key generation). */
export function applyCertificateAction(set: CertificateSet | undefined, action: CertificateAction, now: Date, policy: CertificatePolicy): CertificateSet | undefined {
  // Backdated a little: clocks of the apiserver and this process may differ.
  const notBefore = new Date(now.getTime() - 5 * 60_000);
  const newCa = (): PemKeyPair =>
    createCertificateAuthority({ commonName: "kube-prepull-ca", notBefore, notAfter: new Date(now.getTime() + policy.caValiditySeconds * 1000) });
  const newServing = (signer: PemKeyPair): PemKeyPair => {
    const caNotAfter = notAfterOf(new X509Certificate(signer.certPem)).getTime();
    return issueCertificate(signer, {
      commonName: policy.dnsNames[0] ?? policy.ipAddresses[0] ?? "kube-prepull",
      dnsNames: policy.dnsNames,
      ipAddresses: policy.ipAddresses,
      usage: "server",
      notBefore,
      notAfter: new Date(Math.min(now.getTime() + policy.servingValiditySeconds * 1000, caNotAfter)),
    });
  };
  const stillValid = (pems: string[]): string[] => pems.filter((pem) => {
    const cert = parse(pem);
    return cert !== undefined && notAfterOf(cert) > now;
  });
  switch (action.kind) {
    case "keep":
      return set;
    case "create": {
      const signer = newCa();
      // Earlier CAs stay trusted while valid: a serving certificate they signed may still be served.
      return { signer, trusted: [signer.certPem, ...stillValid(set?.trusted ?? [])], serving: newServing(signer) };
    }
    case "rotate-ca": {
      const signer = newCa();
      return { signer, trusted: [signer.certPem, ...stillValid(set!.trusted)], serving: set!.serving };
    }
    case "renew-serving":
      return { ...set!, serving: newServing(set!.signer) };
    case "prune-trusted":
      return { ...set!, trusted: stillValid(set!.trusted) };
  }
}
