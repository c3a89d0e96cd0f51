// Keep-warm lists (issue 6): images that must stay on every matching node, including nodes that
// join later. A list is a ConfigMap in kube-prepull's own namespace labelled
// `kube-prepull.io/keep-warm: "true"`; the controller keeps one long-lived DaemonSet per list
// (no node restriction, so new nodes get a pod from the DaemonSet controller at once), rolls it
// when the list changes or a refresh is due, and reports on the ConfigMap. Pure.
//
// A ConfigMap rather than a CRD: nothing to install or upgrade, `kubectl apply`/kustomize's
// configMapGenerator work as they are, and RBAC stays within kube-prepull's namespace; the price is
// validation at reconcile time (an Event and an Invalid status) instead of by the apiserver.
import { createHash } from "node:crypto";
import type * as k8s from "@kubernetes/client-node";
import { PREFIX, parseDuration } from "../prepull/annotations.js";
import { renderDaemonSet, type PrepullPodConfig } from "../prepull/daemonset.js";
import { canonicalImage, parseImageReference } from "../prepull/image-reference.js";
import { pullFailureOf, summariseFailures, type NodeFailure } from "../prepull/progress.js";
import type { ImageToPull } from "../prepull/targets.js";

export const KEEP_WARM_LABEL = `${PREFIX}keep-warm`;
/** On the DaemonSet: the hash of what it was rendered from; when it differs, it is rolled. */
export const SPEC_HASH_ANNOTATION = `${PREFIX}keep-warm-spec`;
/** On the pod template: when the images were last re-checked against the registry. */
export const REFRESHED_AT_ANNOTATION = `${PREFIX}refreshed-at`;
export const STATUS_ANNOTATION = `${PREFIX}status`;

export const DEFAULT_REFRESH_SECONDS = 24 * 3600;
const MIN_REFRESH_SECONDS = 60;

/** The ConfigMap's data keys. */
export const KEEP_WARM_KEYS = {
  images: "images",
  nodeSelector: "nodeSelector",
  tolerateAllTaints: "tolerateAllTaints",
  refreshInterval: "refreshInterval",
  pullSecrets: "pullSecrets",
} as const;

export interface KeepWarmList {
  name: string;
  namespace: string;
  uid: string;
  /** Canonical references, sorted, without duplicates. */
  images: string[];
  nodeSelector: Record<string, string>;
  tolerateAllTaints: boolean;
  refreshSeconds: number;
  pullSecrets: string[];
}

export type ParsedList = { ok: true; list: KeepWarmList } | { ok: false; problems: string[] };

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const DNS_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

const words = (text: string | undefined): string[] =>
  (text ?? "").split(/[\s,]+/).map((w) => w.trim()).filter((w) => w !== "" && !w.startsWith("#"));

/** A key's value as read, with what is wrong with it (the value is unused when anything is). */
interface Field<T> {
  value: T;
  problems: string[];
}

const ALLOWED_KEYS: string[] = Object.values(KEEP_WARM_KEYS);

function unknownKeyProblems(data: Record<string, string>): string[] {
  const unknown = Object.keys(data).filter((k) => !ALLOWED_KEYS.includes(k));
  return unknown.length > 0 ? [`unknown key(s) ${unknown.join(", ")}; allowed: ${ALLOWED_KEYS.join(", ")}`] : [];
}

