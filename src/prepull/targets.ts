// Which nodes a prepull targets, and in which waves (spec §3 `nodes`, `max-parallel`; §4 "Scale",
// "Completion"). Pure: nodes, pods and the pod spec in, node names out.
//
// kube-prepull chooses the nodes itself instead of letting the DaemonSet controller run a pod on
// every node it could: the DaemonSet controller tolerates cordoned, NotReady and disk-pressured
// nodes on its own (https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/#taints-and-tolerations),
// knows nothing of images already present, and has no notion of waves. The chosen nodes go into
// the DaemonSet's required node affinity, ANDed with the workload's own placement, so the DaemonSet
// controller still has the last word on where a pod may run. They are named by their
// `kubernetes.io/hostname` label, which every kubelet sets: a `metadata.name` field selector
// accepts a single value only, and one term per node would make the DaemonSet controller test
// every node against every term.
import type * as k8s from "@kubernetes/client-node";
import type { MaxParallel } from "./annotations.js";
import { imageKey } from "./image-reference.js";

/** The parts of a pod spec that decide where it may run. */
export type Placement = Pick<k8s.V1PodSpec, "nodeSelector" | "affinity" | "tolerations">;

// https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#operators
function matchesRequirement(value: string | undefined, requirement: k8s.V1NodeSelectorRequirement): boolean {
  const values = requirement.values ?? [];
  switch (requirement.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
    case "Lt": {
      const [bound] = values;
      if (value === undefined || bound === undefined || !/^-?\d+$/.test(value) || !/^-?\d+$/.test(bound)) return false;
      return requirement.operator === "Gt" ? BigInt(value) > BigInt(bound) : BigInt(value) < BigInt(bound);
    }
    default:
      return false;
  }
}

/** A node selector term: every expression on labels and every field (only metadata.name exists) must match; an empty term matches nothing. */
export function matchesSelectorTerm(node: k8s.V1Node, term: k8s.V1NodeSelectorTerm): boolean {
  const expressions = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (expressions.length === 0 && fields.length === 0) return false;
  const labels = node.metadata?.labels ?? {};
  return (
    expressions.every((r) => matchesRequirement(labels[r.key], r)) &&
    fields.every((r) => r.key === "metadata.name" && matchesRequirement(node.metadata?.name, r))
  );
}

// https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/#concepts
function tolerates(toleration: k8s.V1Toleration, taint: k8s.V1Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.operator === "Exists") return !toleration.key || toleration.key === taint.key;
  return toleration.key === taint.key && (toleration.value ?? "") === (taint.value ?? "");
}

/** Whether a pod with this spec may be placed on the node: nodeSelector, required node affinity, NoSchedule/NoExecute taints. */
export function podFitsNode(spec: Placement, node: k8s.V1Node): boolean {
  const labels = node.metadata?.labels ?? {};
  if (Object.entries(spec.nodeSelector ?? {}).some(([key, value]) => labels[key] !== value)) return false;
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required && !required.nodeSelectorTerms.some((term) => matchesSelectorTerm(node, term))) return false;
  const tolerations = spec.tolerations ?? [];
  return (node.spec?.taints ?? [])
    .filter((taint) => taint.effect === "NoSchedule" || taint.effect === "NoExecute")
    .every((taint) => tolerations.some((t) => tolerates(t, taint)));
}

/** Ready and not cordoned: the nodes worth pulling on (spec §4: NotReady and cordoned nodes do not block). */
export function nodeIsUsable(node: k8s.V1Node): boolean {
  const ready = node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  return ready && node.spec?.unschedulable !== true;
}

export interface ImageToPull {
  image: string;
  pullPolicy?: string;
}

/**
 * Whether the node already reports the image (node.status.images, at most 50 per node by default).
 * Only obvious hits count: the same canonical name and tag, or the same digest. An image the
 * workload pulls with `Always` is never considered present, except by digest: its tag may have moved.
 */
export function nodeHasImage(node: k8s.V1Node, image: ImageToPull): boolean {
  const key = imageKey(image.image);
  if (image.pullPolicy === "Always" && !key.includes("@")) return false;
  return (node.status?.images ?? []).some((entry) => (entry.names ?? []).some((name) => imageKey(name) === key));
}

