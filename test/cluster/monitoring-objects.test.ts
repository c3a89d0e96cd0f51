// The monitoring objects of manifests/monitoring against the Prometheus Operator's own CRDs
// (v0.94.0, from its Go module): the Components build with the base, the CRDs applied server-side
// to the local cluster accept the ServiceMonitor, PodMonitor and PrometheusRule (a real create in a
// fresh namespace), and their schemas reject a wrong object. The CRDs this test installed are
// removed after it (no other test needs them); ones that were there before are left alone.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { buildOverlay, createNamespace, kubectl, testKubeConfig } from "../support/cluster.js";
import { crdFile, prometheusOperatorCrdDir } from "../support/prometheus-operator.js";

const CRDS = ["servicemonitors", "podmonitors", "prometheusrules"];
const MONITORING_KINDS = ["PodMonitor", "PrometheusRule", "ServiceMonitor"];

type Obj = k8s.KubernetesObject & { spec?: Record<string, unknown> };

/** The opt-in overlay with one monitoring Component, built by kubectl's kustomize as a user's overlay would. */
const buildWith = (component: string): Promise<Obj[]> => buildOverlay("opt-in", [path.join("monitoring", component)]);

const kindsOf = (objects: Obj[], kinds: string[]): string[] => objects.map((o) => o.kind!).filter((k) => kinds.includes(k)).sort();
const one = <T extends Obj>(objects: Obj[], kind: string): T => objects.find((o) => o.kind === kind) as T;
const toYaml = (objects: Obj[]): string => objects.map((o) => JSON.stringify(o)).join("\n---\n");

