// The chaos soak's invariants (issue 15 item 1, docs/reliability.md), as pure functions of what the
// watcher saw: the Deployments, prepull DaemonSets and Events of the soak's namespace. The watcher
// (scenario.ts) feeds a HoldTracker every second and runs finalViolations once at the end.
import type * as k8s from "@kubernetes/client-node";
import { decodeStatus, isTerminal, type PrepullStatus } from "../../src/prepull/progress.js";
import { decodeRequest, type PrepullRequest } from "../../src/prepull/request.js";
import { SYSTEM_ANNOTATIONS, USER_ANNOTATIONS, parseDuration } from "../../src/prepull/annotations.js";
import { decodeHeldBy, type HeldBy } from "../../src/workloads/workload.js";

/** A hold must end within its hold-timeout plus this (issue 15). */
export const RELEASE_GRACE_MS = 30_000;
const DEFAULT_HOLD_TIMEOUT_SECONDS = 600;
const REQUEST_ID = "kube-prepull.io/request-id";
const TERMINAL_EVENT_PHASE: Record<string, PrepullStatus["phase"]> = {
  PrepullSucceeded: "Succeeded",
  PrepullFailed: "Failed",
  PrepullTimedOut: "TimedOut",
};

/** What the invariants read of a Deployment. */
export interface WorkloadView {
  name: string;
  uid: string;
  request: PrepullRequest | undefined;
  status: PrepullStatus | undefined;
  heldBy: HeldBy | undefined;
  holdTimeoutMs: number;
}

export function workloadView(d: k8s.V1Deployment): WorkloadView {
  const a = d.metadata?.annotations ?? {};
  return {
    name: d.metadata!.name!,
    uid: d.metadata!.uid!,
    request: decodeRequest(a[SYSTEM_ANNOTATIONS.request]),
    status: decodeStatus(a[SYSTEM_ANNOTATIONS.status]),
    heldBy: decodeHeldBy(a[SYSTEM_ANNOTATIONS.heldBy]),
    holdTimeoutMs: (parseDuration(a[USER_ANNOTATIONS.holdTimeout] ?? "") ?? DEFAULT_HOLD_TIMEOUT_SECONDS) * 1000,
  };
}

/** A prepull DaemonSet: the Deployment (uid) and request it is for. */
export interface DaemonSetView {
  name: string;
  ownerUid: string | undefined;
  requestId: string | undefined;
}

export function daemonSetView(ds: k8s.V1DaemonSet): DaemonSetView {
  return {
    name: ds.metadata!.name!,
    ownerUid: ds.metadata?.ownerReferences?.find((o) => o.controller)?.uid ?? ds.metadata?.ownerReferences?.[0]?.uid,
    requestId: ds.metadata?.annotations?.[REQUEST_ID],
  };
}

/** Requests with more than one DaemonSet at the same moment ("never two DaemonSets for the same request"). */
export function duplicateDaemonSets(daemonSets: DaemonSetView[]): string[] {
  const byRequest = new Map<string, string[]>();
  for (const ds of daemonSets) {
    if (!ds.requestId) continue;
    const key = `${ds.ownerUid ?? "?"}/${ds.requestId}`;
    byRequest.set(key, [...(byRequest.get(key) ?? []), ds.name]);
  }
  return [...byRequest].filter(([, names]) => names.length > 1).map(([key, names]) => `request ${key} has ${names.length} DaemonSets: ${names.join(", ")}`);
}

interface TrackedHold {
  name: string;
  /** When the hold must have ended: its request's time plus the hold timeout. */
  deadline: number;
  firstSeen: number;
}

export interface HoldStats {
  holds: number;
  releases: number;
  /** Largest (release seen − deadline − the pauses between them), ms; negative when every hold ended before its deadline. */
  maxLatenessMs: number;
  /** Largest (release seen − requestedAt − hold-timeout), pauses not taken out. */
  maxRawLatenessMs: number;
  /** Holds seen ending (or still held) later than deadline + RELEASE_GRACE_MS. */
  late: string[];
}

/** A time nothing could release a hold: the control plane was down, or no replica led. */
type PauseKind = "outage" | "no leader";

/**
 * Follows every hold (a Deployment's held-by for one request) across snapshots: when it began and
 * ended as seen, and how late its end was against requestedAt + hold-timeout, not counting the
 * pauses after the deadline (a control-plane outage, or the time from killing the leader until
 * another replica holds the Lease; issue 15: released within 5 s of the apiserver's return):
 * lateness is time the cluster had a leader and a control plane and did not release.
 */
export class HoldTracker {
  private readonly open = new Map<string, TrackedHold>();
  private readonly pauses: { from: number; to: number; kind: PauseKind }[] = [];
  private readonly stats: HoldStats = { holds: 0, releases: 0, maxLatenessMs: Number.NEGATIVE_INFINITY, maxRawLatenessMs: Number.NEGATIVE_INFINITY, late: [] };
  private readonly reported = new Set<string>();

  /** An outage began at `from`; `end(to)` closes it once the apiserver is ready again. */
  outage(from: number): { end: (to: number) => void } {
    return this.pause(from, "outage");
  }

  /** The leader was killed at `from`; `end(to)` closes it once another replica holds the Lease. */
  leaderless(from: number): { end: (to: number) => void } {
    return this.pause(from, "no leader");
  }

  private pause(from: number, kind: PauseKind): { end: (to: number) => void } {
    const window = { from, to: Number.POSITIVE_INFINITY, kind };
    this.pauses.push(window);
    return { end: (to) => (window.to = Math.min(window.to, to)) };
  }

