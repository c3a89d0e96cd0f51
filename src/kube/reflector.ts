// A list+watch cache of one resource. Written by hand because the informer of
// @kubernetes/client-node 1.x has known gaps (webhook-engineering notes §1.6): no client-side watch
// timeout (a half-dead connection hangs forever, client-node #596/#958), no reconnect backoff
// (#1933), no bookmarks. This one: paged list, watch with a server timeout of 5–10 min and
// bookmarks, 410 Gone → relist, jittered exponential backoff (1 s → 30 s), and a watchdog that
// restarts a watch that has been silent for longer than its own timeout.
import type * as k8s from "@kubernetes/client-node";
import { Watch } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { httpStatusOf, isUnavailable } from "./api-errors.js";

export type ObjectEvent = "ADDED" | "MODIFIED" | "DELETED";

export interface ListResult<T> {
  items: T[];
  metadata?: { resourceVersion?: string; _continue?: string };
}

export interface ReflectorOptions<T extends k8s.KubernetesObject> {
  /** For logs: "deployments", "daemonsets", … */
  name: string;
  kubeConfig: k8s.KubeConfig;
  /** Collection path for watches, e.g. /apis/apps/v1/deployments. */
  path: string;
  list: (params: { labelSelector?: string; fieldSelector?: string; limit: number; _continue?: string }) => Promise<ListResult<T>>;
  labelSelector?: string;
  /** e.g. `metadata.name=x`: how RBAC rules restricted by resourceNames allow a list/watch. */
  fieldSelector?: string;
  onEvent: (type: ObjectEvent, object: T) => void;
  /** Secondary indexes by name: the values an object is found under (client-go's Indexers). */
  indexers?: Record<string, (object: T) => string[]>;
  /** What the cache keeps of each object (default: all but managedFields). */
  transform?: (object: T) => T;
  log: Logger;
  /** A list or watch worked again after failing (the apiserver is back after an outage). */
  onRecovered?: () => void;
}

/** An ERROR event inside a watch (other than 410): the version it watched from is not trusted. */
class WatchEventError extends Error {}

/**
 * The wait before the next list/watch after `failures` failures in a row (before jitter): 1 s
 * doubling to 30 s for answers that may not heal soon (403, 404, …); capped at 2 s while nothing
 * answers (connection refused or reset: the apiserver is down, and a try costs it nothing) and at
 * 5 s for 429/5xx (it is starting or overloaded), so the cache comes back within seconds of the
 * apiserver and the holds that fell due during an outage are released then.
 */
export function retryDelayMs(error: unknown, failures: number): number {
  const cap = !isUnavailable(error) ? 30_000 : httpStatusOf(error) === undefined ? 2000 : 5000;
  return Math.min(cap, 1000 * 2 ** Math.min(failures - 1, 5));
}

/**
 * What the caches keep of an object: everything but managedFields, which nothing here reads and
 * which are a large share of a node's or a pod's size (client-go's informers drop them the same
 * way with a transform).
 */
function trimmed<T extends k8s.KubernetesObject>(object: T): T {
  if (object.metadata?.managedFields) delete object.metadata.managedFields;
  return object;
}