/** One image per line; `#` starts a comment. Canonical, sorted, without duplicates. */
function parseImages(text: string | undefined): Field<string[]> {
  const images = new Set<string>();
  const problems: string[] = [];
  for (const line of (text ?? "").split("\n")) {
    const reference = line.replace(/#.*/, "").trim();
    if (!reference) continue;
    try {
      images.add(canonicalImage(parseImageReference(reference)));
    } catch (error) {
      problems.push(`images: "${reference}" is not an image reference (${(error as Error).message})`);
    }
  }
  // Only when no line was rejected: then that rejection is the better message.
  if (images.size === 0 && problems.length === 0) problems.push("images: list at least one image, one per line");
  return { value: [...images].sort(), problems };
}

function parseNodeSelector(text: string | undefined): Field<Record<string, string>> {
  const nodeSelector: Record<string, string> = {};
  const problems: string[] = [];
  for (const pair of words(text)) {
    const eq = pair.indexOf("=");
    const [key, value] = eq < 0 ? [pair, ""] : [pair.slice(0, eq), pair.slice(eq + 1)];
    if (eq < 0 || !LABEL_KEY.test(key) || !LABEL_VALUE.test(value)) problems.push(`nodeSelector: "${pair}" is not key=value with a valid label key and value`);
    else nodeSelector[key] = value;
  }
  return { value: nodeSelector, problems };
}

function parseTolerateAllTaints(text: string | undefined): Field<boolean> {
  const tolerate = text ?? "false";
  const valid = tolerate === "true" || tolerate === "false";
  return { value: tolerate === "true", problems: valid ? [] : [`tolerateAllTaints: "${tolerate}" must be "true" or "false"`] };
}

/** Seconds between refreshes; 0 means never, anything else is at least a minute. */
function parseRefreshInterval(text: string | undefined): Field<number> {
  const seconds = text === undefined ? DEFAULT_REFRESH_SECONDS : parseDuration(text);
  if (seconds === undefined || (seconds !== 0 && seconds < MIN_REFRESH_SECONDS)) {
    return { value: 0, problems: [`refreshInterval: "${text}" must be a duration of at least 1m such as "6h", or "0s" for never`] };
  }
  return { value: seconds, problems: [] };
}

function parsePullSecrets(text: string | undefined): Field<string[]> {
  const secrets = words(text);
  return { value: secrets, problems: secrets.filter((s) => !DNS_NAME.test(s)).map((s) => `pullSecrets: "${s}" is not a Secret name`) };
}

/** Reads a list from its ConfigMap; every problem is named with the key and what is allowed. */
export function parseKeepWarmList(configMap: k8s.V1ConfigMap): ParsedList {
  const data = configMap.data ?? {};
  const images = parseImages(data[KEEP_WARM_KEYS.images]);
  const nodeSelector = parseNodeSelector(data[KEEP_WARM_KEYS.nodeSelector]);
  const tolerateAllTaints = parseTolerateAllTaints(data[KEEP_WARM_KEYS.tolerateAllTaints]);
  const refresh = parseRefreshInterval(data[KEEP_WARM_KEYS.refreshInterval]);
  const pullSecrets = parsePullSecrets(data[KEEP_WARM_KEYS.pullSecrets]);
  const problems = [
    ...unknownKeyProblems(data),
    ...[images, nodeSelector, tolerateAllTaints, refresh, pullSecrets].flatMap((field) => field.problems),
  ];
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    list: {
      name: configMap.metadata!.name!,
      namespace: configMap.metadata!.namespace!,
      uid: configMap.metadata!.uid!,
      images: images.value,
      nodeSelector: nodeSelector.value,
      tolerateAllTaints: tolerateAllTaints.value,
      refreshSeconds: refresh.value,
      pullSecrets: pullSecrets.value,
    },
  };
}

/** keep-warm-<list>, at most 63 characters. */
export function keepWarmDaemonSetName(listName: string): string {
  const name = `keep-warm-${listName}`;
  if (name.length <= 63) return name;
  return `${name.slice(0, 52)}-${createHash("sha256").update(listName).digest("hex").slice(0, 10)}`;
}

/**
 * Tags are pulled with `Always` so a refresh (a rolling restart) re-checks them against the
 * registry — only the manifest is fetched when the tag has not moved; digests never change, so
 * `IfNotPresent` pulls them once per node.
 */
export function keepWarmPulls(images: string[]): ImageToPull[] {
  return images.map((image) => ({ image, pullPolicy: image.includes("@") ? "IfNotPresent" : "Always" }));
}

function specHash(list: KeepWarmList, config: PrepullPodConfig): string {
  const { images, nodeSelector, tolerateAllTaints, pullSecrets } = list;
  return createHash("sha256")
    .update(JSON.stringify({ images, nodeSelector, tolerateAllTaints, pullSecrets, config }))
    .digest("hex")
    .slice(0, 16);
}

/** The list's DaemonSet: on every matching node, rolled 25 % of the nodes at a time. */
export function renderKeepWarmDaemonSet(list: KeepWarmList, config: PrepullPodConfig, refreshedAt: Date): k8s.V1DaemonSet {
  const hash = specHash(list, config);
  const rendered = renderDaemonSet({
    subject: {
      name: keepWarmDaemonSetName(list.name),
      namespace: list.namespace,
      labels: { [KEEP_WARM_LABEL]: list.name },
      annotations: { [SPEC_HASH_ANNOTATION]: hash },
      ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: list.name, uid: list.uid, controller: true, blockOwnerDeletion: false }],
      images: keepWarmPulls(list.images),
      placement: {
        ...(Object.keys(list.nodeSelector).length > 0 ? { nodeSelector: list.nodeSelector } : {}),
        ...(list.tolerateAllTaints ? { tolerations: [{ operator: "Exists" }] } : {}),
      },
      ...(list.pullSecrets.length > 0 ? { imagePullSecrets: list.pullSecrets.map((name) => ({ name })) } : {}),
    },
    nodeNames: undefined,
    config,
  });
  const template = rendered.spec!.template;
  return {
    ...rendered,
    spec: {
      ...rendered.spec!,
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%" } },
      template: { ...template, metadata: { ...template.metadata, annotations: { ...template.metadata?.annotations, [REFRESHED_AT_ANNOTATION]: refreshedAt.toISOString() } } },
    },
  };
}

