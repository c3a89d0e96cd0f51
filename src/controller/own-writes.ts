// The controller's own status writes that its workload cache has not shown yet ("expectations",
// as kube-controller-manager's controllers keep them: pkg/controller/controller_utils.go). A
// reconcile from a cache that still shows the status before our write would decide again from the
// past — a prepull that just timed out "succeeds" when its last pod turns ready, a DaemonSet just
// deleted is created again — so the worker waits for the watch to bring the write back.
import type { WorkloadObject } from "../workloads/workload.js";

/** How long a write may stay unseen before the cache is trusted anyway (kube-controller-manager: 5 min). */
export const OWN_WRITE_TIMEOUT_MS = 60_000;

interface Written {
  uid: string | undefined;
  annotation: string;
  at: number;
}

export class OwnWrites {
  private readonly written = new Map<string, Written>();

  /** The status annotation `annotation` was written to the object behind `key` at `now`. */
  record(key: string, object: WorkloadObject, annotation: string, now: Date): void {
    this.written.set(key, { uid: object.metadata?.uid, annotation, at: now.getTime() });
  }

  forget(key: string): void {
    this.written.delete(key);
  }

  /**
   * How long to wait for the cache to show our last write to `key`, or undefined when `cached`
   * shows it (or is another object of the same name, or the write is older than the timeout).
   */
  unseen(key: string, cached: WorkloadObject, cachedAnnotation: string | undefined, now: Date): number | undefined {
    const write = this.written.get(key);
    if (!write) return undefined;
    const left = write.at + OWN_WRITE_TIMEOUT_MS - now.getTime();
    if (cachedAnnotation === write.annotation || cached.metadata?.uid !== write.uid || left <= 0) {
      this.written.delete(key);
      return undefined;
    }
    return left;
  }
}
