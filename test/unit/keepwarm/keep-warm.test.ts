import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import {
  REFRESHED_AT_ANNOTATION, SPEC_HASH_ANNOTATION, STATUS_ANNOTATION, keepWarmDaemonSetName, keepWarmProgress, nextRefresh, parseKeepWarmList,
  reconcileKeepWarm, renderKeepWarmDaemonSet, type KeepWarmList,
} from "../../../src/keepwarm/keep-warm.js";
import type { PrepullPodConfig } from "../../../src/prepull/daemonset.js";

const config: PrepullPodConfig = { helperImage: "ghcr.io/kube-prepull/helper:v0.1.0", extraLabels: {}, extraAnnotations: {} };
const t0 = new Date("2026-11-22T10:00:00Z");
const at = (seconds: number): Date => new Date(t0.getTime() + seconds * 1000);

const configMap = (data: Record<string, string>, annotations: Record<string, string> = {}): k8s.V1ConfigMap => ({
  metadata: { name: "base-images", namespace: "kube-prepull", uid: "cm-uid", labels: { "kube-prepull.io/keep-warm": "true" }, annotations },
  data,
});

function listOf(data: Record<string, string>): KeepWarmList {
  const parsed = parseKeepWarmList(configMap(data));
  assert.ok(parsed.ok, JSON.stringify(parsed));
  return parsed.list;
}

/** The DaemonSet as the DaemonSet controller would report it: every node's pod of this generation. */
function reported(ds: k8s.V1DaemonSet, desired: number, ready: number): k8s.V1DaemonSet {
  return {
    ...ds,
    metadata: { ...ds.metadata, generation: 1 },
    status: { observedGeneration: 1, desiredNumberScheduled: desired, updatedNumberScheduled: desired, numberReady: ready, currentNumberScheduled: desired, numberMisscheduled: 0 },
  };
}

