// Simulated nodes: plain Node objects that kwok (started with --manage-all-nodes) keeps Ready and
// whose pods it moves through their lifecycle (tools/controlplane/kwok/stages.yaml).
import type * as k8s from "@kubernetes/client-node";
import { pause, throwIfInterrupted } from "./wait.js";

export interface NodeOptions {
  /** Name prefix; nodes are named <prefix>-0001, <prefix>-0002, … */
  prefix?: string;
  /** Index of the first node (to add nodes next to existing ones). */
  firstIndex?: number;
  labels?: Record<string, string>;
  taints?: k8s.V1Taint[];
  /** Parallel create requests. */
  concurrency?: number;
  /** Stops creating (Interrupted) when it fires. */
  signal?: AbortSignal;
}

export function nodeName(prefix: string, index: number): string {
  return `${prefix}-${String(index).padStart(4, "0")}`;
}

export function simulatedNode(name: string, options: NodeOptions = {}): k8s.V1Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        type: "kwok",
        ...options.labels,
      },
    },
    spec: { taints: options.taints },
    status: {
      allocatable: { cpu: "32", memory: "256Gi", pods: "110" },
      capacity: { cpu: "32", memory: "256Gi", pods: "110" },
      nodeInfo: {
        architecture: "amd64",
        operatingSystem: "linux",
        bootID: "",
        containerRuntimeVersion: "",
        kernelVersion: "",
        kubeProxyVersion: "",
        kubeletVersion: "",
        machineID: "",
        osImage: "",
        systemUUID: "",
      },
    },
  };
}

/** Creates `count` nodes; an existing node of the same name is kept (409 is not an error). */
export async function createNodes(core: k8s.CoreV1Api, count: number, options: NodeOptions = {}): Promise<string[]> {
  const prefix = options.prefix ?? "kwok-node";
  const first = options.firstIndex ?? 1;
  const names = Array.from({ length: count }, (_, i) => nodeName(prefix, first + i));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      throwIfInterrupted(options.signal);
      const name = names[next++]!;
      try {
        await core.createNode({ body: simulatedNode(name, options) });
      } catch (error) {
        if ((error as { code?: number }).code !== 409) throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 16, count) }, worker));
  return names;
}

/** Ready and schedulable: kwok set Ready=True and the node lifecycle controller lifted the not-ready taint. */
export function isNodeSchedulable(node: k8s.V1Node): boolean {
  const ready = node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  const notReadyTaint = node.spec?.taints?.some((t) => t.key === "node.kubernetes.io/not-ready") ?? false;
  return ready && !notReadyTaint && !node.spec?.unschedulable;
}

export async function waitForNodesReady(
  core: k8s.CoreV1Api,
  count: number,
  options: { timeoutMs: number; progress: (line: string) => void; stillRunning: () => void; signal?: AbortSignal },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastReported = -1;
  for (;;) {
    throwIfInterrupted(options.signal);
    options.stillRunning();
    const nodes = await core.listNode({ labelSelector: "type=kwok" });
    const ready = nodes.items.filter(isNodeSchedulable).length;
    if (ready >= count) return;
    if (ready !== lastReported) {
      options.progress(`nodes ready: ${ready}/${count}`);
      lastReported = ready;
    }
    if (Date.now() > deadline) throw new Error(`timed out: ${ready}/${count} nodes Ready and schedulable`);
    await pause(500, options.signal);
  }
}
