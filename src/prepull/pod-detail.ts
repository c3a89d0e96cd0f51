// When to look at a prepull's pods (spec §4 "Scale"). Progress comes from its DaemonSet's status
// counts, which the DaemonSet controller keeps anyway; watching every pod of a 1000-node prepull
// received ~98 MB and slowed the pods themselves (docs/benchmarks.md). Only pending pods can say
// why a node has not pulled (a pull error, an unschedulable pod, a node gone NotReady), so a list
// of them is fetched when the counts stall, and again with backoff while they stay stalled. A
// fetched list is valid only for the DaemonSet status it was fetched under: once a pod is created
// or Ready the list is stale and dropped. Pure; the fetching is src/kube/pending-pods.ts.
import type * as k8s from "@kubernetes/client-node";
import { isSettling, pullFailureOf } from "./progress.js";

/** Counts unchanged this long while pods are not Ready: look at the pending pods. */
export const STALL_MS = 5000;
/** While the counts stay stalled, look again after twice the last wait, up to this. */
export const MAX_DETAIL_INTERVAL_MS = 30_000;
/** Pods per page of the list: a sample first; the next pages only when a page shows a problem. */
export const DETAIL_PAGE_SIZE = 50;

/** What pending-pod detail there is for one DaemonSet, and when it was last fetched. */
export interface DetailState {
  /** The DaemonSet status the state is for (statusKey). */
  key: string;
  /** When that status was first seen (ms). */
  since: number;
  /** Fetches made under this status. */
  fetches: number;
  lastFetchAt?: number;
  /** The pending pods, when a fetch under this status completed. */
  pods?: k8s.V1Pod[];
}

/** The generation and counts of a DaemonSet's status: a change of any means pods changed. */
export function statusKey(daemonSet: k8s.V1DaemonSet): string {
  const s = daemonSet.status;
  return [daemonSet.metadata?.generation, s?.observedGeneration, s?.desiredNumberScheduled, s?.currentNumberScheduled, s?.numberReady, s?.numberMisscheduled, s?.updatedNumberScheduled].join("/");
}

/** The state after seeing the DaemonSet at `now`: unchanged under the same status, reset otherwise. */
export function observeStatus(state: DetailState | undefined, key: string, now: number): DetailState {
  return state?.key === key ? state : { key, since: now, fetches: 0 };
}

/** Pods the DaemonSet wants that are not Ready (not created, pending, starting). */
export function unreadyPods(daemonSet: k8s.V1DaemonSet): number {
  return Math.max(0, (daemonSet.status?.desiredNumberScheduled ?? 0) - (daemonSet.status?.numberReady ?? 0));
}

/** The wait before fetch number `fetches + 1` under one status: STALL_MS, then doubling. */
function waitBefore(fetches: number): number {
  return Math.min(MAX_DETAIL_INTERVAL_MS, STALL_MS * 2 ** fetches);
}

/**
 * Whether to fetch the pending pods now, else in how many ms to look again; nothing while every
 * wanted pod is Ready or the DaemonSet controller has not reported on its generation yet.
 */
export function detailDue(state: DetailState, daemonSet: k8s.V1DaemonSet, now: number): { fetchNow: boolean; recheckInMs?: number } {
  if (isSettling(daemonSet) || unreadyPods(daemonSet) === 0) return { fetchNow: false };
  const dueAt = (state.lastFetchAt ?? state.since) + waitBefore(state.fetches);
  return now >= dueAt ? { fetchNow: true } : { fetchNow: false, recheckInMs: dueAt - now };
}

/**
 * A pod the sample cannot stand for: it failed or cannot be scheduled. (A pod its kubelet has not
 * reported on yet is no problem: at 1000 nodes most pods are like that early on, and reading every
 * page for them cost 20 lists of 50 per stall, docs/benchmarks.md.)
 */
function showsProblem(pod: k8s.V1Pod): boolean {
  const unschedulable = pod.status?.conditions?.some((c) => c.type === "PodScheduled" && c.status === "False") ?? false;
  return unschedulable || pullFailureOf(pod, "") !== undefined;
}

/** After a page: fetch the next one too (if there is one) when this one shows a problem. */
export function wantsNextPage(page: k8s.V1Pod[]): boolean {
  return page.some(showsProblem);
}
