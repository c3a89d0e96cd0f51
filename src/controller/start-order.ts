// The cluster-wide cap on concurrent prepulls and the queue beyond it (spec §4 "Scale"): at most
// `cap` prepulls pull at once; the others wait, oldest request first. The state of every prepull
// is read from its Deployment's annotations, so the order survives restarts and leader changes.
import type { PrepullStatus } from "../prepull/progress.js";
import type { PrepullRequest } from "../prepull/request.js";

export type PrepullState = { kind: "pulling" } | { kind: "waiting"; requestedAt: string };

/** Where a Deployment's prepull stands: pulling now, waiting to start (or queued), or neither. */
export function prepullState(request: PrepullRequest | undefined, status: PrepullStatus | undefined): PrepullState | undefined {
  if (!request) return undefined;
  if (status?.request !== request.id) return { kind: "waiting", requestedAt: request.requestedAt };
  if (status.phase !== "Pulling") return undefined;
  return status.queued ? { kind: "waiting", requestedAt: request.requestedAt } : { kind: "pulling" };
}

export class StartOrder {
  private readonly states = new Map<string, PrepullState>();
  private woken = new Set<string>();

  constructor(private readonly cap: number) {}

  set(key: string, state: PrepullState | undefined): void {
    if (state) this.states.set(key, state);
    else this.states.delete(key);
  }

  pulling(): string[] {
    return [...this.states].filter(([, s]) => s.kind === "pulling").map(([key]) => key);
  }

  /** Waiting prepulls, oldest request first (ties by key, so every replica agrees). */
  queued(): string[] {
    const waiting: [string, string][] = [];
    for (const [key, s] of this.states) if (s.kind === "waiting") waiting.push([key, s.requestedAt]);
    return waiting.sort(([ka, a], [kb, b]) => (a < b ? -1 : a > b ? 1 : ka < kb ? -1 : ka > kb ? 1 : 0)).map(([key]) => key);
  }

  /** The waiting prepulls that fit under the cap now. */
  startable(): string[] {
    const free = this.cap - this.pulling().length;
    return free > 0 ? this.queued().slice(0, free) : [];
  }

  /**
   * The startable prepulls that were not startable when this was last asked: each is woken once
   * when a slot frees or it joins the queue. Waking every startable one on every workload event
   * retried a prepull whose DaemonSet create kept failing every 1–2 s past its backoff.
   */
  newlyStartable(): string[] {
    const startable = this.startable();
    const fresh = startable.filter((key) => !this.woken.has(key));
    this.woken = new Set(startable);
    return fresh;
  }

  mayStart(key: string): boolean {
    const state = this.states.get(key);
    return state?.kind === "pulling" || this.startable().includes(key);
  }
}