  /**
   * How late a hold is at `now`: the time since its deadline outside every pause (nothing can
   * release a hold in one, whether the deadline fell in it or before it), and the pauses taken out.
   */
  private lateness(deadline: number, now: number): { ms: number; kinds: PauseKind[] } {
    if (now <= deadline) return { ms: now - deadline, kinds: [] };
    const within = this.pauses
      .map((p) => ({ from: Math.max(p.from, deadline), to: Math.min(p.to, now), kind: p.kind }))
      .filter((p) => p.to > p.from)
      .sort((a, b) => a.from - b.from);
    let paused = 0;
    let covered = deadline; // pauses overlap (an outage while nobody leads): count each moment once
    for (const p of within) {
      paused += Math.max(0, p.to - Math.max(p.from, covered));
      covered = Math.max(covered, p.to);
    }
    return { ms: now - deadline - paused, kinds: [...new Set(within.map((p) => p.kind))] };
  }

  observe(workloads: WorkloadView[], now: number): void {
    const seen = new Set<string>();
    for (const w of workloads) {
      if (!w.heldBy) continue;
      const key = `${w.uid}/${w.heldBy.request}`;
      seen.add(key);
      if (!this.open.has(key)) {
        const requestedAt = w.request?.id === w.heldBy.request ? Date.parse(w.request.requestedAt) : now;
        this.open.set(key, { name: w.name, deadline: requestedAt + w.holdTimeoutMs, firstSeen: now });
        this.stats.holds++;
      }
      this.checkLate(key, this.open.get(key)!, now);
    }
    for (const [key, hold] of this.open) {
      if (seen.has(key)) continue;
      this.open.delete(key);
      this.stats.releases++;
      this.stats.maxLatenessMs = Math.max(this.stats.maxLatenessMs, this.lateness(hold.deadline, now).ms);
      this.stats.maxRawLatenessMs = Math.max(this.stats.maxRawLatenessMs, now - hold.deadline);
      this.checkLate(key, hold, now);
    }
  }

  /** Holds still open. */
  held(): number {
    return this.open.size;
  }

  summary(): HoldStats {
    return { ...this.stats, late: [...this.stats.late] };
  }

  private checkLate(key: string, hold: TrackedHold, now: number): void {
    const late = this.lateness(hold.deadline, now);
    if (late.ms <= RELEASE_GRACE_MS || this.reported.has(key)) return;
    this.reported.add(key);
    const without = late.kinds.length > 0 ? ` (not counting the ${late.kinds.join(" and ")} times after it)` : "";
    this.stats.late.push(`${hold.name} (hold ${key}) not released ${Math.round(late.ms / 1000)}s after its deadline${without}`);
  }
}

export interface KubePrepullEvent {
  involvedUid: string;
  reason: string;
  /** firstTimestamp or eventTime, ms (second precision from the apiserver). */
  at: number;
}

export function eventView(e: k8s.CoreV1Event): KubePrepullEvent {
  const at = e.eventTime ?? e.firstTimestamp ?? e.lastTimestamp ?? e.metadata?.creationTimestamp;
  return { involvedUid: e.involvedObject.uid ?? "", reason: e.reason ?? "", at: at ? new Date(at).getTime() : 0 };
}

/**
 * At the end of the soak (every hold due, cleanup due): no Deployment held, every status terminal
 * and for the latest request, no prepull DaemonSet left, every terminal Event after the latest
 * request saying what the status says.
 */
export function finalViolations(workloads: WorkloadView[], daemonSets: DaemonSetView[], events: KubePrepullEvent[]): string[] {
  const problems: string[] = [];
  for (const w of workloads) {
    if (w.heldBy) problems.push(`${w.name}: still held by kube-prepull (request ${w.heldBy.request})`);
    if (!w.request) continue;
    if (!w.status) problems.push(`${w.name}: no status for request ${w.request.id}`);
    else if (!isTerminal(w.status.phase)) problems.push(`${w.name}: status ${w.status.phase}, not terminal`);
    else if (w.status.request !== w.request.id) problems.push(`${w.name}: status is for request ${w.status.request}, the latest is ${w.request.id}`);
    if (!w.status) continue;
    // Apiserver timestamps have second precision: compare from the request's second.
    const since = Math.floor(Date.parse(w.request.requestedAt) / 1000) * 1000;
    for (const e of events) {
      const phase = TERMINAL_EVENT_PHASE[e.reason];
      if (e.involvedUid !== w.uid || phase === undefined || e.at < since) continue;
      if (phase !== w.status.phase) problems.push(`${w.name}: Event ${e.reason} after request ${w.request.id}, but the status says ${w.status.phase}`);
    }
  }
  for (const ds of daemonSets) problems.push(`DaemonSet ${ds.name} (request ${ds.requestId ?? "?"}) left after cleanup was due`);
  return problems;
}

/** Deployments (of those with a terminal status) whose last terminal Event is missing: counted, not a violation (an Event is best effort). */
export function missingTerminalEvents(workloads: WorkloadView[], events: KubePrepullEvent[]): number {
  return workloads.filter((w) => w.status && isTerminal(w.status.phase) && w.request
    && !events.some((e) => e.involvedUid === w.uid && TERMINAL_EVENT_PHASE[e.reason] === w.status!.phase)).length;
}

/** A small seeded PRNG (mulberry32): the soak's choices are replayable from the printed seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
