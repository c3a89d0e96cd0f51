// The local cluster's PKI: one CA for everything (etcd, apiserver, controller-manager and
// scheduler serving certificates, the admin client certificate) and the ServiceAccount token key.
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createCertificateAuthority, issueCertificate, type PemKeyPair } from "../tls/certificates.js";

export interface ClusterPki {
  dir: string;
  ca: PemKeyPair;
  admin: PemKeyPair;
  /** Paths of the files written under `dir`. */
  files: {
    caCert: string;
    serverCert: string;
    serverKey: string;
    adminCert: string;
    adminKey: string;
    serviceAccountKey: string;
    serviceAccountPub: string;
  };
}

const DAY_MS = 24 * 60 * 60 * 1000;

export function writeClusterPki(dir: string, now: Date): ClusterPki {
  const notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  const notAfter = new Date(now.getTime() + 30 * DAY_MS);
  const ca = createCertificateAuthority({ commonName: "kube-prepull-local-ca", notBefore, notAfter });
  // One serving certificate for every component: they all listen on 127.0.0.1, and etcd also uses
  // it as its client certificate towards itself for peer traffic.
  const server = issueCertificate(ca, {
    commonName: "kube-prepull-local-control-plane",
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local"],
    ipAddresses: ["127.0.0.1"],
    usage: "server-and-client",
    notBefore,
    notAfter,
  });
  const admin = issueCertificate(ca, {
    commonName: "kube-prepull-admin",
    organizations: ["system:masters"],
    usage: "client",
    notBefore,
    notAfter,
  });
  const serviceAccount = generateKeyPairSync("rsa", { modulusLength: 2048 });

  const file = (name: string, content: string, mode = 0o600): string => {
    const filePath = path.join(dir, name);
    writeFileSync(filePath, content, { mode });
    return filePath;
  };
  return {
    dir,
    ca,
    admin,
    files: {
      caCert: file("ca.crt", ca.certPem, 0o644),
      serverCert: file("server.crt", server.certPem, 0o644),
      serverKey: file("server.key", server.keyPem),
      adminCert: file("admin.crt", admin.certPem, 0o644),
      adminKey: file("admin.key", admin.keyPem),
      serviceAccountKey: file("sa.key", serviceAccount.privateKey.export({ type: "pkcs8", format: "pem" }).toString()),
      serviceAccountPub: file("sa.pub", serviceAccount.publicKey.export({ type: "spki", format: "pem" }).toString(), 0o644),
    },
  };
}

/** A self-contained kubeconfig (certificates inline) for the admin user. */
export function adminKubeconfig(server: string, pki: ClusterPki, name: string): string {
  const b64 = (s: string): string => Buffer.from(s).toString("base64");
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name, cluster: { server, "certificate-authority-data": b64(pki.ca.certPem) } }],
      users: [
        {
          name: `${name}-admin`,
          user: {
            "client-certificate-data": b64(pki.admin.certPem),
            "client-key-data": b64(pki.admin.keyPem),
          },
        },
      ],
      contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: "default" } }],
      "current-context": name,
    },
    null,
    2,
  );
}
