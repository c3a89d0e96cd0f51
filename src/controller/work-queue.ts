// A de-duplicating work queue with per-key exponential backoff and an overall rate limit, as
// client-go's workqueue with DefaultControllerRateLimiter: a key that keeps failing waits 5 ms,
// 10 ms, … up to 1000 s, and all retries together stay under 10 per second (burst 100).
// Written by hand: no maintained npm package has these semantics (a key added while it is being
// processed runs once more after `done`, never twice at once). The clock is injected for tests.
// https://pkg.go.dev/k8s.io/client-go/util/workqueue

export interface QueueClock {
  now(): number;
  setTimeout: (callback: () => void, ms: number) => { cancel(): void };
}

export const systemClock: QueueClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    // Node's timers overflow past ~24.8 days.
    const timer = setTimeout(callback, Math.min(Math.max(0, ms), 2 ** 31 - 1));
    return { cancel: () => clearTimeout(timer) };
  },
};

/** The system's timers with another time source (the controller's injected `now`). */
export const clockOf = (now: () => number): QueueClock => ({ now, setTimeout: systemClock.setTimeout });

export interface WorkQueueOptions {
  clock?: QueueClock;
  /** First retry delay of a failing key; doubles per failure. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Overall retry rate (token bucket). */
  retriesPerSecond?: number;
  burst?: number;
}

export class WorkQueue {
  private readonly clock: QueueClock;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly rate: number;
  private readonly burst: number;
  private readonly ready = new Set<string>();
  private readonly processing = new Set<string>();
  /** Keys added while processing: queued again on `done`. */
  private readonly dirty = new Set<string>();
  private readonly delayed = new Map<string, { at: number; cancel(): void }>();
  private readonly failures = new Map<string, number>();
  private tokens: number;
  private tokensAt: number;
  private waiters: ((key: string | undefined) => void)[] = [];
  private shutDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 1_000_000;
    this.rate = options.retriesPerSecond ?? 10;
    this.burst = options.burst ?? 100;
    this.tokens = this.burst;
    this.tokensAt = this.clock.now();
  }

  add(key: string): void {
    if (this.shutDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.ready.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.processing.add(key);
      waiter(key);
    } else {
      this.ready.add(key);
    }
  }

  /** Adds the key after `ms`, unless it is due earlier already. */
  addAfter(key: string, ms: number): void {
    if (this.shutDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    existing?.cancel();
    const timer = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, cancel: () => timer.cancel() });
  }

  /**
   * Adds the key after its backoff (per key) and the overall rate limit, whichever is longer. A
   * `capMs` bounds this retry's backoff (failures that heal with the apiserver are retried often
   * enough to catch its return).
   */
  addRateLimited(key: string, capMs = this.maxDelayMs): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const backoff = Math.min(this.maxDelayMs, capMs, this.baseDelayMs * 2 ** Math.min(failures, 40));
    const delay = Math.max(backoff, this.reserveToken());
    this.addAfter(key, delay);
    return delay;
  }

  /** The key succeeded: its next failure starts the backoff again. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /**
   * Every key waiting out a failure's backoff is retried now (its failure count kept): after an
   * apiserver outage the backoffs have grown to minutes, and the work that fell due meanwhile
   * (holds whose deadline passed) must not wait for them.
   */
  retryFailingNow(): void {
    for (const key of this.failures.keys()) {
      const delayed = this.delayed.get(key);
      if (!delayed) continue;
      delayed.cancel();
      this.delayed.delete(key);
      this.add(key);
    }
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to process (marked processing until `done`), or undefined once shut down. */
  get(): Promise<string | undefined> {
    if (this.shutDown) return Promise.resolve(undefined);
    const next = this.ready.values().next();
    if (!next.done) {
      this.ready.delete(next.value);
      this.processing.add(next.value);
      return Promise.resolve(next.value);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  /** Keys waiting to be processed now (not the delayed ones). */
  length(): number {
    return this.ready.size;
  }

  shutdown(): void {
    this.shutDown = true;
    for (const timer of this.delayed.values()) timer.cancel();
    this.delayed.clear();
    for (const waiter of this.waiters) waiter(undefined);
    this.waiters = [];
  }

  /** Token bucket: the delay until a retry may run under the overall rate. */
  private reserveToken(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.tokensAt) / 1000) * this.rate);
    this.tokensAt = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
  }
}
