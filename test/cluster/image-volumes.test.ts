// The image-volume pull strategy on the local cluster (its apiserver runs with the ImageVolume
// gate on, as Kubernetes ≥ 1.35 does by default): prepull pods mount each image as a volume into
// the helper's pause container, pass Pod Security "restricted", and the hold is released.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { prepullDaemonSetName } from "../../src/prepull/daemonset.js";
import { decodeStatus } from "../../src/prepull/progress.js";
import type { RunningServe } from "../../src/serve.js";
import { createNamespace, startTestServe, testKubeConfig, waitForPrepullWebhook, waitUntil } from "../support/cluster.js";

const kc = testKubeConfig();
const apps = kc.makeApiClient(k8s.AppsV1Api);
const core = kc.makeApiClient(k8s.CoreV1Api);

describe("image-volume pull strategy", () => {
  let running: RunningServe | undefined;
  let ns: { name: string; remove: () => Promise<void> };

  before(async () => {
    ns = await createNamespace(kc, "imagevol", { "kube-prepull.io/enabled": "true", "pod-security.kubernetes.io/enforce": "restricted" });
    running = await startTestServe({ name: `kube-prepull-imagevol-${process.pid}`, pullDelay: "1s", pod: { strategy: "image-volumes" } });
    await waitForPrepullWebhook(apps, ns.name);
  });
  after(async () => {
    await running?.stop();
    await ns.remove();
  });

  it("pulls through image volumes in a restricted namespace and releases the hold", async () => {
    const images = ["example.com/team/vol:1", "example.com/team/vol-sidecar:1"];
    await apps.createNamespacedDeployment({
      namespace: ns.name,
      body: {
        metadata: { name: "vol", annotations: { "kube-prepull.io/hold": "true" } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: "vol" } },
          template: {
            metadata: { labels: { app: "vol" } },
            spec: {
              securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } },
              containers: images.map((image, i) => ({ name: `c${i}`, image, securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } } })),
            },
          },
        },
      },
    });
    const dsName = prepullDaemonSetName("vol", images);
    const ds = await waitUntil(() => apps.readNamespacedDaemonSet({ name: dsName, namespace: ns.name }).catch(() => undefined), { what: `daemonset/${dsName}` });
    assert.deepEqual(ds.spec?.template.spec?.volumes?.map((v) => v.image?.reference), images, "the apiserver kept the image volumes");
    // Pod Security "restricted" admits the pods, which carry the image volumes and nothing else.
    const pods = await waitUntil(async () => {
      const list = await core.listNamespacedPod({ namespace: ns.name, labelSelector: `kube-prepull.io/prepull=${dsName}` });
      return list.items.length > 0 ? list.items : undefined;
    }, { what: "prepull pods" });
    assert.ok(pods.every((p) => p.spec?.volumes?.filter((v) => v.image).length === 2 && !p.spec.initContainers?.length));
    const released = await waitUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: "vol", namespace: ns.name });
      return d.spec?.paused !== true ? d : undefined;
    }, { what: "the hold to be released", timeoutMs: 60_000 });
    const status = decodeStatus(released.metadata?.annotations?.["kube-prepull.io/status"]);
    assert.equal(status?.phase, "Succeeded", status?.message);
    assert.ok((status?.nodes.pulled ?? 0) > 0);
  });
});