export type KeepWarmPhase = "Warming" | "Warm" | "Degraded" | "Invalid";

export interface KeepWarmStatus {
  phase: KeepWarmPhase;
  images: string[];
  nodes: { desired: number; warm: number; failed: number };
  failures?: NodeFailure[];
  refreshedAt?: string;
  message?: string;
}

export type KeepWarmAction =
  | { kind: "apply-daemonset"; daemonSet: k8s.V1DaemonSet; reason: "created" | "list changed" | "refresh" }
  | { kind: "write-status"; status: KeepWarmStatus }
  | { kind: "event"; type: "Normal" | "Warning"; reason: string; message: string };

export interface KeepWarmObserved {
  configMap: k8s.V1ConfigMap;
  daemonSet: k8s.V1DaemonSet | undefined;
  pods: k8s.V1Pod[];
  now: Date;
}

function refreshedAtOf(daemonSet: k8s.V1DaemonSet | undefined): Date | undefined {
  const text = daemonSet?.spec?.template.metadata?.annotations?.[REFRESHED_AT_ANNOTATION];
  const date = text ? new Date(text) : undefined;
  return date && !Number.isNaN(date.getTime()) ? date : undefined;
}

/** When the list's next refresh is due (undefined: never). */
export function nextRefresh(list: KeepWarmList, daemonSet: k8s.V1DaemonSet | undefined): Date | undefined {
  const refreshedAt = refreshedAtOf(daemonSet);
  if (list.refreshSeconds === 0 || !refreshedAt) return undefined;
  return new Date(refreshedAt.getTime() + list.refreshSeconds * 1000);
}

export type KeepWarmProgress = KeepWarmStatus["nodes"] & { settled: boolean; failures: NodeFailure[] };

/** The DaemonSet controller has reported on the current generation and updated every node's pod. */
function isSettled(daemonSet: k8s.V1DaemonSet): boolean {
  const status = daemonSet.status;
  return (status?.observedGeneration ?? 0) >= (daemonSet.metadata?.generation ?? 1) &&
    (status?.updatedNumberScheduled ?? 0) >= (status?.desiredNumberScheduled ?? 0);
}

/** The pods of the DaemonSet's current generation (older ones are being replaced). */
function currentGenerationPods(daemonSet: k8s.V1DaemonSet, pods: k8s.V1Pod[]): k8s.V1Pod[] {
  const generation = String(daemonSet.metadata?.generation ?? "");
  return pods.filter((p) => p.metadata?.labels?.["pod-template-generation"] === generation);
}

function pullFailures(pods: k8s.V1Pod[]): NodeFailure[] {
  return pods.flatMap((p) => {
    const failure = pullFailureOf(p, p.spec?.nodeName ?? p.metadata?.name ?? "");
    return failure ? [failure] : [];
  });
}


/** Counts of the DaemonSet's current generation: nodes warm (pod Ready), failed (pull errors). */
export function keepWarmProgress(daemonSet: k8s.V1DaemonSet, pods: k8s.V1Pod[]): KeepWarmProgress {
  const desired = daemonSet.status?.desiredNumberScheduled ?? 0;
  const settled = isSettled(daemonSet);
  const current = currentGenerationPods(daemonSet, pods);
  const failures = pullFailures(current);
  // Pods are not watched (`pods` are the pending ones, listed on a stall): the DaemonSet's own
  // count, authoritative once it has settled on the current generation.
  const warm = settled ? Math.min(daemonSet.status?.numberReady ?? 0, desired) : 0;
  return { desired, warm, failed: failures.length, settled, failures };
}

type RolloutReason = Extract<KeepWarmAction, { kind: "apply-daemonset" }>["reason"];

/** An invalid list: report it, once per distinct message. */
function invalidListActions(problems: string[], previous: KeepWarmStatus | undefined): KeepWarmAction[] {
  const message = problems.join("; ");
  const actions: KeepWarmAction[] = [];
  // The DaemonSet of the last valid list stays: a typo must not let nodes go cold.
  if (previous?.phase !== "Invalid" || previous.message !== message) {
    actions.push({ kind: "event", type: "Warning", reason: "InvalidKeepWarmList", message });
  }
  actions.push({ kind: "write-status", status: { phase: "Invalid", images: previous?.images ?? [], nodes: previous?.nodes ?? { desired: 0, warm: 0, failed: 0 }, message } });
  return actions;
}