export const HOSTNAME_LABEL = "kubernetes.io/hostname";
// Set by every kubelet: https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-os
export const OS_LABEL = "kubernetes.io/os";
export const ARCH_LABEL = "kubernetes.io/arch";

/**
 * Where prepull pods can run (spec §3 `nodes`): Linux, on the architectures the static helper is
 * built for (helper/build.sh, the Dockerfile's helper target). Elsewhere the helper (and a Linux
 * image's userland) cannot start: a Windows node never runs the pod, another architecture fails
 * it with "no match for platform", which would fail the whole prepull.
 */
export const HELPER_PLATFORMS = { os: "linux", architectures: ["amd64", "arm64"] } as const;

/** Whether prepull pods can run on the node's OS and architecture (HELPER_PLATFORMS). */
export function nodeRunsHelper(node: k8s.V1Node): boolean {
  const labels = node.metadata?.labels ?? {};
  const arch = labels[ARCH_LABEL];
  return labels[OS_LABEL] === HELPER_PLATFORMS.os && arch !== undefined && (HELPER_PLATFORMS.architectures as readonly string[]).includes(arch);
}

/**
 * The affinity with HELPER_PLATFORMS ANDed into every required node selector term (one term when
 * there is none), so the DaemonSet controller never places a prepull pod on another platform, with
 * or without a node list.
 */
export function onHelperPlatforms(affinity: k8s.V1Affinity | undefined): k8s.V1Affinity {
  const platform: k8s.V1NodeSelectorRequirement[] = [
    { key: OS_LABEL, operator: "In", values: [HELPER_PLATFORMS.os] },
    { key: ARCH_LABEL, operator: "In", values: [...HELPER_PLATFORMS.architectures] },
  ];
  return withRequirements(affinity, platform);
}

export interface NodePlan {
  /** Usable nodes the pods can run on that still miss at least one image, by hostname label, sorted. */
  targets: string[];
  /** Nodes the pods can run on that already report every image, by hostname label. */
  skipped: string[];
  /** Node name → hostname label, for every node that has one. */
  hostnames: Map<string, string>;
  /** Nodes the pods can run on that are not usable now (NotReady, cordoned). */
  unusable: number;
  /** Nodes the placement admits whose OS or architecture prepull pods cannot run on (HELPER_PLATFORMS): skipped. */
  unsupported: number;
}

export function planNodes(placement: Placement, nodes: k8s.V1Node[], images: ImageToPull[]): NodePlan {
  const targets: string[] = [];
  const skipped: string[] = [];
  const hostnames = new Map<string, string>();
  let unusable = 0;
  let unsupported = 0;
  for (const node of nodes) {
    const name = node.metadata?.name;
    const hostname = node.metadata?.labels?.[HOSTNAME_LABEL];
    if (!name || !hostname) continue;
    hostnames.set(name, hostname);
    if (!podFitsNode(placement, node)) continue;
    if (!nodeRunsHelper(node)) {
      unsupported++;
      continue;
    }
    if (!nodeIsUsable(node)) {
      unusable++;
      continue;
    }
    if (images.length > 0 && images.every((image) => nodeHasImage(node, image))) skipped.push(hostname);
    else targets.push(hostname);
  }
  return { targets: targets.sort(), skipped: skipped.sort(), hostnames, unusable, unsupported };
}

const nodeCount = (n: number): string => `${n} node${n === 1 ? "" : "s"}`;

/** "; 2 nodes skipped: not Linux on amd64 or arm64", or "" when every node's platform is supported. */
export function unsupportedNote(unsupported: number): string {
  if (unsupported === 0) return "";
  return `; ${nodeCount(unsupported)} skipped: not Linux on ${HELPER_PLATFORMS.architectures.join(" or ")}`;
}

/** Why a plan has no targets: "already present on all 3 nodes", or no node can run the pods (and how many were of another platform). */
export function nothingToPullMessage(plan: NodePlan): string {
  const skipped = plan.skipped.length;
  const reason = skipped > 0 ? `already present on all ${nodeCount(skipped)}` : "no Ready, schedulable node can run these pods";
  return reason + unsupportedNote(plan.unsupported);
}

