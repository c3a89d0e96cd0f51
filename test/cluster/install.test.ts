// The manifests on the local cluster (issue: install and operate): the kustomize output applies
// cleanly; `serve` authenticated as the manifests' ServiceAccount (a token for it) runs a held
// prepull end to end, so the RBAC suffices; and what it must not do stays denied.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { decodeStatus } from "../../src/prepull/progress.js";
import type { RunningServe } from "../../src/serve.js";
import { createNamespace, kubectl, startTestServe, testKubeConfig, waitForPrepullWebhook, waitUntil } from "../support/cluster.js";

const admin = testKubeConfig();
const apps = admin.makeApiClient(k8s.AppsV1Api);
const authz = admin.makeApiClient(k8s.AuthorizationV1Api);
const admission = admin.makeApiClient(k8s.AdmissionregistrationV1Api);
const SA_USER = "system:serviceaccount:kube-prepull:kube-prepull";
const SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:kube-prepull", "system:authenticated"];

const build = async (overlay: string): Promise<k8s.KubernetesObject[]> => {
  const { stdout } = await kubectl(["kustomize", path.join(packageRoot(), "manifests", "overlays", overlay)]);
  return parseAllDocuments(stdout).map((d) => d.toJS() as k8s.KubernetesObject);
};
const toYaml = (objects: k8s.KubernetesObject[]): string => objects.map((o) => JSON.stringify(o)).join("\n---\n");

async function allowed(verb: string, resource: string, options: { group?: string; namespace?: string; subresource?: string } = {}): Promise<boolean> {
  const review = await authz.createSubjectAccessReview({
    body: {
      spec: {
        user: SA_USER,
        groups: SA_GROUPS,
        resourceAttributes: { verb, resource, group: options.group ?? "", ...(options.namespace ? { namespace: options.namespace } : {}), ...(options.subresource ? { subresource: options.subresource } : {}) },
      },
    },
  });
  return review.status?.allowed === true;
}

/** A kubeconfig for the test cluster that authenticates with the ServiceAccount's token only. */
async function serviceAccountKubeConfig(): Promise<k8s.KubeConfig> {
  const { stdout } = await kubectl(["create", "token", "kube-prepull", "-n", "kube-prepull", "--duration=1h"]);
  const cluster = admin.getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...cluster, name: "test" }],
    users: [{ name: "kube-prepull", token: stdout.trim() }],
    contexts: [{ name: "kube-prepull", cluster: "test", user: "kube-prepull" }],
    currentContext: "kube-prepull",
  });
  return kc;
}

