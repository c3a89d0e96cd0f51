import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { workloadLabelValue, imageVolumesDropped, imagesToPull, placementOf, prepullDaemonSetName, renderPrepullDaemonSet } from "../../../src/prepull/daemonset.js";
import { deploymentWorkload } from "../../../src/workloads/deployment.js";
import { listedNodes } from "../../../src/prepull/targets.js";

const REQUEST = { id: "r1", images: ["registry.example/app:v2", "busybox"], requestedAt: "2026-11-22T10:00:00Z", hold: false };
const CONFIG = { helperImage: "ghcr.io/kube-prepull/helper:v0.1.0", extraLabels: { team: "platform" }, extraAnnotations: { "example.com/note": "x" }, priorityClassName: "low" };

function deployment(spec: Partial<k8s.V1PodSpec> = {}): k8s.V1Deployment {
  return {
    metadata: { name: "web", namespace: "team", uid: "uid-1" },
    spec: {
      selector: { matchLabels: { app: "web" } },
      template: {
        spec: {
          serviceAccountName: "web-sa",
          imagePullSecrets: [{ name: "regcred" }],
          nodeSelector: { "kubernetes.io/os": "linux" },
          tolerations: [{ key: "dedicated", operator: "Equal", value: "web", effect: "NoSchedule" }],
          affinity: {
            nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "pool", operator: "In", values: ["web"] }] }] } },
            podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: "kubernetes.io/hostname" }] },
          },
          initContainers: [{ name: "init", image: "busybox", imagePullPolicy: "Always" }],
          containers: [{ name: "app", image: "registry.example/app:v2", imagePullPolicy: "IfNotPresent" }],
          ...spec,
        },
      },
    },
  };
}

const render = (nodes: "eligible" | "all" = "eligible", d = deployment()): k8s.V1DaemonSet =>
  renderPrepullDaemonSet({ workload: deploymentWorkload, object: d, request: REQUEST, nodes, nodeNames: ["n1", "n2"], config: CONFIG });

