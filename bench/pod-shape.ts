// What a prepull pod's shape costs the simulated cluster (docs/benchmarks.md, "Pod shape"): the
// same run-once DaemonSet in several shapes, applied by the admin with no kube-prepull running,
// each timed from create until every pod is Ready, in rounds whose order rotates, after one
// uncounted warm-up. Prints a Markdown table.
//   npm run build && node dist/bench/pod-shape.js [--nodes 1000] [--rounds 2] [--pull-delay 5s]
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { renderDaemonSet } from "../src/prepull/daemonset.js";
import { pollUntil } from "../src/local-cluster/wait.js";
import { startBenchCluster } from "./support/cluster.js";
import { installInterruptHandlers } from "./support/interruption.js";
import { log, machineLine, seconds, table } from "./support/machine.js";
import { flag } from "./support/flags.js";

const nodes = Number(flag("nodes", "1000"));
const rounds = Number(flag("rounds", "2"));
const pullDelay = flag("pull-delay", "5s");
const NAMESPACE = "default";
const IMAGES = ["registry.example.com/shop/app:v2", "registry.example.com/shop/sidecar:v2"];
const RESOURCES = { requests: { cpu: "10m", memory: "32Mi" }, limits: { cpu: "250m", memory: "32Mi" } };

/** kube-prepull's pod template for IMAGES on every node, as the controller renders it. */
function kubePrepullTemplate(): k8s.V1PodTemplateSpec {
  return renderDaemonSet({
    subject: { name: "shape", namespace: NAMESPACE, labels: {}, annotations: {}, images: IMAGES.map((image) => ({ image })), placement: {} },
    nodeNames: undefined,
    config: { helperImage: "ghcr.io/kube-prepull/helper:v0.1.0", extraLabels: {}, extraAnnotations: { "sim.kube-prepull.io/pull-delay": pullDelay } },
  }).spec!.template;
}

/** bench/scripted-prepull.sh's pod: an init container per image, a pause container, no security context. */
function scriptTemplate(): k8s.V1PodTemplateSpec {
  return {
    metadata: { annotations: { "sim.kube-prepull.io/pull-delay": pullDelay } },
    spec: {
      terminationGracePeriodSeconds: 0,
      initContainers: IMAGES.map((image, i) => ({ name: `pull-${i}`, image, command: ["sh", "-c", "true"], resources: RESOURCES })),
      containers: [{ name: "pause", image: "registry.k8s.io/pause:3.10", resources: RESOURCES }],
    },
  };
}

type Shape = { name: string; template: () => k8s.V1PodTemplateSpec };
const withSpec = (edit: (spec: k8s.V1PodSpec) => void) => (): k8s.V1PodTemplateSpec => {
  const template = kubePrepullTemplate();
  edit(template.spec!);
  return template;
};
const SHAPES: Shape[] = [
  { name: "the script's (bench/scripted-prepull.sh)", template: scriptTemplate },
  { name: "kube-prepull's", template: kubePrepullTemplate },
  { name: "kube-prepull's without the platform affinity", template: withSpec((spec) => void delete spec.affinity) },
  { name: "kube-prepull's without the install-helper init container", template: withSpec((spec) => void spec.initContainers!.shift()) },
  {
    name: "kube-prepull's, container security contexts left to the pod's",
    template: withSpec((spec) => {
      for (const c of [...spec.initContainers!, ...spec.containers]) c.securityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, readOnlyRootFilesystem: true };
    }),
  },
];

/** Applies one DaemonSet of `shape`, waits until all its pods are Ready, deletes it and waits until they are gone. */
async function timeShape(apps: k8s.AppsV1Api, core: k8s.CoreV1Api, shape: Shape, run: string): Promise<{ readyMs: number; goneMs: number }> {
  const labels = { "bench.kube-prepull.io/shape": run };
  const template = shape.template();
  template.metadata = { ...template.metadata, labels };
  const t0 = Date.now();
  await apps.createNamespacedDaemonSet({ namespace: NAMESPACE, body: { metadata: { name: run }, spec: { selector: { matchLabels: labels }, template } } });
  await pollUntil(async () => ((await apps.readNamespacedDaemonSet({ name: run, namespace: NAMESPACE })).status?.numberReady ?? 0) >= nodes,
    { what: `${run} to be all Ready`, timeoutMs: 900_000, intervalMs: 100 });
  const readyMs = Date.now() - t0;
  const t1 = Date.now();
  await apps.deleteNamespacedDaemonSet({ name: run, namespace: NAMESPACE });
  await pollUntil(async () => (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `bench.kube-prepull.io/shape=${run}`, limit: 1 })).items.length === 0,
    { what: `${run}'s pods to go`, timeoutMs: 900_000, intervalMs: 500 });
  log(`${run} (${shape.name}): all Ready after ${readyMs} ms, gone ${Date.now() - t1} ms after the delete`);
  await sleep(2000);
  return { readyMs, goneMs: Date.now() - t1 };
}

installInterruptHandlers();
const { cluster } = await startBenchCluster({ name: "pod-shape", nodes });
const results = new Map<string, number[]>(SHAPES.map((s) => [s.name, []]));
try {
  const apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const warmup = await timeShape(apps, core, SHAPES[0]!, "warmup");
  log(`warm-up (not counted): ${warmup.readyMs} ms`);
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < SHAPES.length; i++) {
      const shape = SHAPES[(i + round) % SHAPES.length]!; // each round starts one shape later
      results.get(shape.name)!.push((await timeShape(apps, core, shape, `shape-${round}-${i}`)).readyMs);
    }
  }
} finally {
  await cluster.stop();
}
const script = results.get(SHAPES[0]!.name)!;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
process.stdout.write([
  `\`node dist/bench/pod-shape.js --nodes ${nodes} --rounds ${rounds} --pull-delay ${pullDelay}\``,
  machineLine(), "",
  table(["pod shape", `all ${nodes} pods Ready, each round`, "÷ the script's (medians)"],
    SHAPES.map((s) => [s.name, results.get(s.name)!.map(seconds).join(", "), `${(median(results.get(s.name)!) / median(script)).toFixed(2)}×`])),
].join("\n") + "\n");