function isRefreshDue(list: KeepWarmList, refreshedAt: Date | undefined, now: Date): boolean {
  return refreshedAt !== undefined && list.refreshSeconds > 0 && now.getTime() >= refreshedAt.getTime() + list.refreshSeconds * 1000;
}

/** Why the DaemonSet must be (re)applied, or undefined when it is as it should be. */
function rolloutReason(current: k8s.V1DaemonSet | undefined, desired: k8s.V1DaemonSet, refreshDue: boolean): RolloutReason | undefined {
  if (!current) return "created";
  const changed = current.metadata?.annotations?.[SPEC_HASH_ANNOTATION] !== desired.metadata!.annotations![SPEC_HASH_ANNOTATION];
  if (changed) return "list changed";
  return refreshDue ? "refresh" : undefined;
}

/** Apply the DaemonSet and start over at Warming; a refresh is routine and gets no event. */
function rolloutActions(list: KeepWarmList, desired: k8s.V1DaemonSet, reason: RolloutReason, previous: KeepWarmStatus | undefined): KeepWarmAction[] {
  const actions: KeepWarmAction[] = [{ kind: "apply-daemonset", daemonSet: desired, reason }];
  if (reason !== "refresh") {
    actions.push({ kind: "event", type: "Normal", reason: "KeepWarmApplied", message: `keeping ${list.images.length} image(s) warm: ${list.images.join(", ")}` });
  }
  const refreshedAt = desired.spec!.template.metadata!.annotations![REFRESHED_AT_ANNOTATION]!;
  actions.push({ kind: "write-status", status: { phase: "Warming", images: list.images, nodes: { desired: previous?.nodes.desired ?? 0, warm: 0, failed: 0 }, refreshedAt } });
  return actions;
}

function phaseOf(progress: KeepWarmProgress): KeepWarmPhase {
  if (progress.failed > 0) return "Degraded";
  return progress.settled && progress.warm >= progress.desired ? "Warm" : "Warming";
}

/** The DaemonSet is as it should be: report its progress, with an event when it turns Warm or Degraded. */
function progressActions(list: KeepWarmList, progress: KeepWarmProgress, refreshedAt: Date | undefined, previous: KeepWarmStatus | undefined): KeepWarmAction[] {
  const phase = phaseOf(progress);
  const status: KeepWarmStatus = {
    phase,
    images: list.images,
    nodes: { desired: progress.desired, warm: progress.warm, failed: progress.failed },
    ...(progress.failures.length > 0 ? { failures: progress.failures.slice(0, 10), message: summariseFailures(progress.failures) } : {}),
    refreshedAt: refreshedAt!.toISOString(),
  };
  const actions: KeepWarmAction[] = [];
  if (phase === "Warm" && previous?.phase !== "Warm") {
    actions.push({ kind: "event", type: "Normal", reason: "KeepWarmReady", message: `${list.images.length} image(s) warm on ${progress.warm} node(s)` });
  }
  if (phase === "Degraded" && previous?.phase !== "Degraded") {
    actions.push({ kind: "event", type: "Warning", reason: "KeepWarmPullFailed", message: status.message! });
  }
  actions.push({ kind: "write-status", status });
  return actions;
}

/** What to do for one list now (the caller writes status only when it changed). */
export function reconcileKeepWarm(observed: KeepWarmObserved, config: PrepullPodConfig): KeepWarmAction[] {
  const { configMap, daemonSet, pods, now } = observed;
  const previous = decodeKeepWarmStatus(configMap.metadata?.annotations?.[STATUS_ANNOTATION]);
  const parsed = parseKeepWarmList(configMap);
  if (!parsed.ok) return invalidListActions(parsed.problems, previous);
  const { list } = parsed;
  const refreshedAt = refreshedAtOf(daemonSet);
  const refreshDue = isRefreshDue(list, refreshedAt, now);
  const desired = renderKeepWarmDaemonSet(list, config, refreshDue || !refreshedAt ? now : refreshedAt);
  const reason = rolloutReason(daemonSet, desired, refreshDue);
  if (reason) return rolloutActions(list, desired, reason, previous);
  // No reason to roll: the DaemonSet exists.
  return progressActions(list, keepWarmProgress(daemonSet!, pods), refreshedAt, previous);
}

export function decodeKeepWarmStatus(text: string | undefined): KeepWarmStatus | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<KeepWarmStatus>;
    return typeof value.phase === "string" && Array.isArray(value.images) && value.nodes ? (value as KeepWarmStatus) : undefined;
  } catch {
    return undefined;
  }
}

/** Same status but for bookkeeping fields: no write needed. */
export function sameKeepWarmStatus(a: KeepWarmStatus | undefined, b: KeepWarmStatus): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

export const keepWarmSelector = `${KEEP_WARM_LABEL}=true`;
