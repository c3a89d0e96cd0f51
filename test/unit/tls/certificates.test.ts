import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey } from "node:crypto";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { createCertificateAuthority, issueCertificate, randomSerial } from "../../../src/tls/certificates.js";

const notBefore = new Date("2026-01-01T00:00:00Z");
const notAfter = new Date("2027-01-01T00:00:00Z");

describe("certificates", () => {
  const ca = createCertificateAuthority({ commonName: "test-ca", notBefore, notAfter });

  it("makes a self-signed CA valid for the requested period", () => {
    const cert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, true);
    assert.equal(cert.subject, "CN=test-ca");
    assert.ok(cert.verify(cert.publicKey), "self-signed");
    assert.equal(new Date(cert.validFrom).toISOString(), notBefore.toISOString());
    assert.equal(new Date(cert.validTo).toISOString(), notAfter.toISOString());
  });

  // OpenSSL 3 refuses a certificate whose serial has a redundant leading byte (CI once failed with
  // ERR_OSSL_ASN1_ILLEGAL_PADDING): every serial must be positive and minimally encoded DER.
  it("draws serials that are positive, 16 bytes and minimally encoded", () => {
    const serials = Array.from({ length: 5000 }, () => randomSerial());
    for (const serial of serials) {
      assert.match(serial, /^[0-9a-f]{32}$/);
      const first = parseInt(serial.slice(0, 2), 16);
      assert.ok(first >= 0x01 && first < 0x80, `first byte ${serial.slice(0, 2)}: not zero (redundant) and high bit clear (positive)`);
    }
    assert.equal(new Set(serials).size, serials.length, "unique");
    assert.equal(new X509Certificate(ca.certPem).serialNumber.toLowerCase().length, 32, "the CA carries the serial unchanged");
  });

  it("issues a server certificate signed by the CA with DNS and IP SANs", () => {
    const leaf = issueCertificate(ca, {
      commonName: "svc",
      dnsNames: ["kube-prepull.kube-prepull.svc"],
      ipAddresses: ["127.0.0.1"],
      usage: "server",
      notBefore,
      notAfter,
    });
    const cert = new X509Certificate(leaf.certPem);
    assert.equal(cert.ca, false);
    assert.ok(cert.verify(new X509Certificate(ca.certPem).publicKey), "signed by the CA");
    assert.equal(cert.checkHost("kube-prepull.kube-prepull.svc"), "kube-prepull.kube-prepull.svc");
    assert.equal(cert.checkHost("other.example"), undefined);
    assert.equal(cert.checkIP("127.0.0.1"), "127.0.0.1");
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.1"], "serverAuth only");
    assert.ok(cert.checkPrivateKey(createPrivateKey(leaf.keyPem)));
  });

  it("puts groups in O= of client certificates", () => {
    const client = issueCertificate(ca, {
      commonName: "admin", organizations: ["system:masters"], usage: "client", notBefore, notAfter,
    });
    const cert = new X509Certificate(client.certPem);
    assert.equal(cert.subject, "O=system:masters\nCN=admin");
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.2"], "clientAuth only");
  });

  it("serves TLS that a client trusting only the CA accepts for 127.0.0.1", async () => {
    const now = new Date();
    const liveCa = createCertificateAuthority({ commonName: "live-ca", notBefore: now, notAfter: new Date(now.getTime() + 3600_000) });
    const leaf = issueCertificate(liveCa, {
      commonName: "local", ipAddresses: ["127.0.0.1"], usage: "server", notBefore: now, notAfter: new Date(now.getTime() + 3600_000),
    });
    const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => res.end("ok"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const body = await new Promise<string>((resolve, reject) => {
        https.get(`https://127.0.0.1:${port}/`, { ca: liveCa.certPem }, (res) => {
          let data = "";
          res.on("data", (c: Buffer) => (data += c.toString())).on("end", () => resolve(data));
        }).on("error", reject);
      });
      assert.equal(body, "ok");
      const rejected = await new Promise<Error>((resolve) => {
        https.get(`https://127.0.0.1:${port}/`, { ca: ca.certPem }, () => resolve(new Error("accepted"))).on("error", resolve);
      });
      assert.match(rejected.message, /self[- ]signed|unable to (get|verify)/i, "an unrelated CA is not trusted");
    } finally {
      server.close();
    }
  });
});