describe("monitoring objects (manifests/monitoring)", () => {
  const kc = testKubeConfig();
  let ns: { name: string; remove: () => Promise<void> } | undefined;
  const installed: string[] = [];

  before(async () => {
    const dir = await prometheusOperatorCrdDir();
    for (const plural of CRDS) {
      const name = `${plural}.monitoring.coreos.com`;
      const { stdout } = await kubectl(["get", "crd", name, "--ignore-not-found", "-o", "name"]);
      if (stdout.trim() !== "") continue;
      installed.push(name);
      await kubectl(["apply", "--server-side", "--field-manager=kube-prepull-test", "-f", crdFile(dir, plural)]);
    }
    await kubectl(["wait", "--for=condition=Established", "--timeout=60s", ...CRDS.map((p) => `crd/${p}.monitoring.coreos.com`)]);
    ns = await createNamespace(kc, "monitoring");
  });

  after(async () => {
    await ns?.remove();
    if (installed.length > 0) await kubectl(["delete", "crd", "--ignore-not-found", "--wait=false", ...installed]).catch(() => undefined);
  });

  it("the Service exposes the ops port (/metrics) as port `metrics`, 8080", async () => {
    const objects = await buildWith("alerts");
    const service = one<k8s.V1Service & Obj>(objects, "Service");
    assert.deepEqual(service.spec?.ports?.find((p) => p.name === "metrics"), { name: "metrics", port: 8080, targetPort: "ops" });
    const container = one<k8s.V1Deployment & Obj>(objects, "Deployment").spec!.template.spec!.containers[0]!;
    assert.deepEqual(container.ports?.find((p) => p.name === "ops"), { name: "ops", containerPort: 8080 });
    assert.ok(container.args?.includes("--ops-port=8080"), container.args?.join(" "));
    // And the apiserver takes it (a server-side dry run in this test's namespace).
    const { stdout } = await kubectl(["apply", "--dry-run=server", "-f", "-"], JSON.stringify({ ...service, metadata: { ...service.metadata, namespace: ns!.name } }));
    assert.match(stdout, /service\/kube-prepull created \(server dry run\)/);
  });

  it("each Component adds its objects to an overlay, in kube-prepull's namespace, selecting what exists", async () => {
    const withServiceMonitor = await buildWith(".");
    assert.deepEqual(kindsOf(withServiceMonitor, MONITORING_KINDS), ["PrometheusRule", "ServiceMonitor"]);
    const withPodMonitor = await buildWith("pod-monitor");
    assert.deepEqual(kindsOf(withPodMonitor, MONITORING_KINDS), ["PodMonitor", "PrometheusRule"]);
    assert.deepEqual(kindsOf(await buildWith("alerts"), MONITORING_KINDS), ["PrometheusRule"]);
    for (const o of [...withServiceMonitor, ...withPodMonitor].filter((o) => MONITORING_KINDS.includes(o.kind!))) {
      assert.equal(o.metadata?.namespace, "kube-prepull", `${o.kind} namespace`);
      assert.equal(o.metadata?.name, "kube-prepull", `${o.kind} name`);
    }
    // The ServiceMonitor selects the Service by its labels and scrapes a port the Service has.
    const service = one<k8s.V1Service & Obj>(withServiceMonitor, "Service");
    const serviceMonitor = one(withServiceMonitor, "ServiceMonitor").spec as { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string }> };
    for (const [k, v] of Object.entries(serviceMonitor.selector.matchLabels)) assert.equal(service.metadata?.labels?.[k], v, `Service label ${k}`);
    assert.ok(service.spec?.ports?.some((p) => p.name === serviceMonitor.endpoints[0]!.port));
    // The PodMonitor selects the Deployment's pods by their labels and scrapes a port they have.
    const template = one<k8s.V1Deployment & Obj>(withPodMonitor, "Deployment").spec!.template;
    const podMonitor = one(withPodMonitor, "PodMonitor").spec as { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: Array<{ port: string }> };
    for (const [k, v] of Object.entries(podMonitor.selector.matchLabels)) assert.equal(template.metadata?.labels?.[k], v, `pod label ${k}`);
    assert.ok(template.spec!.containers[0]!.ports?.some((p) => p.name === podMonitor.podMetricsEndpoints[0]!.port));
  });

  it("the Prometheus Operator CRDs accept the ServiceMonitor, PodMonitor and PrometheusRule (server-side apply)", async () => {
    const objects = [...await buildWith("."), ...await buildWith("pod-monitor")]
      .filter((o, i, all) => MONITORING_KINDS.includes(o.kind!) && all.findIndex((x) => x.kind === o.kind) === i)
      .map((o) => ({ ...o, metadata: { ...o.metadata, namespace: ns!.name } }));
    assert.equal(objects.length, 3);
    const { stdout } = await kubectl(["apply", "--server-side", "--field-manager=kube-prepull-test", "-f", "-"], toYaml(objects));
    assert.match(stdout, /servicemonitor.monitoring.coreos.com\/kube-prepull serverside-applied/);
    const listed = await kubectl(["get", "servicemonitors,podmonitors,prometheusrules", "-n", ns!.name, "-o", "name"]);
    assert.deepEqual(listed.stdout.trim().split("\n").sort(), [
      "podmonitor.monitoring.coreos.com/kube-prepull",
      "prometheusrule.monitoring.coreos.com/kube-prepull",
      "servicemonitor.monitoring.coreos.com/kube-prepull",
    ]);
  });

  it("the CRD schemas reject a wrong object", async () => {
    // A port number where the schema wants a port name (server-side apply types the object by the
    // CRD's schema first), and a `for` that is no duration (the schema's pattern).
    const wrong: Array<[object, RegExp]> = [
      [{ apiVersion: "monitoring.coreos.com/v1", kind: "ServiceMonitor", metadata: { name: "wrong", namespace: ns!.name },
        spec: { selector: { matchLabels: { app: "x" } }, endpoints: [{ port: 8080 }] } },
      /\.spec\.endpoints\[0\]\.port: expected string/],
      [{ apiVersion: "monitoring.coreos.com/v1", kind: "PrometheusRule", metadata: { name: "wrong", namespace: ns!.name },
        spec: { groups: [{ name: "g", rules: [{ alert: "A", expr: "up == 0", for: "two minutes" }] }] } },
      /spec\.groups\[0\]\.rules\[0\]\.for: Invalid value: "two minutes"/],
    ];
    for (const [object, reason] of wrong) {
      await assert.rejects(kubectl(["apply", "--server-side", "--field-manager=kube-prepull-test", "-f", "-"], JSON.stringify(object)),
        (e: Error & { stderr?: string }) => {
          assert.match(e.stderr ?? e.message, reason);
          return true;
        });
    }
    const { stdout } = await kubectl(["get", "servicemonitors,prometheusrules", "-n", ns!.name, "-o", "name"]);
    assert.doesNotMatch(stdout, /wrong/);
  });
});