describe("install from manifests/", () => {
  let objects: k8s.KubernetesObject[];
  let running: RunningServe | undefined;
  let ns: { name: string; remove: () => Promise<void> } | undefined;

  before(async () => {
    objects = await build("opt-in");
  });
  after(async () => {
    await running?.stop();
    await ns?.remove();
    await kubectl(["delete", "--ignore-not-found", "--wait=false", "-f", "-"], toYaml(objects.filter((o) => o.kind !== "Deployment"))).catch(() => undefined);
  });

  it("builds every overlay with kubectl's kustomize", async () => {
    const kinds = (list: k8s.KubernetesObject[]): string[] => list.map((o) => o.kind!).sort();
    assert.deepEqual(kinds(objects), [
      "ClusterRole", "ClusterRoleBinding", "Deployment", "MutatingWebhookConfiguration", "Namespace", "PodDisruptionBudget",
      "Role", "RoleBinding", "Service", "ServiceAccount", "ValidatingWebhookConfiguration",
    ]);
    const clusterWide = await build("cluster-wide");
    const selector = (clusterWide.find((o) => o.kind === "MutatingWebhookConfiguration") as k8s.V1MutatingWebhookConfiguration).webhooks![0]!.namespaceSelector!;
    assert.equal(selector.matchLabels, undefined, "cluster-wide needs no opt-in label");
    const certManager = await build("cert-manager");
    assert.ok(certManager.some((o) => o.kind === "Certificate"));
    for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
      assert.equal(certManager.find((o) => o.kind === kind)?.metadata?.annotations?.["cert-manager.io/inject-ca-from"], "kube-prepull/kube-prepull");
    }
    const deployment = objects.find((o) => o.kind === "Deployment") as k8s.V1Deployment;
    assert.equal(deployment.spec?.replicas, 2);
    assert.equal(deployment.spec?.template.spec?.containers[0]?.image, "ghcr.io/kube-prepull/kube-prepull:v0.1.0");
  });

  it("applies cleanly (server-side dry run of everything, including the Deployment, under Pod Security restricted)", async () => {
    // The namespace first: the dry run of the namespaced objects needs it to exist.
    await kubectl(["apply", "-f", "-"], toYaml(objects.filter((o) => o.kind === "Namespace")));
    const { stdout } = await kubectl(["apply", "--dry-run=server", "-f", "-"], toYaml(objects));
    assert.equal(stdout.trim().split("\n").length, objects.length, stdout);
    // For real: everything except the Deployment (its pods would be simulated, not this process).
    await kubectl(["apply", "-f", "-"], toYaml(objects.filter((o) => o.kind !== "Deployment")));
  });

  it("runs a held prepull end to end as the ServiceAccount: the RBAC suffices", async () => {
    const kc = await serviceAccountKubeConfig();
    running = await startTestServe({ pullDelay: "1s", serve: { kubeConfig: kc, leaderElection: { namespace: "kube-prepull", name: "kube-prepull" } } });
    // What a certificate controller would do: point the installed configurations at this process.
    // (The manifests' Service cannot be reached here: there is no service network.)
    const clientConfig = (p: string): k8s.AdmissionregistrationV1WebhookClientConfig => ({
      url: `https://127.0.0.1:${running!.admissionPort}${p}`,
      caBundle: Buffer.from(running!.caPem).toString("base64"),
    });
    const patch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
    await admission.patchMutatingWebhookConfiguration({ name: "kube-prepull", body: [{ op: "replace", path: "/webhooks/0/clientConfig", value: clientConfig("/mutate/deployments") }] }, patch);
    await admission.patchValidatingWebhookConfiguration({ name: "kube-prepull", body: [{ op: "replace", path: "/webhooks/0/clientConfig", value: clientConfig("/validate/deployments") }] }, patch);
    await waitUntil(async () => (await fetch(`http://127.0.0.1:${running!.opsPort}/metrics`)).text().then((t) => /^kube_prepull_leader 1$/m.test(t)),
      { what: "the ServiceAccount's replica to take the Lease" });

    ns = await createNamespace(admin, "installed", { "kube-prepull.io/enabled": "true" });
    await waitForPrepullWebhook(apps, ns.name);
    const created = await apps.createNamespacedDeployment({
      namespace: ns.name,
      body: {
        metadata: { name: "web", annotations: { "kube-prepull.io/hold": "true" } },
        spec: { replicas: 1, selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web", image: "example.com/team/installed:1" }] } } },
      },
    });
    assert.equal(created.spec?.paused, true);
    const released = await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "web", namespace: ns!.name });
      return d.spec?.paused !== true ? d : undefined;
    }, { what: "the hold to be released by the ServiceAccount's controller", timeoutMs: 60_000 });
    assert.equal(decodeStatus(released.metadata?.annotations?.["kube-prepull.io/status"])?.phase, "Succeeded");
    const events = await admin.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: ns.name, fieldSelector: "involvedObject.name=web" });
    assert.ok(events.items.some((e) => e.reason === "HoldReleased" && e.source?.component === "kube-prepull"));
    await waitUntil(async () => (await apps.listNamespacedDaemonSet({ namespace: ns!.name })).items.length === 0,
      { what: "the DaemonSet to be cleaned up after the rollout" });
  });

  it("grants nothing beyond what the code uses", async () => {
    const denied: Array<[string, string, { group?: string; namespace?: string; subresource?: string }]> = [
      ["get", "secrets", { namespace: "default" }],
      ["list", "secrets", {}],
      ["get", "secrets", { namespace: "kube-prepull" }],
      ["create", "pods", { namespace: "default" }],
      ["delete", "pods", { namespace: "default" }],
      ["create", "pods", { namespace: "default", subresource: "exec" }],
      ["update", "deployments", { group: "apps", namespace: "default" }],
      ["delete", "deployments", { group: "apps", namespace: "default" }],
      ["create", "deployments", { group: "apps", namespace: "default" }],
      ["update", "daemonsets", { group: "apps", namespace: "default" }],
      ["patch", "nodes", {}],
      ["update", "leases", { group: "coordination.k8s.io", namespace: "kube-system" }],
      ["create", "leases", { group: "coordination.k8s.io", namespace: "default" }],
      ["delete", "leases", { group: "coordination.k8s.io", namespace: "kube-prepull" }],
      ["get", "configmaps", { namespace: "kube-prepull" }],
      ["update", "mutatingwebhookconfigurations", { group: "admissionregistration.k8s.io" }],
      ["create", "serviceaccounts", { namespace: "default", subresource: "token" }],
      ["escalate", "clusterroles", { group: "rbac.authorization.k8s.io" }],
    ];
    for (const [verb, resource, options] of denied) {
      assert.equal(await allowed(verb, resource, options), false, `${verb} ${resource} ${JSON.stringify(options)} must be denied`);
    }
    const granted: Array<[string, string, { group?: string; namespace?: string }]> = [
      ["watch", "deployments", { group: "apps" }],
      ["patch", "deployments", { group: "apps", namespace: "team-a" }],
      ["create", "daemonsets", { group: "apps", namespace: "team-a" }],
      ["patch", "daemonsets", { group: "apps", namespace: "team-a" }],
      ["delete", "daemonsets", { group: "apps", namespace: "team-a" }],
      ["watch", "pods", {}],
      ["watch", "nodes", {}],
      ["create", "events", { namespace: "team-a" }],
      ["update", "leases", { group: "coordination.k8s.io", namespace: "kube-prepull" }],
    ];
    for (const [verb, resource, options] of granted) {
      assert.equal(await allowed(verb, resource, options), true, `${verb} ${resource} ${JSON.stringify(options)} must be allowed`);
    }
  });
});
