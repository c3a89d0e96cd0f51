// The manifests on the local cluster (issue: install and operate): the kustomize output applies
// cleanly; what the ServiceAccount must not do stays denied; and two `kube-prepull serve`
// processes authenticated only as that ServiceAccount (a token for it), behind a balancer standing
// in for the Service, run the installed product: self-managed certificates created once by
// whichever replica wins, the CA injected (and re-injected), serving certificate and CA rotated
// while admission requests flow with none failing, and a held prepull released after its leader is
// killed (spec §2, §4, §5).
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import https from "node:https";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { SYSTEM_ANNOTATIONS } from "../../src/prepull/annotations.js";
import { prepullDaemonSetName } from "../../src/prepull/daemonset.js";
import { decodeStatus } from "../../src/prepull/progress.js";
import { bundleTrusts, caBundleOf, decodeSecretData } from "../../src/tls/self-managed.js";
import { buildOverlay, createNamespace, kubectl, testKubeConfig, waitForPrepullWebhook, waitUntil } from "../support/cluster.js";
import { isLeader, isReady, serviceAccountKubeconfigFile, startBalancer, startReplica, stopReplicas, type Replica } from "../support/replicas.js";

const admin = testKubeConfig();
const apps = admin.makeApiClient(k8s.AppsV1Api);
const authz = admin.makeApiClient(k8s.AuthorizationV1Api);
const admission = admin.makeApiClient(k8s.AdmissionregistrationV1Api);
const core = admin.makeApiClient(k8s.CoreV1Api);
const coordination = admin.makeApiClient(k8s.CoordinationV1Api);
const SA_USER = "system:serviceaccount:kube-prepull:kube-prepull";
const SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:kube-prepull", "system:authenticated"];

const build = buildOverlay;
const toYaml = (objects: k8s.KubernetesObject[]): string => objects.map((o) => JSON.stringify(o)).join("\n---\n");

type Attributes = { group?: string; namespace?: string; subresource?: string; name?: string };

async function allowed(verb: string, resource: string, options: Attributes = {}): Promise<boolean> {
  const review = await authz.createSubjectAccessReview({
    body: { spec: { user: SA_USER, groups: SA_GROUPS, resourceAttributes: { verb, resource, group: "", ...options } } },
  });
  return review.status?.allowed === true;
}

/** Requests the apiserver skipped a failing webhook for (failurePolicy: Ignore), for these webhooks. */
async function failOpenCount(webhooks: string[]): Promise<number> {
  const { stdout } = await kubectl(["get", "--raw", "/metrics"]);
  let sum = 0;
  for (const match of stdout.matchAll(/^apiserver_admission_webhook_fail_open_count\{([^}]*)\} (\S+)$/gm)) {
    if (webhooks.some((w) => match[1]!.includes(`name="${w}"`))) sum += Number(match[2]);
  }
  return sum;
}

/** The certificate a server presents on a new TLS connection. */
function presentedCertificate(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.end();
    });
    socket.on("error", reject);
  });
}

const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

/**
 * One AdmissionReview over a new TLS connection that trusts only `caBundle`, as the apiserver
 * calls a webhook: resolves to the error, or undefined when it was answered with a patch.
 */