/** The number of nodes allowed to pull at once: a count, or a percentage of the targets (at least 1). */
export function parallelLimit(maxParallel: MaxParallel, targets: number): number {
  if (maxParallel.kind === "count") return maxParallel.value;
  return Math.max(1, Math.ceil((targets * maxParallel.value) / 100));
}

/**
 * The node list for the DaemonSet: the nodes already listed plus the next waiting targets, as many
 * as there are free slots. To keep API writes few, the list grows only once a quarter of the slots
 * are free (or nothing is in flight). Undefined when the list stays as it is.
 */
export function nextWave(input: { listed: string[]; waiting: string[]; inFlight: number; limit: number }): string[] | undefined {
  const free = input.limit - input.inFlight;
  if (input.waiting.length === 0 || free <= 0) return undefined;
  const batch = Math.max(1, Math.ceil(input.limit / 4));
  if (free < Math.min(batch, input.waiting.length) && input.inFlight > 0) return undefined;
  return [...input.listed, ...input.waiting.slice(0, free)];
}

/**
 * Restricts a pod spec's placement to the nodes with these hostname labels: each required node
 * selector term gets a `kubernetes.io/hostname In [...]` requirement (terms are ORed, a term's
 * requirements ANDed).
 */
export function restrictToNodes(affinity: k8s.V1Affinity | undefined, hostnames: string[]): k8s.V1Affinity {
  const byName: k8s.V1NodeSelectorRequirement = { key: HOSTNAME_LABEL, operator: "In", values: [...hostnames] };
  return withRequirements(affinity, [byName]);
}

/** The affinity with these requirements ANDed into each required node selector term (terms are ORed). */
function withRequirements(affinity: k8s.V1Affinity | undefined, requirements: k8s.V1NodeSelectorRequirement[]): k8s.V1Affinity {
  const terms = affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [{}];
  return {
    ...affinity,
    nodeAffinity: {
      ...affinity?.nodeAffinity,
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: terms.map((term) => ({ ...term, matchExpressions: [...(term.matchExpressions ?? []), ...requirements] })),
      },
    },
  };
}

/**
 * A prepull pod's affinity: the placement's required node affinity, on HELPER_PLATFORMS, and
 * restricted to `hostnames` (a wave) when given. The DaemonSet and every wave's patch use it.
 */
export function prepullAffinity(placement: Placement, hostnames: string[] | undefined): k8s.V1Affinity {
  const affinity = onHelperPlatforms(placement.affinity);
  return hostnames ? restrictToNodes(affinity, hostnames) : affinity;
}

/** On a prepull DaemonSet without a node list: it runs on every node its placement admits. */
export const EVERY_TARGET_ANNOTATION = "kube-prepull.io/every-target";

/**
 * The first wave's node list, or undefined when none is needed: one wave covers every target and
 * the placement admits no other node (none already has the images, none is NotReady or cordoned),
 * so the placement alone selects exactly the targets. Without the list the DaemonSet stays small
 * (a list of 1000 hostnames is ~16 KB of pod template) and the DaemonSet controller need not match
 * every node against it; measured end to end at 1000 nodes it made no visible difference
 * (docs/benchmarks.md), so this is about size, not speed.
 */
export function firstNodeList(plan: NodePlan, limit: number): string[] | undefined {
  // Nodes of another platform need no list: the DaemonSet's affinity leaves them out (onHelperPlatforms).
  if (limit >= plan.targets.length && plan.skipped.length === 0 && plan.unusable === 0) return undefined;
  return plan.targets.slice(0, limit);
}

export function listsEveryTarget(daemonSet: k8s.V1DaemonSet): boolean {
  return daemonSet.metadata?.annotations?.[EVERY_TARGET_ANNOTATION] === "true";
}

/** The hostnames a prepull DaemonSet is restricted to (what restrictToNodes wrote last). */
export function listedNodes(daemonSet: k8s.V1DaemonSet): string[] {
  const terms = daemonSet.spec?.template?.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  const requirement = terms?.[0]?.matchExpressions?.findLast((r) => r.key === HOSTNAME_LABEL && r.operator === "In");
  return requirement?.values ?? [];
}
