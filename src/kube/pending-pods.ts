// The pending pods of prepull DaemonSets, fetched only when src/prepull/pod-detail.ts says so: a
// label- and field-selected list (`status.phase=Pending`, paged), never a watch of every pod. One
// instance serves every DaemonSet of a controller or a run; it remembers each DaemonSet's last
// status and detail until `forget`.
import type * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { LABELS } from "../prepull/annotations.js";
import { DETAIL_PAGE_SIZE, detailDue, observeStatus, statusKey, wantsNextPage, type DetailState } from "../prepull/pod-detail.js";
import { podForCache } from "./cache-shapes.js";

export interface PendingPodsDeps {
  core: Pick<k8s.CoreV1Api, "listNamespacedPod">;
  now: () => number;
  /** A fetch completed with pods for this DaemonSet: reconcile its owner. */
  fetched: (namespace: string, daemonSet: string) => void;
  log: Logger;
}

export interface PendingPodsRead {
  /** Every pending pod under the DaemonSet's current status; undefined when no complete list was fetched. */
  pods: k8s.V1Pod[] | undefined;
  /** Look again this much later: a stall would be due then. */
  recheckInMs?: number;
}

export class PendingPods {
  private readonly states = new Map<string, DetailState>();
  private readonly inFlight = new Set<string>();

  constructor(private readonly deps: PendingPodsDeps) {}

  /** The detail for a DaemonSet as it is now; starts a fetch when one is due. */
  read(daemonSet: k8s.V1DaemonSet): PendingPodsRead {
    const namespace = daemonSet.metadata!.namespace!;
    const name = daemonSet.metadata!.name!;
    const id = `${namespace}/${name}`;
    const now = this.deps.now();
    const state = observeStatus(this.states.get(id), statusKey(daemonSet), now);
    this.states.set(id, state);
    if (detailDue(state, daemonSet, now).fetchNow && !this.inFlight.has(id)) this.fetch(id, namespace, name, state);
    // After a fetch starts: when the next one would be due, so a fetch that fails is retried then.
    const due = detailDue(state, daemonSet, now);
    return { pods: state.pods, ...(due.recheckInMs !== undefined ? { recheckInMs: due.recheckInMs } : {}) };
  }

  /** The DaemonSet is gone: drop what is known of it. */
  forget(namespace: string, name: string): void {
    this.states.delete(`${namespace}/${name}`);
  }

  private fetch(id: string, namespace: string, name: string, state: DetailState): void {
    state.fetches++;
    state.lastFetchAt = this.deps.now();
    this.inFlight.add(id);
    this.listPending(namespace, name)
      .then((pods) => {
        // Stale if the DaemonSet's status moved on meanwhile: the next stall fetches again. A
        // sample (first page only, no problem in it) says nothing a count does not: not kept.
        if (this.states.get(id) !== state || !pods) return;
        state.pods = pods;
        this.deps.fetched(namespace, name);
      })
      .catch((error: unknown) => this.deps.log.warn({ err: error, daemonSet: id }, "listing pending prepull pods failed; trying again at the next stall"))
      .finally(() => this.inFlight.delete(id));
  }

  /**
   * Every pending pod, when the first page holds them all or a page shows a problem (then every
   * page is read); undefined when the first page was a sample without a problem in it.
   */
  private async listPending(namespace: string, name: string): Promise<k8s.V1Pod[] | undefined> {
    const pods: k8s.V1Pod[] = [];
    let next: string | undefined;
    do {
      const page = await this.deps.core.listNamespacedPod({
        namespace,
        labelSelector: `${LABELS.prepull}=${name}`,
        fieldSelector: "status.phase=Pending",
        limit: DETAIL_PAGE_SIZE,
        ...(next ? { _continue: next } : {}),
      });
      const items = page.items.map(podForCache);
      pods.push(...items);
      next = page.metadata?._continue || undefined;
      if (next && !wantsNextPage(items) && pods.length === items.length) return undefined;
    } while (next);
    return pods;
  }
}