function reviewOverNewConnection(port: number, caBundle: string, uid: string): Promise<string | undefined> {
  const body = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid,
      kind: { group: "apps", version: "v1", kind: "Deployment" },
      resource: { group: "apps", version: "v1", resource: "deployments" },
      operation: "CREATE",
      namespace: "rotation",
      name: "direct",
      userInfo: { username: "test" },
      object: { metadata: { name: "direct" }, spec: { replicas: 1, template: { spec: { containers: [{ name: "c", image: `example.com/direct:${uid}` }] } } } },
      dryRun: true,
    },
  });
  return new Promise((resolve) => {
    const req = https.request({
      host: "127.0.0.1", port, path: "/mutate/deployments", method: "POST", ca: caBundle, agent: false,
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
    }, (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString()));
      res.on("end", () => resolve(res.statusCode === 200 && text.includes('"patch"') ? undefined : `HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
    });
    req.on("error", (error) => resolve(error.message));
    req.end(body);
  });
}

describe("install from manifests/", () => {
  let objects: k8s.KubernetesObject[];
  const replicas: Replica[] = [];
  let balancer: { port: number; close: () => Promise<void> } | undefined;
  const namespaces: Array<{ name: string; remove: () => Promise<void> }> = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), "kube-prepull-install-"));

  before(async () => {
    objects = await build("opt-in");
  });
  after(async () => {
    await stopReplicas(replicas);
    // KUBE_PREPULL_TEST_LOG=debug: keep the replicas' logs for a look after the run.
    if (process.env.KUBE_PREPULL_TEST_LOG) for (const r of replicas) writeFileSync(path.join(os.tmpdir(), `kube-prepull-${r.name}.log`), r.output());
    await balancer?.close();
    for (const ns of namespaces) await ns.remove();
    rmSync(dir, { recursive: true, force: true });
    await kubectl(["delete", "--ignore-not-found", "--wait=false", "-f", "-"], toYaml(objects.filter((o) => o.kind !== "Deployment"))).catch(() => undefined);
  });

  it("builds every overlay with kubectl's kustomize", async () => {
    const kinds = (list: k8s.KubernetesObject[]): string[] => list.map((o) => o.kind!).sort();
    assert.deepEqual(kinds(objects), [
      "ClusterRole", "ClusterRoleBinding", "Deployment", "MutatingWebhookConfiguration", "Namespace", "PodDisruptionBudget",
      "Role", "Role", "Role", "RoleBinding", "RoleBinding", "RoleBinding", "Service", "ServiceAccount", "ValidatingWebhookConfiguration",
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
    // Certificates: self-managed by default; files from cert-manager's Secret in that overlay.
    assert.ok(deployment.spec?.template.spec?.containers[0]?.args?.includes("--tls-secret=kube-prepull-tls"));
    const certManagerArgs = (certManager.find((o) => o.kind === "Deployment") as k8s.V1Deployment).spec?.template.spec?.containers[0]?.args ?? [];
    assert.ok(certManagerArgs.includes("--tls-cert-file=/etc/kube-prepull/tls/tls.crt"), certManagerArgs.join(" "));
    assert.ok(!certManagerArgs.some((a) => a.startsWith("--tls-secret")), certManagerArgs.join(" "));
  });

  it("applies cleanly (server-side dry run of everything, including the Deployment, under Pod Security restricted)", async () => {
    // The namespace first: the dry run of the namespaced objects needs it to exist.
    await kubectl(["apply", "-f", "-"], toYaml(objects.filter((o) => o.kind === "Namespace")));
    const { stdout } = await kubectl(["apply", "--dry-run=server", "-f", "-"], toYaml(objects));
    assert.equal(stdout.trim().split("\n").length, objects.length, stdout);
    // For real: everything except the Deployment (its pods would be simulated, not this process).
    await kubectl(["apply", "-f", "-"], toYaml(objects.filter((o) => o.kind !== "Deployment")));
  });

  it("grants nothing beyond what the code uses", async () => {
    const denied: Array<[string, string, Attributes]> = [
      ["get", "secrets", { namespace: "default" }],
      ["list", "secrets", {}],
      ["get", "secrets", { namespace: "kube-prepull", name: "other" }],
      ["list", "secrets", { namespace: "kube-prepull" }],
      ["update", "secrets", { namespace: "kube-prepull", name: "other" }],
      ["create", "secrets", { namespace: "default" }],
      ["delete", "secrets", { namespace: "kube-prepull", name: "kube-prepull-tls" }],
      ["create", "pods", { namespace: "default" }],
      ["watch", "pods", { namespace: "default" }],
      ["delete", "pods", { namespace: "default" }],
      ["create", "pods", { namespace: "default", subresource: "exec" }],
      ["update", "deployments", { group: "apps", namespace: "default" }],
      ["delete", "deployments", { group: "apps", namespace: "default" }],
      ["create", "deployments", { group: "apps", namespace: "default" }],
      ["update", "daemonsets", { group: "apps", namespace: "default" }],
      ["update", "statefulsets", { group: "apps", namespace: "default" }],
      ["delete", "statefulsets", { group: "apps", namespace: "default" }],
      ["create", "jobs", { group: "batch", namespace: "default" }],
      ["delete", "jobs", { group: "batch", namespace: "default" }],
      ["update", "cronjobs", { group: "batch", namespace: "default" }],
      ["delete", "cronjobs", { group: "batch", namespace: "default" }],
      ["patch", "jobs", { group: "batch", namespace: "default", subresource: "status" }],
      ["patch", "replicasets", { group: "apps", namespace: "default" }],
      ["patch", "nodes", {}],
      ["update", "leases", { group: "coordination.k8s.io", namespace: "kube-system" }],
      ["create", "leases", { group: "coordination.k8s.io", namespace: "default" }],
      ["delete", "leases", { group: "coordination.k8s.io", namespace: "kube-prepull" }],
      ["get", "configmaps", { namespace: "default" }],
      ["list", "configmaps", {}],
      ["delete", "configmaps", { namespace: "kube-prepull" }],
      ["update", "configmaps", { namespace: "kube-prepull" }],
      ["patch", "mutatingwebhookconfigurations", { group: "admissionregistration.k8s.io", name: "someone-else" }],
      ["update", "mutatingwebhookconfigurations", { group: "admissionregistration.k8s.io", name: "kube-prepull" }],
      ["delete", "validatingwebhookconfigurations", { group: "admissionregistration.k8s.io", name: "kube-prepull" }],
      ["create", "mutatingwebhookconfigurations", { group: "admissionregistration.k8s.io" }],
      ["list", "mutatingwebhookconfigurations", { group: "admissionregistration.k8s.io" }],
      ["create", "serviceaccounts", { namespace: "default", subresource: "token" }],
      ["escalate", "clusterroles", { group: "rbac.authorization.k8s.io" }],
    ];
    for (const [verb, resource, options] of denied) {
      assert.equal(await allowed(verb, resource, options), false, `${verb} ${resource} ${JSON.stringify(options)} must be denied`);
    }
    const granted: Array<[string, string, Attributes]> = [
      ["watch", "deployments", { group: "apps" }],
      ["patch", "deployments", { group: "apps", namespace: "team-a" }],
      ["watch", "statefulsets", { group: "apps" }],
      ["patch", "statefulsets", { group: "apps", namespace: "team-a" }],
      ["watch", "daemonsets", { group: "apps" }],
      ["watch", "jobs", { group: "batch" }],
      ["patch", "jobs", { group: "batch", namespace: "team-a" }],
      ["watch", "cronjobs", { group: "batch" }],
      ["patch", "cronjobs", { group: "batch", namespace: "team-a" }],
      ["create", "daemonsets", { group: "apps", namespace: "team-a" }],
      ["patch", "daemonsets", { group: "apps", namespace: "team-a" }],
      ["delete", "daemonsets", { group: "apps", namespace: "team-a" }],
      ["list", "pods", { namespace: "team-a" }],
      ["watch", "nodes", {}],
      ["create", "events", { namespace: "team-a" }],
      ["update", "leases", { group: "coordination.k8s.io", namespace: "kube-prepull" }],
      ["create", "secrets", { namespace: "kube-prepull" }],
      ["watch", "configmaps", { namespace: "kube-prepull" }],
      ["patch", "configmaps", { namespace: "kube-prepull" }],
      ["update", "secrets", { namespace: "kube-prepull", name: "kube-prepull-tls" }],
      ["watch", "secrets", { namespace: "kube-prepull", name: "kube-prepull-tls" }],
      ["patch", "mutatingwebhookconfigurations", { group: "admissionregistration.k8s.io", name: "kube-prepull" }],
      ["watch", "validatingwebhookconfigurations", { group: "admissionregistration.k8s.io", name: "kube-prepull" }],
    ];
    for (const [verb, resource, options] of granted) {
      assert.equal(await allowed(verb, resource, options), true, `${verb} ${resource} ${JSON.stringify(options)} must be allowed`);
    }
  });

  describe("two replicas authenticated only as the ServiceAccount", () => {
    let webhookNames: string[];
    const secretSet = async (): Promise<ReturnType<typeof decodeSecretData>> => decodeSecretData((await core.readNamespacedSecret({ name: "kube-prepull-tls", namespace: "kube-prepull" })).data);

    it("start at once, create one certificate Secret between them, and become ready only once the CA is injected", async () => {
      const mutating = objects.find((o) => o.kind === "MutatingWebhookConfiguration") as k8s.V1MutatingWebhookConfiguration;
      const validating = objects.find((o) => o.kind === "ValidatingWebhookConfiguration") as k8s.V1ValidatingWebhookConfiguration;
      webhookNames = [...mutating.webhooks!, ...validating.webhooks!].map((w) => w.name);
      balancer = await startBalancer(() => replicas.map((r) => r.admissionPort));
      // The Service stands in as a url to the balancer; the manifests leave caBundle empty.
      const url = (p: string): k8s.AdmissionregistrationV1WebhookClientConfig => ({ url: `https://127.0.0.1:${balancer!.port}${p}` });
      const patch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
      const clientConfigs = mutating.webhooks!.map((w, i) => ({ op: "replace", path: `/webhooks/${i}/clientConfig`, value: url(w.clientConfig.service!.path!) }));
      await admission.patchMutatingWebhookConfiguration({ name: "kube-prepull", body: clientConfigs }, patch);
      // No validating configuration yet: the replicas cannot be ready without both.
      await admission.deleteValidatingWebhookConfiguration({ name: "kube-prepull" });

      const kubeconfig = await serviceAccountKubeconfigFile(dir);
      const args = [
        "--kubeconfig", kubeconfig, "--namespace", "kube-prepull",
        "--tls-secret", "kube-prepull-tls", "--tls-san", "127.0.0.1", "--tls-validity", "12s", "--tls-ca-validity", "36s",
        "--prepull-pod-annotation", "sim.kube-prepull.io/pull-delay=20s", "--log-level", "info",
      ];
      replicas.push(...await Promise.all([startReplica("replica-a", args), startReplica("replica-b", args)]));
      const set = (await secretSet())!;
      assert.ok(set, "one complete certificate Secret");
      await waitUntil(async () => {
        const served = await Promise.all(replicas.map((r) => presentedCertificate(r.admissionPort)));
        return served.every((f) => f === fingerprint(set.serving.certPem));
      }, { what: "both replicas to serve the Secret's certificate" });
      for (const r of replicas) assert.equal(await isReady(r), false, `${r.name} must not be ready before both configurations trust its certificate`);

      await admission.createValidatingWebhookConfiguration({
        body: { ...validating, webhooks: validating.webhooks!.map((w) => ({ ...w, clientConfig: url(w.clientConfig.service!.path!) })) },
      });
      await waitUntil(async () => (await Promise.all(replicas.map(isReady))).every(Boolean), { what: "both replicas to be ready", timeoutMs: 20_000 });
      const injected = await admission.readValidatingWebhookConfiguration({ name: "kube-prepull" });
      const bundle = Buffer.from(injected.webhooks![0]!.clientConfig.caBundle!, "base64").toString("utf8");
      assert.ok(bundleTrusts(bundle, (await secretSet())!.serving.certPem));
    });

    it("renews the serving certificate and rotates the CA while admission requests flow, and none fails", async (t) => {
      const ns = await createNamespace(admin, "rotation", { "kube-prepull.io/enabled": "true" });
      namespaces.push(ns);
      await waitForPrepullWebhook(apps, ns.name);
      const failOpenBefore = await failOpenCount(webhookNames);
      const signers = new Set<string>();
      const servings = new Set<string>();
      let done = false;
      let requests = 0;
      const failures: string[] = [];
      // Server-side dry runs: the webhook mutates them like real writes (sideEffects: NoneOnDryRun)
      // and nothing acts on them, so a missing request annotation means the webhook was skipped.
      const worker = async (w: number): Promise<void> => {
        for (let i = 0; !done; i++) {
          const name = `load-${w}-${i}`;
          try {
            const result = await apps.createNamespacedDeployment({
              namespace: ns.name,
              dryRun: "All",
              body: {
                metadata: { name },
                spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image: `example.com/load/app:${i}` }] } } },
              },
            });
            if (!result.metadata?.annotations?.[SYSTEM_ANNOTATIONS.request]) failures.push(`${name}: not mutated`);
          } catch (error) {
            failures.push(`${name}: ${(error as Error).message}`);
          }
          requests++;
        }
      };
      // And as the apiserver would on a fresh connection: a handshake trusting only the caBundle
      // the mutating configuration held a moment ago (re-read every 200 ms). A serving certificate
      // from a CA not yet injected fails here.
      let caBundle = "";
      let direct = 0;
      const readBundle = async (): Promise<void> => {
        const config = await admission.readMutatingWebhookConfiguration({ name: "kube-prepull" });
        caBundle = Buffer.from(config.webhooks![0]!.clientConfig.caBundle ?? "", "base64").toString("utf8");
      };
      await readBundle();
      const bundleReader = (async () => {
        while (!done) {
          await readBundle();
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      const directWorker = async (): Promise<void> => {
        while (!done) {
          const error = await reviewOverNewConnection(balancer!.port, caBundle, `direct-${++direct}`);
          if (error) failures.push(`direct review ${direct}: ${error}`);
        }
      };
      const load = Promise.all([...[0, 1, 2, 3].map(worker), directWorker(), bundleReader]);
      const rotated = await waitUntil(async () => {
        const set = (await secretSet())!;
        signers.add(fingerprint(set.signer.certPem));
        servings.add(fingerprint(set.serving.certPem));
        const onNewCa = signers.size >= 2 && new X509Certificate(set.serving.certPem).verify(new X509Certificate(set.signer.certPem).publicKey);
        return onNewCa && servings.size >= 4 ? set : undefined;
      }, { what: "a CA rotation and serving renewals", timeoutMs: 60_000, intervalMs: 250 });
      await waitUntil(async () => {
        const served = await Promise.all(replicas.map((r) => presentedCertificate(r.admissionPort)));
        return served.every((f) => servings.has(f) && f !== [...servings][0]);
      }, { what: "both replicas to serve a renewed certificate" });
      done = true;
      await load;
      t.diagnostic(`${requests} admission requests through the apiserver and ${direct} on new connections during ${servings.size} serving certificates and ${signers.size} CAs`);
      assert.deepEqual(failures, []);
      assert.ok(requests > 100, `only ${requests} requests`);
      assert.equal(await failOpenCount(webhookNames) - failOpenBefore, 0, "the apiserver skipped the webhook (fail open)");
      assert.equal(rotated.trusted.length, 2, "old and new CA both trusted during the change");
    });

    it("re-injects the CA bundle when something overwrites it", async () => {
      const patch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
      await admission.patchMutatingWebhookConfiguration({ name: "kube-prepull", body: [{ op: "remove", path: "/webhooks/0/clientConfig/caBundle" }] }, patch);
      await waitUntil(async () => {
        const set = (await secretSet())!;
        const config = await admission.readMutatingWebhookConfiguration({ name: "kube-prepull" });
        return config.webhooks![0]!.clientConfig.caBundle === Buffer.from(caBundleOf(set)).toString("base64");
      }, { what: "the CA bundle to be injected again", timeoutMs: 20_000 });
    });

    it("releases a hold after the leader is killed: the other replica takes over within the lease", async (t) => {
      const [leader, follower] = await waitUntil(async () => {
        const leading = await Promise.all(replicas.map(isLeader));
        return leading.filter(Boolean).length === 1 ? (leading[0] ? [replicas[0]!, replicas[1]!] : [replicas[1]!, replicas[0]!]) : undefined;
      }, { what: "exactly one replica to lead" });
      const lease = await coordination.readNamespacedLease({ name: "kube-prepull", namespace: "kube-prepull" });
      assert.match(lease.spec?.holderIdentity ?? "", new RegExp(`^${leader.name}_`));

      const ns = await createNamespace(admin, "installed", { "kube-prepull.io/enabled": "true" });
      namespaces.push(ns);
      await waitForPrepullWebhook(apps, ns.name);
      const image = "example.com/team/installed:1";
      const created = await apps.createNamespacedDeployment({
        namespace: ns.name,
        body: {
          metadata: { name: "web", annotations: { "kube-prepull.io/hold": "true" } },
          spec: { replicas: 1, selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web", image }] } } },
        },
      });
      assert.equal(created.spec?.paused, true);
      await waitUntil(() => apps.readNamespacedDaemonSet({ name: prepullDaemonSetName("web", [image]), namespace: ns.name }).catch(() => undefined),
        { what: "the leader to start the prepull" });

      const killedAt = Date.now();
      leader.child.kill("SIGKILL"); // no lease hand-back: the follower must wait for it to expire
      await waitUntil(() => isLeader(follower), { what: `${follower.name} to take over`, timeoutMs: 40_000, intervalMs: 250 });
      const takeover = (Date.now() - killedAt) / 1000;
      // The follower times the 15 s lease from when it *saw* the last renewal (up to one retry
      // period, 2.4 s, after it), then needs up to one more retry period to take it: ≤ 15 + 2 × 2.4 s,
      // plus 1 s for the API calls.
      t.diagnostic(`${follower.name} took over ${takeover.toFixed(1)}s after ${leader.name} was killed`);
      assert.ok(takeover <= 15 + 2 * 2.4 + 1, `took over after ${takeover.toFixed(1)}s`);
      const now = await coordination.readNamespacedLease({ name: "kube-prepull", namespace: "kube-prepull" });
      assert.match(now.spec?.holderIdentity ?? "", new RegExp(`^${follower.name}_`));
      assert.ok((now.spec?.leaseTransitions ?? 0) >= 1);

      const released = await waitUntil(async () => {
        const d = await apps.readNamespacedDeployment({ name: "web", namespace: ns.name });
        return d.spec?.paused !== true ? d : undefined;
      }, { what: "the new leader to release the hold", timeoutMs: 60_000 });
      assert.equal(decodeStatus(released.metadata?.annotations?.[SYSTEM_ANNOTATIONS.status])?.phase, "Succeeded");
      // The Event is written after the release (its own request): wait for it rather than read once.
      await waitUntil(async () => {
        const events = await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: "involvedObject.name=web" });
        return events.items.some((e) => e.reason === "HoldReleased" && e.source?.component === "kube-prepull");
      }, { what: "the new leader's HoldReleased Event", timeoutMs: 20_000 });
      await waitUntil(async () => (await apps.listNamespacedDaemonSet({ namespace: ns.name })).items.length === 0,
        { what: "the DaemonSet to be cleaned up after the rollout" });
    });
  });
});
