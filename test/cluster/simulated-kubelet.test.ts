// The simulated kubelet (kwok stages in tools/controlplane/kwok/stages.yaml): pull delays and pull
// failures set by pod annotations or image names, as the prepull tests need them.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { createNamespace, testKubeConfig, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const PAUSE = "registry.k8s.io/pause:3.10";

function waitingReasons(pod: k8s.V1Pod): string[] {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]
    .map((s) => s.state?.waiting?.reason)
    .filter((r): r is string => r !== undefined);
}

function isReady(pod: k8s.V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

describe("simulated kubelet", () => {
  let ns: { name: string; remove: () => Promise<void> };
  before(async () => {
    ns = await createNamespace(kc, "kubelet-sim");
  });
  after(async () => ns.remove());

  it("holds a pod in its init containers for the pull delay, then runs it to Ready", async () => {
    const created = await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: "slow-pull", annotations: { "sim.kube-prepull.io/pull-delay": "3s" } },
        spec: {
          nodeName: (await core.listNode({ labelSelector: "type=kwok" })).items[0]!.metadata!.name!,
          initContainers: [{ name: "pull", image: "example.com/app:v1" }],
          containers: [{ name: "main", image: PAUSE }],
        },
      },
    });
    const createdAt = Date.now();
    // While pulling, the init container waits with PodInitializing.
    const pulling = await waitUntil(async () => {
      const pod = await core.readNamespacedPod({ name: "slow-pull", namespace: ns.name });
      return pod.status?.podIP ? pod : undefined;
    }, { what: "the pod to be started by the simulated kubelet" });
    assert.deepEqual(waitingReasons(pulling).slice(0, 1), ["PodInitializing"]);
    assert.equal(isReady(pulling), false);

    const ready = await waitUntil(async () => {
      const pod = await core.readNamespacedPod({ name: "slow-pull", namespace: ns.name });
      return isReady(pod) ? pod : undefined;
    }, { what: "the pod to become Ready" });
    assert.ok(Date.now() - createdAt >= 2500, "Ready no sooner than the 3 s pull delay");
    assert.equal(ready.status?.initContainerStatuses?.[0]?.state?.terminated?.reason, "Completed");
    assert.equal(created.metadata?.name, "slow-pull");
  });

  it("fails pulls with ErrImagePull then ImagePullBackOff on the nodes a regex selects", async () => {
    const nodes = (await core.listNode({ labelSelector: "type=kwok" })).items.map((n) => n.metadata!.name!).sort();
    const failing = nodes[0]!;
    await apps.createNamespacedDaemonSet({
      namespace: ns.name,
      body: {
        metadata: { name: "pull-fails" },
        spec: {
          selector: { matchLabels: { app: "pull-fails" } },
          template: {
            metadata: {
              labels: { app: "pull-fails" },
              annotations: {
                "sim.kube-prepull.io/pull-error": "ErrImagePull",
                "sim.kube-prepull.io/pull-error-nodes": `^${failing}$`,
              },
            },
            spec: {
              initContainers: [{ name: "pull", image: "example.com/app:v2" }],
              containers: [{ name: "main", image: PAUSE }],
            },
          },
        },
      },
    });
    const pods = await waitUntil(async () => {
      const list = await core.listNamespacedPod({ namespace: ns.name, labelSelector: "app=pull-fails" });
      const settled = list.items.filter((p) => isReady(p) || waitingReasons(p).includes("ImagePullBackOff"));
      return list.items.length === nodes.length && settled.length === nodes.length ? list.items : undefined;
    }, { what: "every pull-fails pod to be Ready or in ImagePullBackOff" });
    for (const pod of pods) {
      if (pod.spec?.nodeName === failing) {
        assert.equal(isReady(pod), false);
        assert.equal(pod.status?.phase, "Pending");
        const status = pod.status?.initContainerStatuses?.[0];
        assert.equal(status?.state?.waiting?.reason, "ImagePullBackOff");
        assert.match(status?.state?.waiting?.message ?? "", /example\.com\/app:v2/);
      } else {
        assert.equal(isReady(pod), true, `pod on ${pod.spec?.nodeName} is Ready`);
      }
    }
  });

  it("fails pulls from registries under the .invalid TLD on every node", async () => {
    const node = (await core.listNode({ labelSelector: "type=kwok" })).items[0]!.metadata!.name!;
    await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: "missing-image" },
        spec: { nodeName: node, containers: [{ name: "main", image: "registry.invalid/team/app:1.0" }] },
      },
    });
    const pod = await waitUntil(async () => {
      const p = await core.readNamespacedPod({ name: "missing-image", namespace: ns.name });
      const reasons = waitingReasons(p);
      return reasons.includes("ErrImagePull") || reasons.includes("ImagePullBackOff") ? p : undefined;
    }, { what: "the pull of registry.invalid/team/app:1.0 to fail" });
    assert.equal(isReady(pod), false);
    assert.equal(pod.status?.phase, "Pending");
  });
});