describe("keep-warm lists", () => {
  it("reads images (one per line, comments, duplicates by canonical name), node selector, taints, refresh and pull secrets", () => {
    const list = listOf({
      images: "nginx:1.27\n# the runtime\nregistry.example.com/base/runtime@sha256:" + "a".repeat(64) + "\n docker.io/library/nginx:1.27 \n",
      nodeSelector: "pool=general, kubernetes.io/os=linux",
      tolerateAllTaints: "true",
      refreshInterval: "6h",
      pullSecrets: "regcred",
    });
    assert.deepEqual(list.images, ["docker.io/library/nginx:1.27", "registry.example.com/base/runtime@sha256:" + "a".repeat(64)]);
    assert.deepEqual(list.nodeSelector, { pool: "general", "kubernetes.io/os": "linux" });
    assert.equal(list.tolerateAllTaints, true);
    assert.equal(list.refreshSeconds, 6 * 3600);
    assert.deepEqual(list.pullSecrets, ["regcred"]);
    assert.equal(listOf({ images: "nginx" }).refreshSeconds, 24 * 3600, "refreshed daily by default");
  });

  it("names every problem with its key and what is allowed", () => {
    const parsed = parseKeepWarmList(configMap({ images: "nginx@sha256:short\n", nodeSelector: "novalue", tolerateAllTaints: "yes", refreshInterval: "10s", colour: "blue" }));
    assert.equal(parsed.ok, false);
    const problems = parsed.ok ? [] : parsed.problems.join("\n");
    for (const key of ["unknown key(s) colour", "images: \"nginx@sha256:short\"", "nodeSelector: \"novalue\"", "tolerateAllTaints: \"yes\"", "refreshInterval: \"10s\""]) {
      assert.match(problems as string, new RegExp(key.replace(/[()]/g, "\\$&")));
    }
    const empty = parseKeepWarmList(configMap({}));
    assert.deepEqual(empty, { ok: false, problems: ["images: list at least one image, one per line"] });
  });

  it("renders a long-lived DaemonSet on every matching node (no node list), owned by the ConfigMap, rolled 25% at a time", () => {
    const list = listOf({ images: "nginx:1.27\nregistry.example.com/x@sha256:" + "b".repeat(64), nodeSelector: "pool=general", tolerateAllTaints: "true" });
    const ds = renderKeepWarmDaemonSet(list, config, t0);
    assert.equal(ds.metadata?.name, "keep-warm-base-images");
    assert.equal(ds.metadata?.ownerReferences?.[0]?.kind, "ConfigMap");
    assert.equal(ds.metadata?.labels?.["kube-prepull.io/keep-warm"], "base-images");
    assert.equal(ds.metadata?.labels?.["app.kubernetes.io/managed-by"], "kube-prepull");
    assert.deepEqual(ds.spec?.updateStrategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%" } });
    const pod = ds.spec.template.spec!;
    assert.deepEqual(pod.nodeSelector, { pool: "general" });
    assert.deepEqual(pod.tolerations, [{ operator: "Exists" }]);
    // New nodes get a pod from the DaemonSet controller: no node list, only the helper's platforms.
    assert.deepEqual(pod.affinity?.nodeAffinity, {
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/os", operator: "In", values: ["linux"] }, { key: "kubernetes.io/arch", operator: "In", values: ["amd64", "arm64"] }] }] },
    });
    const pulls = pod.initContainers!.filter((c) => c.name.startsWith("pull-"));
    assert.deepEqual(pulls.map((c) => [c.image, c.imagePullPolicy]), [
      ["docker.io/library/nginx:1.27", "Always"],
      ["registry.example.com/x@sha256:" + "b".repeat(64), "IfNotPresent"],
    ]);
    assert.equal(ds.spec.template.metadata?.annotations?.[REFRESHED_AT_ANNOTATION], t0.toISOString());
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.ok(keepWarmDaemonSetName("x".repeat(80)).length <= 63);
  });

  it("creates the DaemonSet, reports Warming, then Warm once every node's pod is Ready", () => {
    const cm = configMap({ images: "nginx:1.27" });
    const first = reconcileKeepWarm({ configMap: cm, daemonSet: undefined, pods: [], now: t0 }, config);
    assert.deepEqual(first.map((a) => a.kind), ["apply-daemonset", "event", "write-status"]);
    const created = first[0]!.kind === "apply-daemonset" ? first[0]!.daemonSet : undefined;
    const warming = reconcileKeepWarm({ configMap: cm, daemonSet: reported(created!, 3, 2), pods: [], now: at(5) }, config);
    assert.deepEqual(warming, [{ kind: "write-status", status: { phase: "Warming", images: ["docker.io/library/nginx:1.27"], nodes: { desired: 3, warm: 2, failed: 0 }, refreshedAt: t0.toISOString() } }]);
    const warm = reconcileKeepWarm({ configMap: cm, daemonSet: reported(created!, 3, 3), pods: [], now: at(9) }, config);
    assert.deepEqual(warm.map((a) => a.kind === "event" ? a.reason : a.kind), ["KeepWarmReady", "write-status"]);
  });

  it("rolls the DaemonSet when the list changes, and when a refresh is due; not otherwise", () => {
    const cm = configMap({ images: "nginx:1.27", refreshInterval: "1h" });
    const ds = reported(renderKeepWarmDaemonSet(parseKeepWarmList(cm).ok ? (parseKeepWarmList(cm) as { list: KeepWarmList }).list : ({} as KeepWarmList), config, t0), 2, 2);
    assert.ok(!reconcileKeepWarm({ configMap: cm, daemonSet: ds, pods: [], now: at(3599) }, config).some((a) => a.kind === "apply-daemonset"));
    const changed = reconcileKeepWarm({ configMap: configMap({ images: "nginx:1.27\nredis:7", refreshInterval: "1h" }), daemonSet: ds, pods: [], now: at(60) }, config);
    const apply = changed.find((a) => a.kind === "apply-daemonset");
    assert.equal(apply?.kind === "apply-daemonset" && apply.reason, "list changed");
    assert.notEqual(apply?.kind === "apply-daemonset" && apply.daemonSet.metadata?.annotations?.[SPEC_HASH_ANNOTATION], ds.metadata?.annotations?.[SPEC_HASH_ANNOTATION]);
    assert.equal(apply?.kind === "apply-daemonset" && apply.daemonSet.spec?.template.metadata?.annotations?.[REFRESHED_AT_ANNOTATION], t0.toISOString(), "a list change keeps the refresh time");
    const refresh = reconcileKeepWarm({ configMap: cm, daemonSet: ds, pods: [], now: at(3600) }, config).find((a) => a.kind === "apply-daemonset");
    assert.equal(refresh?.kind === "apply-daemonset" && refresh.reason, "refresh");
    assert.equal(refresh?.kind === "apply-daemonset" && refresh.daemonSet.spec?.template.metadata?.annotations?.[REFRESHED_AT_ANNOTATION], at(3600).toISOString());
    assert.equal(nextRefresh((parseKeepWarmList(cm) as { list: KeepWarmList }).list, ds)?.toISOString(), at(3600).toISOString());
  });

  it("counts warm nodes from the DaemonSet's status once it settled, none before, and failures from the pending pods", () => {
    const list = listOf({ images: "nginx:1.27" });
    const ds = reported(renderKeepWarmDaemonSet(list, config, t0), 3, 2);
    assert.deepEqual(keepWarmProgress(ds, []), { desired: 3, warm: 2, failed: 0, settled: true, failures: [] });
    // Rolling: pods are not watched, so the warm count waits for the DaemonSet controller to settle (it counted Ready pods of the new generation).
    const rolling: k8s.V1DaemonSet = { ...ds, status: { ...ds.status!, updatedNumberScheduled: 1 } };
    assert.deepEqual(keepWarmProgress(rolling, []), { desired: 3, warm: 0, failed: 0, settled: false, failures: [] });
    const failing: k8s.V1Pod = {
      metadata: { name: "p", labels: { "pod-template-generation": "1" } },
      spec: { nodeName: "node-3", containers: [] },
      status: { phase: "Pending", initContainerStatuses: [{ name: "pull-0", image: "nginx:1.27", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "ErrImagePull", message: "not found" } } }] },
    };
    const oldGeneration: k8s.V1Pod = { ...failing, metadata: { name: "old", labels: { "pod-template-generation": "0" } } };
    assert.deepEqual(keepWarmProgress(ds, [failing, oldGeneration]).failures, [{ node: "node-3", reason: "ErrImagePull", message: "not found" }]);
  });

  it("reports pull failures per node as Degraded with one Warning, and an invalid list without touching the DaemonSet", () => {
    const cm = configMap({ images: "nginx:1.27" });
    const ds = reported(renderKeepWarmDaemonSet((parseKeepWarmList(cm) as { list: KeepWarmList }).list, config, t0), 2, 1);
    const failing: k8s.V1Pod = {
      metadata: { name: "p", labels: { "pod-template-generation": "1" } },
      spec: { nodeName: "node-2", containers: [] },
      status: { initContainerStatuses: [{ name: "pull-0", image: "nginx:1.27", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "ImagePullBackOff", message: "Back-off pulling image" } } }] },
    };
    const degraded = reconcileKeepWarm({ configMap: cm, daemonSet: ds, pods: [failing], now: at(30) }, config);
    assert.deepEqual(degraded.map((a) => a.kind === "event" ? `${a.type}/${a.reason}` : a.kind), ["Warning/KeepWarmPullFailed", "write-status"]);
    const status = degraded.at(-1)!.kind === "write-status" ? (degraded.at(-1) as { status: { phase: string; failures?: unknown[] } }).status : undefined;
    assert.equal(status?.phase, "Degraded");
    assert.deepEqual(status?.failures, [{ node: "node-2", reason: "ImagePullBackOff", message: "Back-off pulling image" }]);

    const invalid = configMap({ images: "nginx:1.27", refreshInterval: "soon" }, { [STATUS_ANNOTATION]: JSON.stringify({ phase: "Warm", images: ["docker.io/library/nginx:1.27"], nodes: { desired: 2, warm: 2, failed: 0 } }) });
    const actions = reconcileKeepWarm({ configMap: invalid, daemonSet: ds, pods: [], now: at(40) }, config);
    assert.deepEqual(actions.map((a) => a.kind === "event" ? a.reason : a.kind), ["InvalidKeepWarmList", "write-status"], "no DaemonSet change: nodes stay warm");
  });
});
