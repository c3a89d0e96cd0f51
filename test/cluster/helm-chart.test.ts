// The Helm chart (charts/kube-prepull) with the real, pinned helm: lint, every mode rendered, the
// schema rejecting bad values, every value landing where it should — and one source of truth with
// manifests/: the chart's defaults render what the kustomize overlays build (built with the
// cluster's kubectl, as install.test.ts does), Helm's own labels and the Namespace aside.
// Needs no running cluster; lives here for the binaries test/run-with-cluster.ts provides.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import type { Command } from "commander";
import type * as k8s from "@kubernetes/client-node";
import { parse } from "yaml";
import { packageRoot } from "../../src/local-cluster/binaries.js";
import { parseDuration } from "../../src/prepull/annotations.js";
import { buildOverlay } from "../support/cluster.js";
import { testProgram } from "../support/cli.js";
import { CHART_DIR, helm, renderChart, setJsonArgs } from "../support/helm.js";

/** Labels Helm charts carry by convention and kustomize does not: the only allowed difference. */
const HELM_LABELS = ["helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version"];

const keyOf = (o: k8s.KubernetesObject): string => `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;

/** Objects by kind/namespace/name, Helm's own labels removed. */
function comparable(objects: k8s.KubernetesObject[]): Map<string, unknown> {
  const byKey = new Map<string, unknown>();
  for (const object of objects) {
    const copy = structuredClone(object);
    for (const label of HELM_LABELS) delete copy.metadata?.labels?.[label];
    assert.ok(!byKey.has(keyOf(object)), `${keyOf(object)} twice`);
    byKey.set(keyOf(object), copy);
  }
  return byKey;
}

/** Fails naming the first object that differs, with both versions. */
function assertSameObjects(chart: k8s.KubernetesObject[], overlay: k8s.KubernetesObject[]): void {
  const fromChart = comparable(chart);
  // The chart does not create its namespace (docs/install.md#helm: created and labelled first).
  const fromOverlay = comparable(overlay.filter((o) => o.kind !== "Namespace"));
  assert.deepEqual([...fromChart.keys()].sort(), [...fromOverlay.keys()].sort());
  for (const [key, object] of fromChart) assert.deepEqual(object, fromOverlay.get(key), key);
}

const find = <T extends k8s.KubernetesObject>(objects: k8s.KubernetesObject[], kind: string, name = "kube-prepull"): T => {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  assert.ok(found, `${kind}/${name} rendered`);
  return found as T;
};
const deploymentOf = (objects: k8s.KubernetesObject[]): k8s.V1Deployment => find<k8s.V1Deployment>(objects, "Deployment");
const argsOf = (objects: k8s.KubernetesObject[]): string[] => deploymentOf(objects).spec!.template.spec!.containers[0]!.args!;
const webhooksOf = (objects: k8s.KubernetesObject[]): k8s.V1MutatingWebhook[] => [
  ...find<k8s.V1MutatingWebhookConfiguration>(objects, "MutatingWebhookConfiguration").webhooks!,
  ...find<k8s.V1ValidatingWebhookConfiguration>(objects, "ValidatingWebhookConfiguration").webhooks!,
];

/** helm's error output for values the schema must reject. */
async function rejection(values: Record<string, unknown>): Promise<string> {
  const error = await helm(["template", "kube-prepull", CHART_DIR, ...setJsonArgs(values)]).then(
    () => undefined,
    (e: Error & { stderr?: string }) => e.stderr ?? e.message,
  );
  assert.ok(error !== undefined, `${JSON.stringify(values)} must be rejected`);
  return error;
}

describe("the Helm chart", () => {
  it("is versioned as the package", () => {
    const chart = parse(readFileSync(path.join(CHART_DIR, "Chart.yaml"), "utf8")) as { version: string; appVersion: string };
    const pkg = JSON.parse(readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as { version: string };
    assert.equal(chart.version, pkg.version);
    assert.equal(chart.appVersion, pkg.version);
  });

  it("passes helm lint, and helm lint --strict in every mode", async () => {
    assert.match((await helm(["lint", CHART_DIR])).stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    const modes: Array<Record<string, unknown>> = [
      {},
      { mode: "cluster-wide" },
      { "certificates.mode": "cert-manager" },
      { "certificates.mode": "secret", "certificates.secret": { name: "my-tls", caBundle: "Q0E=" } },
    ];
    for (const values of modes) {
      const { stdout } = await helm(["lint", "--strict", CHART_DIR, ...setJsonArgs(values)]);
      assert.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/, `${JSON.stringify(values)}: ${stdout}`);
    }
  });

  describe("renders what manifests/ applies", () => {
    it("defaults = overlays/opt-in", async () => {
      assertSameObjects(await renderChart(), await buildOverlay("opt-in"));
    });
    it("mode=cluster-wide = overlays/cluster-wide", async () => {
      assertSameObjects(await renderChart({ mode: "cluster-wide" }), await buildOverlay("cluster-wide"));
    });
    it("certificates.mode=cert-manager = overlays/cert-manager", async () => {
      assertSameObjects(await renderChart({ "certificates.mode": "cert-manager" }), await buildOverlay("cert-manager"));
    });
    it("metrics.serviceMonitor + prometheusRule = opt-in with the monitoring Component", async () => {
      const values = { "metrics.serviceMonitor.enabled": true, "metrics.prometheusRule.enabled": true };
      assertSameObjects(await renderChart(values), await buildOverlay("opt-in", ["monitoring"]));
    });
    it("metrics.podMonitor + prometheusRule = opt-in with the monitoring/pod-monitor Component", async () => {
      const values = { "metrics.podMonitor.enabled": true, "metrics.prometheusRule.enabled": true };
      assertSameObjects(await renderChart(values), await buildOverlay("opt-in", ["monitoring/pod-monitor"]));
    });
  });

  it("puts the labels a Prometheus selects by on the monitoring objects, in the release's namespace", async () => {
    const release = { release: "kube-prometheus-stack" };
    const objects = await renderChart({
      metrics: { serviceMonitor: { enabled: true, labels: release }, podMonitor: { enabled: true, labels: release }, prometheusRule: { enabled: true, labels: release } },
    }, "monitoring-ns");
    for (const kind of ["ServiceMonitor", "PodMonitor", "PrometheusRule"]) {
      const object = find(objects, kind);
      assert.equal(object.metadata?.namespace, "monitoring-ns", kind);
      assert.equal(object.metadata?.labels?.release, "kube-prometheus-stack", kind);
    }
  });

  it("certificates from an existing Secret: mounted as files, its CA in every caBundle, no access to Secrets or webhook configurations", async () => {
    const objects = await renderChart({ "certificates.mode": "secret", "certificates.secret": { name: "my-tls", caBundle: "Q0E=" } });
    const args = argsOf(objects);
    assert.ok(args.includes("--tls-cert-file=/etc/kube-prepull/tls/tls.crt") && args.includes("--tls-key-file=/etc/kube-prepull/tls/tls.key"), args.join(" "));
    assert.ok(!args.some((a) => a.startsWith("--tls-secret")));
    assert.deepEqual(deploymentOf(objects).spec!.template.spec!.volumes, [{ name: "tls", secret: { secretName: "my-tls" } }]);
    for (const webhook of webhooksOf(objects)) assert.equal(webhook.clientConfig.caBundle, "Q0E=");
    assert.ok(!objects.some((o) => ["Certificate", "Issuer"].includes(o.kind!) || o.metadata?.name === "kube-prepull-certificates"));
    const rules = find<k8s.V1ClusterRole>(objects, "ClusterRole").rules!;
    assert.ok(!rules.some((r) => r.apiGroups?.includes("admissionregistration.k8s.io")));
  });

  it("cert-manager with an issuer of your own: no self-signed Issuer, yours in the Certificate", async () => {
    const issuerRef = { name: "corp-ca", kind: "ClusterIssuer", group: "cert-manager.io" };
    const objects = await renderChart({ "certificates.mode": "cert-manager", "certificates.certManager.issuerRef": issuerRef });
    assert.ok(!objects.some((o) => o.kind === "Issuer"));
    assert.deepEqual((find(objects, "Certificate") as unknown as { spec: { issuerRef: unknown } }).spec.issuerRef, issuerRef);
  });

  it("puts every value where it belongs", async () => {
    const objects = await renderChart({
      replicaCount: 3,
      resources: { requests: { cpu: "100m" }, limits: null }, // merged into the defaults; null drops one
      nodeSelector: { pool: "system" },
      tolerations: [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }],
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "x", operator: "Exists" }] }] } } },
      topologySpreadConstraints: [],
      priorityClassName: "system-cluster-critical",
      podLabels: { team: "platform" },
      podAnnotations: { "example.com/a": "b" },
      podDisruptionBudget: { enabled: true, minAvailable: 1, maxUnavailable: "50%" },
      image: { registry: "mirror.example.com", repository: "kp/webhook", tag: "v9", digest: `sha256:${"a".repeat(64)}`, pullPolicy: "Always" },
      imagePullSecrets: [{ name: "pull" }],
      "helper.image.registry": "mirror.example.com",
      "helper.image.tag": "v7",
      "helper.image.digest": `sha256:${"b".repeat(64)}`,
      serve: {
        maxConcurrentPrepulls: 5, cleanupTTL: "1h", schedulingGrace: "2m", pullStrategy: "image-volumes", logLevel: "debug",
        prepullPod: { labels: { a: "1" }, annotations: { "b.example/c": "x=y" }, priorityClassName: "low" }, extraArgs: ["--no-leader-elect"],
      },
      "certificates.selfManaged": { validity: "24h", caValidity: "720h", extraSANs: ["127.0.0.1"] },
      webhook: { timeoutSeconds: 4, validatingTimeoutSeconds: 3, url: "https://127.0.0.1:9443" },
    });
    const deployment = deploymentOf(objects);
    const pod = deployment.spec!.template;
    const container = pod.spec!.containers[0]!;
    assert.equal(deployment.spec!.replicas, 3);
    assert.deepEqual(container.resources, { requests: { cpu: "100m", memory: "128Mi" } });
    assert.deepEqual(pod.spec!.nodeSelector, { pool: "system" });
    assert.deepEqual(pod.spec!.tolerations, [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }]);
    assert.ok(pod.spec!.affinity?.nodeAffinity);
    assert.equal(pod.spec!.topologySpreadConstraints, undefined);
    assert.equal(pod.spec!.priorityClassName, "system-cluster-critical");
    assert.deepEqual(pod.metadata!.labels, { "app.kubernetes.io/name": "kube-prepull", team: "platform" });
    assert.deepEqual(pod.metadata!.annotations, { "example.com/a": "b" });
    assert.deepEqual(find<k8s.V1PodDisruptionBudget>(objects, "PodDisruptionBudget").spec, { maxUnavailable: "50%", selector: { matchLabels: { "app.kubernetes.io/name": "kube-prepull" } } });
    assert.equal(container.image, `mirror.example.com/kp/webhook:v9@sha256:${"a".repeat(64)}`);
    assert.equal(container.imagePullPolicy, "Always");
    assert.deepEqual(pod.spec!.imagePullSecrets, [{ name: "pull" }]);
    assert.deepEqual(container.args!.slice(5), [
      "--tls-secret=kube-prepull-tls", "--service-name=kube-prepull", "--tls-san=127.0.0.1", "--tls-validity=24h", "--tls-ca-validity=720h",
      `--helper-image=mirror.example.com/kube-prepull/helper:v7@sha256:${"b".repeat(64)}`,
      "--pull-strategy=image-volumes", "--max-concurrent-prepulls=5", "--cleanup-ttl=1h", "--scheduling-grace=2m", "--log-level=debug",
      "--prepull-pod-label=a=1", "--prepull-pod-annotation=b.example/c=x=y", "--priority-class=low", "--no-leader-elect",
    ]);
    const mutating = find<k8s.V1MutatingWebhookConfiguration>(objects, "MutatingWebhookConfiguration").webhooks!;
    assert.ok(mutating.every((w) => w.timeoutSeconds === 4));
    assert.ok(find<k8s.V1ValidatingWebhookConfiguration>(objects, "ValidatingWebhookConfiguration").webhooks!.every((w) => w.timeoutSeconds === 3));
    for (const webhook of webhooksOf(objects)) {
      assert.match(webhook.clientConfig.url ?? "", /^https:\/\/127\.0\.0\.1:9443\/(mutate|validate)\/[a-z]+$/);
      assert.equal(webhook.clientConfig.service, undefined);
    }
    const noPdb = await renderChart({ "podDisruptionBudget.enabled": false });
    assert.ok(!noPdb.some((o) => o.kind === "PodDisruptionBudget"));
  });

  it("installs into any namespace: namespaced objects there, that namespace never covered", async () => {
    const objects = await renderChart({}, "platform");
    for (const o of objects.filter((x) => !["ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"].includes(x.kind!))) {
      assert.equal(o.metadata?.namespace, "platform", keyOf(o));
    }
    for (const webhook of webhooksOf(objects)) {
      assert.deepEqual(webhook.namespaceSelector!.matchExpressions![0]!.values, ["kube-system", "kube-public", "kube-node-lease", "platform"]);
      assert.equal(webhook.clientConfig.service?.namespace, "platform");
    }
    assert.equal(find<k8s.V1ClusterRoleBinding>(objects, "ClusterRoleBinding").subjects![0]!.namespace, "platform");
  });

  it("has serve's own defaults in values.yaml", () => {
    const values = parse(readFileSync(path.join(CHART_DIR, "values.yaml"), "utf8")) as { serve: Record<string, unknown> };
    const serve = testProgram().commands.find((c: Command) => c.name() === "serve")!;
    const defaultOf = (flag: string): unknown => serve.options.find((o) => o.long === flag)!.defaultValue;
    assert.equal(values.serve.maxConcurrentPrepulls, defaultOf("--max-concurrent-prepulls"));
    assert.equal(parseDuration(values.serve.cleanupTTL as string), defaultOf("--cleanup-ttl"));
    assert.equal(parseDuration(values.serve.schedulingGrace as string), defaultOf("--scheduling-grace"));
    assert.equal(values.serve.pullStrategy, defaultOf("--pull-strategy"));
    assert.equal(values.serve.logLevel, defaultOf("--log-level"));
  });

  it("rejects bad values with an error naming the value and what is allowed", async () => {
    assert.match(await rejection({ mode: "everywhere" }), /at '\/mode': value must be one of 'opt-in', 'cluster-wide'/);
    assert.match(await rejection({ "certificates.mode": "vault" }), /at '\/certificates\/mode': value must be one of 'self-managed', 'cert-manager', 'secret'/);
    assert.match(await rejection({ replicaCount: "two" }), /at '\/replicaCount': got string, want integer/);
    assert.match(await rejection({ "serve.cleanupTTL": "15 minutes" }), /at '\/serve\/cleanupTTL': '15 minutes' does not match pattern/);
    assert.match(await rejection({ "serve.pullStrategy": "docker" }), /at '\/serve\/pullStrategy': value must be one of/);
    // docs/spec.md §4: timeoutSeconds ≤ 5.
    assert.match(await rejection({ "webhook.timeoutSeconds": 6 }), /at '\/webhook\/timeoutSeconds': maximum: got 6, want 5/);
    assert.match(await rejection({ "webhook.validatingTimeoutSeconds": 0 }), /at '\/webhook\/validatingTimeoutSeconds': minimum: got 0, want 1/);
    assert.match(await rejection({ replicas: 2 }), /additional properties 'replicas' not allowed/);
    assert.match(await rejection({ "image.digest": "latest" }), /at '\/image\/digest'/);
    // The Secret mode needs the Secret and its CA.
    assert.match(await rejection({ "certificates.mode": "secret" }), /at '\/certificates\/secret\/name': minLength: got 0, want 1/);
  });
});