describe("prepull DaemonSet names", () => {
  it("is deterministic, independent of image order and spelling, and a DNS label", () => {
    const a = prepullDaemonSetName("web", ["nginx", "registry.example/app:v2"]);
    assert.equal(a, prepullDaemonSetName("web", ["registry.example/app:v2", "docker.io/library/nginx:latest"]));
    assert.notEqual(a, prepullDaemonSetName("web", ["nginx:1.27"]));
    assert.match(a, /^prepull-web-[0-9a-f]{10}$/);
    const long = prepullDaemonSetName("a".repeat(60) + "-", ["nginx"]);
    assert.ok(long.length <= 63, long);
    assert.match(long, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });
  it("cuts long Deployment names for label values", () => {
    assert.equal(workloadLabelValue("web"), "web");
    const value = workloadLabelValue("x".repeat(80));
    assert.ok(value.length <= 63);
    assert.notEqual(value, workloadLabelValue("x".repeat(81)));
  });
});

describe("prepull DaemonSet rendering (spec §3)", () => {
  const ds = render();
  const pod = ds.spec!.template.spec!;
  const containers = [...(pod.initContainers ?? []), ...pod.containers];

  it("is owned by the Deployment and labelled", () => {
    assert.equal(ds.metadata!.namespace, "team");
    assert.deepEqual(ds.metadata!.ownerReferences, [{ apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: "uid-1", controller: false, blockOwnerDeletion: false }]);
    assert.equal(ds.metadata!.labels!["app.kubernetes.io/managed-by"], "kube-prepull");
    assert.equal(ds.metadata!.labels!["kube-prepull.io/deployment"], "web");
    assert.equal(ds.spec!.template.metadata!.labels!["kube-prepull.io/prepull"], ds.metadata!.name);
    assert.deepEqual(ds.spec!.selector.matchLabels, { "kube-prepull.io/prepull": ds.metadata!.name });
    assert.equal(ds.spec!.template.metadata!.labels!.team, "platform");
  });

  it("uses the workload's ServiceAccount and pull secrets, without a token", () => {
    assert.equal(pod.serviceAccountName, "web-sa");
    assert.deepEqual(pod.imagePullSecrets, [{ name: "regcred" }]);
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.priorityClassName, "low");
    assert.equal(pod.terminationGracePeriodSeconds, 0);
  });

  it("pulls each image in an init container that runs the helper, with the workload's pull policy", () => {
    const pulls = pod.initContainers!.slice(1);
    assert.deepEqual(pulls.map((c) => [c.image, c.imagePullPolicy, c.command]), [
      ["registry.example/app:v2", "IfNotPresent", ["/.prepull/prepull-helper", "exit"]],
      ["busybox", "Always", ["/.prepull/prepull-helper", "exit"]],
    ]);
    assert.deepEqual(pod.initContainers![0]!.command, ["/prepull-helper", "install", "/.prepull/prepull-helper"]);
    assert.deepEqual(pod.containers.map((c) => c.command), [["/prepull-helper", "pause"]]);
    assert.ok(containers.every((c) => c.command && !c.command.some((arg) => /\bsh\b/.test(arg))), "never a shell");
  });

  it("passes Pod Security restricted and mounts nothing from the host", () => {
    assert.equal(pod.securityContext!.runAsNonRoot, true);
    assert.equal(pod.securityContext!.seccompProfile!.type, "RuntimeDefault");
    for (const c of containers) {
      const sc = c.securityContext!;
      assert.equal(sc.allowPrivilegeEscalation, false, c.name);
      assert.deepEqual(sc.capabilities!.drop, ["ALL"], c.name);
      assert.equal(sc.readOnlyRootFilesystem, true, c.name);
      assert.equal(sc.runAsNonRoot, true, c.name);
      // Measured on the real node (PREPULL_RESOURCES): a small request, a CPU limit runc can start under.
      assert.deepEqual(c.resources, { requests: { cpu: "10m", memory: "32Mi" }, limits: { cpu: "250m", memory: "32Mi" } }, c.name);
    }
    assert.ok((pod.volumes ?? []).every((v) => v.hostPath === undefined && v.emptyDir !== undefined));
    assert.equal(pod.hostNetwork, undefined);
  });

  it("keeps service meshes out and adds configured annotations", () => {
    const annotations = ds.spec!.template.metadata!.annotations!;
    assert.equal(annotations["sidecar.istio.io/inject"], "false");
    assert.equal(annotations["linkerd.io/inject"], "disabled");
    assert.equal(annotations["example.com/note"], "x");
  });

  it("does not copy the workload's pod-template annotations: only --prepull-pod-annotation reaches prepull pods (docs/local-cluster.md)", () => {
    const d = deployment();
    d.spec!.template.metadata = { annotations: { "sim.kube-prepull.io/pull-delay": "30s", "example.com/team": "web" } };
    const annotations = render("eligible", d).spec!.template.metadata!.annotations!;
    assert.equal(annotations["sim.kube-prepull.io/pull-delay"], undefined);
    assert.equal(annotations["example.com/team"], undefined);
    const configured = renderPrepullDaemonSet({
      workload: deploymentWorkload, object: d, request: REQUEST, nodes: "eligible", nodeNames: ["n1"],
      config: { ...CONFIG, extraAnnotations: { "sim.kube-prepull.io/pull-delay": "2s" } },
    });
    assert.equal(configured.spec!.template.metadata!.annotations!["sim.kube-prepull.io/pull-delay"], "2s");
  });

  it("eligible: the workload's placement, ANDed with Linux on the helper's architectures and the node list; pod anti-affinity dropped", () => {
    assert.deepEqual(pod.nodeSelector, { "kubernetes.io/os": "linux" });
    assert.deepEqual(pod.tolerations, deployment().spec!.template.spec!.tolerations);
    assert.equal(pod.affinity!.podAntiAffinity, undefined);
    const terms = pod.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
    assert.deepEqual(terms[0]!.matchExpressions, [
      { key: "pool", operator: "In", values: ["web"] },
      { key: "kubernetes.io/os", operator: "In", values: ["linux"] },
      { key: "kubernetes.io/arch", operator: "In", values: ["amd64", "arm64"] },
      { key: "kubernetes.io/hostname", operator: "In", values: ["n1", "n2"] },
    ]);
    assert.deepEqual(listedNodes(ds), ["n1", "n2"]);
  });

  it("all: tolerates every taint, no selector, only Linux on the helper's architectures and the node list", () => {
    const all = render("all").spec!.template.spec!;
    assert.deepEqual(all.tolerations, [{ operator: "Exists" }]);
    assert.equal(all.nodeSelector, undefined);
    assert.deepEqual(all.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms, [
      { matchExpressions: [{ key: "kubernetes.io/os", operator: "In", values: ["linux"] }, { key: "kubernetes.io/arch", operator: "In", values: ["amd64", "arm64"] }, { key: "kubernetes.io/hostname", operator: "In", values: ["n1", "n2"] }] },
    ]);
    assert.deepEqual(placementOf(undefined, "all"), { tolerations: [{ operator: "Exists" }] });
  });

  it("never replaces running pods and keeps no spare revisions", () => {
    assert.equal(ds.spec!.updateStrategy!.type, "OnDelete");
    assert.equal(ds.spec!.revisionHistoryLimit, 0);
  });

  it("pairs each image with the pull policy of the container that names it", () => {
    assert.deepEqual(imagesToPull(deployment().spec!.template.spec, ["docker.io/library/busybox:latest", "other:1"]), [
      { image: "docker.io/library/busybox:latest", pullPolicy: "Always" },
      { image: "other:1" },
    ]);
  });
});

describe("image-volume pull strategy", () => {
  const ds = renderPrepullDaemonSet({ workload: deploymentWorkload, object: deployment(), request: REQUEST, nodes: "eligible", nodeNames: ["n1"], config: { ...CONFIG, strategy: "image-volumes" } });
  const pod = ds.spec!.template.spec!;

  it("mounts each image as a read-only image volume into the helper's pause container; nothing runs from the images", () => {
    assert.equal(pod.initContainers, undefined);
    assert.deepEqual(pod.containers.map((c) => [c.image, c.command]), [[CONFIG.helperImage, ["/prepull-helper", "pause"]]]);
    assert.deepEqual(pod.volumes, [
      { name: "image-0", image: { reference: "registry.example/app:v2", pullPolicy: "IfNotPresent" } },
      { name: "image-1", image: { reference: "busybox", pullPolicy: "Always" } },
    ]);
    assert.deepEqual(pod.containers[0]!.volumeMounts!.map((m) => [m.name, m.readOnly]), [["image-0", true], ["image-1", true]]);
    assert.equal(pod.containers[0]!.securityContext!.readOnlyRootFilesystem, true);
  });

  it("notices when the API server dropped the image volumes (feature gate off)", () => {
    assert.equal(imageVolumesDropped(ds), false);
    const dropped = structuredClone(ds);
    dropped.spec!.template.spec!.volumes = [];
    dropped.spec!.template.spec!.containers[0]!.volumeMounts = [];
    assert.equal(imageVolumesDropped(dropped), true);
    assert.equal(imageVolumesDropped({ ...render(), spec: { ...render().spec!, template: { spec: { containers: [] } } } }), false, "not for init containers");
  });
});
