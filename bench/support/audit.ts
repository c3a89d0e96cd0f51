// The apiserver audit log as a request counter: a policy that records (level Metadata) the requests of
// the benchmarked users and nothing else, per-user counts by "verb resource[/subresource]" (one per
// audit ID, so a watch counts once however long it stays open), and kubeconfigs that authenticate
// as those users.
import { writeFileSync, readFileSync } from "node:fs";
import * as k8s from "@kubernetes/client-node";

export const OWN_NAMESPACE = "kube-prepull";
/** kube-prepull serve's ServiceAccount. */
export const SERVE_ACCOUNT = "kube-prepull";
/** The ServiceAccount bench/scripted-prepull.sh runs as. */
export const SCRIPT_ACCOUNT = "scripted-prepull";
export const userOf = (account: string): string => `system:serviceaccount:${OWN_NAMESPACE}:${account}`;

export const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  users: ${JSON.stringify([SERVE_ACCOUNT, SCRIPT_ACCOUNT].map(userOf))}
- level: None
`;

interface AuditEvent {
  auditID: string;
  verb: string;
  objectRef?: { resource?: string; subresource?: string };
  user: { username: string };
  responseStatus?: { code?: number };
}

export interface AuditedRequest {
  /** "verb resource[/subresource]" */
  key: string;
  /** The response code of the request's last recorded stage. */
  code: number | undefined;
}

/** One user's requests in the audit log so far, by audit ID. */
export function auditedRequests(file: string, account: string): Map<string, AuditedRequest> {
  const user = userOf(account);
  const byId = new Map<string, AuditedRequest>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    const event = JSON.parse(line) as AuditEvent;
    if (event.user.username !== user) continue;
    const ref = event.objectRef;
    const key = `${event.verb} ${ref?.resource ?? "(non-resource)"}${ref?.subresource ? "/" + ref.subresource : ""}`;
    byId.set(event.auditID, { key, code: event.responseStatus?.code });
  }
  return byId;
}

/** Requests in `after` and not in `before`, counted by key (or by response code with `by: "code"`). */
export function countBetween(before: Map<string, AuditedRequest>, after: Map<string, AuditedRequest>, by: "key" | "code" = "key"): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [id, request] of after) {
    if (before.has(id)) continue;
    const key = by === "key" ? request.key : String(request.code ?? "none");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

export const total = (counts: Map<string, number>): number => [...counts.values()].reduce((a, b) => a + b, 0);

/**
 * A kubeconfig for a ServiceAccount in OWN_NAMESPACE (which must exist), cluster-admin here:
 * counting, not authorising.
 */
export async function serviceAccountKubeconfig(kc: k8s.KubeConfig, account: string, file: string, server?: string): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace: OWN_NAMESPACE, body: { metadata: { name: account } } });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `${account}-bench` },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ kind: "ServiceAccount", name: account, namespace: OWN_NAMESPACE }],
    },
  });
  const token = await core.createNamespacedServiceAccountToken({
    name: account, namespace: OWN_NAMESPACE, body: { spec: { audiences: [], expirationSeconds: 7200 } },
  });
  const cluster = kc.getCurrentCluster()!;
  writeFileSync(file, JSON.stringify({
    apiVersion: "v1", kind: "Config",
    clusters: [{ name: "bench", cluster: { server: server ?? cluster.server, "certificate-authority-data": cluster.caData } }],
    users: [{ name: account, user: { token: token.status!.token } }],
    contexts: [{ name: "bench", context: { cluster: "bench", user: account } }],
    "current-context": "bench",
  }), { mode: 0o600 });
}
