// The local cluster's PKI: one CA for everything (etcd, apiserver, controller-manager and
// scheduler serving certificates, the admin client certificate, the apiserver's client certificate
// towards kubelets, real nodes' kubelet certificates) and the ServiceAccount token key. The CA key
// stays in the state folder (0600), so node credentials can be issued after `up`.
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
    caKey: string;
    serverCert: string;
    serverKey: string;
    adminCert: string;
    adminKey: string;
    kubeletClientCert: string;
    kubeletClientKey: string;
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
  // What the apiserver presents to kubelets (logs, exec): kubelets authorize it by this identity.
  const kubeletClient = issueCertificate(ca, {
    commonName: "kube-apiserver-kubelet-client",
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
      caKey: file("ca.key", ca.keyPem),
      serverCert: file("server.crt", server.certPem, 0o644),
      serverKey: file("server.key", server.keyPem),
      adminCert: file("admin.crt", admin.certPem, 0o644),
      adminKey: file("admin.key", admin.keyPem),
      kubeletClientCert: file("kubelet-client.crt", kubeletClient.certPem, 0o644),
      kubeletClientKey: file("kubelet-client.key", kubeletClient.keyPem),
      serviceAccountKey: file("sa.key", serviceAccount.privateKey.export({ type: "pkcs8", format: "pem" }).toString()),
      serviceAccountPub: file("sa.pub", serviceAccount.publicKey.export({ type: "spki", format: "pem" }).toString(), 0o644),
    },
  };
}

/**
 * A kubelet's client certificate: the Node authorizer knows a node by CN `system:node:<name>` in
 * group `system:nodes` (https://kubernetes.io/docs/reference/access-authn-authz/node/).
 */
export function issueNodeCertificate(ca: PemKeyPair, nodeName: string, now: Date): PemKeyPair {
  return issueCertificate(ca, {
    commonName: `system:node:${nodeName}`,
    organizations: ["system:nodes"],
    usage: "client",
    notBefore: new Date(now.getTime() - 60 * 60 * 1000),
    notAfter: new Date(now.getTime() + 30 * DAY_MS),
  });
}

/** A self-contained kubeconfig (certificates inline) for the admin user. */
export function adminKubeconfig(server: string, pki: ClusterPki, name: string): string {
  return kubeconfigFor(server, pki.ca.certPem, pki.admin, name, `${name}-admin`);
}

/** A self-contained kubeconfig for a client certificate. */
export function kubeconfigFor(server: string, caPem: string, client: PemKeyPair, cluster: string, user: string): string {
  const b64 = (s: string): string => Buffer.from(s).toString("base64");
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: cluster, cluster: { server, "certificate-authority-data": b64(caPem) } }],
      users: [
        {
          name: user,
          user: {
            "client-certificate-data": b64(client.certPem),
            "client-key-data": b64(client.keyPem),
          },
        },
      ],
      contexts: [{ name: cluster, context: { cluster, user, namespace: "default" } }],
      "current-context": cluster,
    },
    null,
    2,
  );
}
