// X.509 certificates with node-forge: a CA and certificates it signs, for the webhook's serving
// certificate and the local cluster's PKI. Time is passed in; the only effect is randomness.
//
// Keys are RSA 2048: node-forge signs X.509 only with RSA, and its keygen uses Node's native
// crypto.generateKeyPairSync for these parameters (~0.1 s; the pure-JS path takes seconds).
import forge from "node-forge";

export interface PemKeyPair {
  certPem: string;
  keyPem: string;
}

export interface CertificateRequest {
  commonName: string;
  /** Subject O= values; for client certificates these are the Kubernetes groups. */
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  usage: "server" | "client" | "server-and-client";
  notBefore: Date;
  notAfter: Date;
}

export interface AuthorityRequest {
  commonName: string;
  notBefore: Date;
  notAfter: Date;
}

const { pki } = forge;

function generateKeys(): forge.pki.rsa.KeyPair {
  return pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
}

// A random 16-byte serial, positive and minimally encoded: RFC 5280 §4.1.2.2 wants it positive and
// unique, and OpenSSL 3 rejects a DER INTEGER with a redundant leading byte ("illegal padding").
// node-forge strips at most one redundant leading 00, so a "00"-prefixed random serial broke every
// certificate whose random bytes began 00 0x..7x (one in 512); the first byte is forced into
// 0x40–0x7f instead.
export function randomSerial(): string {
  const bytes = Buffer.from(forge.random.getBytesSync(16), "binary");
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40;
  return bytes.toString("hex");
}

function subject(commonName: string, organizations: string[] = []): forge.pki.CertificateField[] {
  return [
    ...organizations.map((value) => ({ shortName: "O", value })),
    { shortName: "CN", value: commonName },
  ];
}

export function createCertificateAuthority(request: AuthorityRequest): PemKeyPair {
  const keys = generateKeys();
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = request.notBefore;
  cert.validity.notAfter = request.notAfter;
  cert.setSubject(subject(request.commonName));
  cert.setIssuer(subject(request.commonName));
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: pki.certificateToPem(cert), keyPem: pki.privateKeyToPem(keys.privateKey) };
}

export function issueCertificate(authority: PemKeyPair, request: CertificateRequest): PemKeyPair {
  const caCert = pki.certificateFromPem(authority.certPem);
  const caKey = pki.privateKeyFromPem(authority.keyPem);
  const keys = generateKeys();
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = request.notBefore;
  cert.validity.notAfter = request.notAfter;
  cert.setSubject(subject(request.commonName, request.organizations));
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...(request.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(request.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    {
      name: "extKeyUsage",
      serverAuth: request.usage !== "client",
      clientAuth: request.usage !== "server",
    },
    ...(altNames.length > 0 ? [{ name: "subjectAltName", altNames }] : []),
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: pki.certificateToPem(cert), keyPem: pki.privateKeyToPem(keys.privateKey) };
}