export function objectKey(object: k8s.KubernetesObject): string {
  return `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
}

export class Reflector<T extends k8s.KubernetesObject> {
  private readonly store = new Map<string, T>();
  /** index name → index value → object key → object */
  private readonly indices = new Map<string, Map<string, Map<string, T>>>();
  private running = false;
  /** The last list or watch failed; cleared (and onRecovered called) by the next that works. */
  private failing = false;
  private synced = false;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly options: ReflectorOptions<T>) {}

  get(namespace: string, name: string): T | undefined {
    return this.store.get(`${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  /** The cached objects an indexer maps to `value`. */
  byIndex(index: string, value: string): T[] {
    return [...(this.indices.get(index)?.get(value)?.values() ?? [])];
  }

  private put(key: string, object: T): void {
    const old = this.store.get(key);
    if (old) this.unindex(key, old);
    this.store.set(key, object);
    for (const [name, indexer] of Object.entries(this.options.indexers ?? {})) {
      const index = this.indices.get(name) ?? new Map<string, Map<string, T>>();
      this.indices.set(name, index);
      for (const value of indexer(object)) {
        const entries = index.get(value) ?? new Map<string, T>();
        index.set(value, entries.set(key, object));
      }
    }
  }

  private remove(key: string): void {
    const old = this.store.get(key);
    if (old) this.unindex(key, old);
    this.store.delete(key);
  }

  private unindex(key: string, object: T): void {
    for (const [name, indexer] of Object.entries(this.options.indexers ?? {})) {
      const index = this.indices.get(name);
      for (const value of indexer(object)) {
        const entries = index?.get(value);
        entries?.delete(key);
        if (entries?.size === 0) index!.delete(value);
      }
    }
  }

  hasSynced(): boolean {
    return this.synced;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.run();
  }

  stop(): void {
    this.running = false;
    this.abort?.abort();
    this.wake?.();
  }

  private shape(object: T): T {
    return this.options.transform ? this.options.transform(object) : trimmed(object);
  }

  private selectors(): { labelSelector?: string; fieldSelector?: string } {
    return {
      ...(this.options.labelSelector ? { labelSelector: this.options.labelSelector } : {}),
      ...(this.options.fieldSelector ? { fieldSelector: this.options.fieldSelector } : {}),
    };
  }

  private async run(): Promise<void> {
    let failures = 0;
    // Undefined: the cache must be (re)listed; otherwise the watch resumes from here.
    let resourceVersion: string | undefined;
    while (this.running) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.relist();
          this.recovered();
        }
        const outcome = await this.watchOnce(resourceVersion);
        failures = 0;
        // 410 Gone: the apiserver no longer has that version (compaction, or a restarted watch cache).
        resourceVersion = outcome.kind === "gone" ? undefined : outcome.resourceVersion;
      } catch (error) {
        if (!this.running) return;
        failures++;
        this.failing = true;
        // A watch that failed resumes from its last version (client-go does the same): an outage of
        // the apiserver costs one relist per resource at most (the 410 after its restart), no storm.
        if (error instanceof WatchEventError) resourceVersion = undefined;
        const delay = retryDelayMs(error, failures) * (0.5 + Math.random() / 2);
        this.options.log.warn({ resource: this.options.name, err: error, retryInMs: Math.round(delay) }, "list/watch failed");
        await this.sleep(delay);
      }
    }
  }

  /** The first successful list or watch after failures: tell the owner (it may retry its own work now). */
  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.options.onRecovered?.();
  }

  /**
   * Lists page by page into the store: each page's objects replace the cached ones as they arrive,
   * and an object whose resourceVersion is unchanged keeps its cached copy (not shaped again, no
   * event), so a re-list holds one page beside the cache, not a second cache. (It did not lower
   * serve's peak RSS at 5000 nodes: docs/benchmarks.md, Scale.) Objects no page named are deleted
   * at the end. A list that fails half-way leaves newer objects in place; the retry completes it.
   */
  private async relist(): Promise<string> {
    const seen = new Set<string>();
    let resourceVersion = "";
    let token: string | undefined;
    do {
      const page = await this.options.list({
        ...this.selectors(),
        limit: 500,
        ...(token ? { _continue: token } : {}),
      });
      for (const item of page.items) this.merge(item, seen);
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      token = page.metadata?._continue || undefined;
    } while (token);
    for (const [key, old] of this.store) {
      if (seen.has(key)) continue;
      this.remove(key);
      this.options.onEvent("DELETED", old);
    }
    this.synced = true;
    return resourceVersion;
  }

  /** One listed object into the store: ADDED, MODIFIED, or (same resourceVersion) left as cached. */
  private merge(item: T, seen: Set<string>): void {
    const key = objectKey(item);
    seen.add(key);
    const old = this.store.get(key);
    if (old && old.metadata?.resourceVersion === item.metadata?.resourceVersion) return;
    const kept = this.shape(item);
    this.put(key, kept);
    this.options.onEvent(old ? "MODIFIED" : "ADDED", kept);
  }

  private watchOnce(resourceVersion: string): Promise<{ kind: "ended"; resourceVersion: string } | { kind: "gone" }> {
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
    let current = resourceVersion;
    return new Promise((resolve, reject) => {
      let settled = false;
      let watchdog: NodeJS.Timeout | undefined;
      const finish = (result: { kind: "ended"; resourceVersion: string } | { kind: "gone" } | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        this.abort?.abort();
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const armWatchdog = (): void => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => finish({ kind: "ended", resourceVersion: current }), (timeoutSeconds + 60) * 1000);
      };
      armWatchdog();
      new Watch(this.options.kubeConfig)
        .watch(
          this.options.path,
          {
            allowWatchBookmarks: true,
            resourceVersion: current,
            timeoutSeconds,
            ...this.selectors(),
          },
          (type: string, object: T & { code?: number }) => {
            armWatchdog();
            if (type === "ERROR") {
              finish(object.code === 410 ? { kind: "gone" } : new WatchEventError(`watch error: ${JSON.stringify(object)}`));
              return;
            }
            current = object.metadata?.resourceVersion ?? current;
            if (type === "BOOKMARK") return;
            const kept = this.shape(object);
            const key = objectKey(kept);
            if (type === "DELETED") this.remove(key);
            else this.put(key, kept);
            this.options.onEvent(type as ObjectEvent, kept);
          },
          (error: unknown) => {
            if (httpStatusOf(error) === 410) finish({ kind: "gone" });
            else if (error && this.running) finish(error instanceof Error ? error : new Error(JSON.stringify(error)));
            else finish({ kind: "ended", resourceVersion: current });
          },
        )
        .then(
          (controller) => {
            this.abort = controller;
            if (settled || !this.running) controller.abort();
            else this.recovered(); // the apiserver answered 200: the watch is established
          },
          (error: unknown) => finish(error instanceof Error ? error : new Error(JSON.stringify(error))),
        );
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
