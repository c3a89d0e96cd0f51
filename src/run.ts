// `kube-prepull run` as a library (spec §5): one run-once DaemonSet for a list of images, watched
// (never polled) until every targeted node pulled, a failure, the timeout or an interruption, and
// deleted in every one of those cases. The decisions are src/prepull/run.ts's; this file makes the
// API calls, keeps the watch caches (the controller's Reflector) and waits.
import { randomBytes } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiErrorMessage, createClusterActions, type ClusterActions } from "./kube/cluster-actions.js";
import { nodeForCache } from "./kube/cache-shapes.js";
import { PendingPods } from "./kube/pending-pods.js";
import { Reflector } from "./kube/reflector.js";
import { LABELS, MANAGED_BY } from "./prepull/annotations.js";
import type { Progress } from "./prepull/progress.js";
import {
  EXPIRES_AT_ANNOTATION,
  expiredRunDaemonSets,
  RUN_EXPIRY_GRACE_SECONDS,
  runDaemonSetName,
  runStart,
  runStep,
  runSummary,
  type RunResult,
  type RunSpec,
  type RunSummary,
} from "./prepull/run.js";

/** What a run tells its user while it goes (the CLI draws it). */
export interface RunObserver {
  /** The DaemonSet was created: pulling on `targets` nodes, `limit` at a time. */
  started(info: { daemonSet: string; targets: number; skipped: number; unsupported: number; limit: number }): void;
  progress(progress: Progress): void;
  /** Something worth a line of its own (a leftover DaemonSet deleted, a cleanup that failed). */
  note(line: string): void;
}

export interface RunPrepullOptions {
  kubeConfig: k8s.KubeConfig;
  spec: RunSpec;
  /** Aborted on SIGINT/SIGTERM: the run deletes its DaemonSet and ends as "interrupted". */
  signal: AbortSignal;
  observer: RunObserver;
  log: Logger;
  /** After this long, pods the scheduler cannot place stop counting (serve's --scheduling-grace). */
  schedulingGraceSeconds: number;
  now?: () => Date;
}

/** The cluster could not be used: unreachable, forbidden, or it refused a write. */
export class ClusterError extends Error {}

async function clusterCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new ClusterError(`cannot ${what}: ${apiErrorMessage(error)}`);
  }
}

/** Resolves on the next notify() (or at once if one came since the last wait), or after `ms`. */
function createWaker(): { notify: () => void; wait: (ms: number) => Promise<void> } {
  let pending = false;
  let wakeUp: (() => void) | undefined;
  return {
    notify: () => {
      if (wakeUp) wakeUp();
      else pending = true;
    },
    wait: (ms) => {
      if (pending) {
        pending = false;
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        const timer = setTimeout(() => wakeUp?.(), Math.max(0, ms));
        wakeUp = () => {
          wakeUp = undefined;
          clearTimeout(timer);
          resolve();
        };
      });
    },
  };
}

interface Ending {
  result: RunResult;
  message: string;
  progress?: Progress;
  skipped?: number;
  unsupported?: number;
}

/** The watch caches of one run: every node (slimmed) and the run's DaemonSet; its pods are not watched (pending-pods.ts). */
function watchRun(
  kubeConfig: k8s.KubeConfig,
  core: k8s.CoreV1Api,
  apps: k8s.AppsV1Api,
  run: { namespace: string; id: string; name: string },
  log: Logger,
  onEvent: () => void,
  now: () => Date,
): { nodes: Reflector<k8s.V1Node>; daemonSets: Reflector<k8s.V1DaemonSet>; pending: PendingPods } {
  const { namespace, id } = run;
  const nodes = new Reflector<k8s.V1Node>({ name: "nodes", kubeConfig, path: "/api/v1/nodes", list: (p) => core.listNode(p), transform: nodeForCache, log, onEvent });
  const daemonSets = new Reflector<k8s.V1DaemonSet>({
    name: "daemonsets",
    kubeConfig,
    path: `/apis/apps/v1/namespaces/${namespace}/daemonsets`,
    labelSelector: `${LABELS.run}=${id}`,
    list: (p) => apps.listNamespacedDaemonSet({ namespace, ...p }),
    log,
    onEvent,
  });
  const pending = new PendingPods({ core, now: () => now().getTime(), fetched: onEvent, log });
  return { nodes, daemonSets, pending };
}

/**
 * A run that crashed leaves its DaemonSet behind with an expiry: clears those (fails fast too
 * when the namespace's DaemonSets are out of reach).
 */
async function deleteExpiredRuns(
  apps: k8s.AppsV1Api,
  actions: ClusterActions,
  namespace: string,
  now: () => Date,
  observer: RunObserver,
): Promise<void> {
  const ours = await clusterCall(`list DaemonSets in namespace ${namespace}`, () =>
    apps.listNamespacedDaemonSet({ namespace, labelSelector: `${LABELS.managedBy}=${MANAGED_BY},${LABELS.run}` }));
  for (const left of expiredRunDaemonSets(ours.items, now().getTime())) {
    await clusterCall(`delete daemonset/${left.metadata!.name}`, () => actions.deleteDaemonSet(namespace, left.metadata!.name!));
    observer.note(`deleted daemonset/${left.metadata!.name} left behind by an earlier run (expired ${left.metadata?.annotations?.[EXPIRES_AT_ANNOTATION]})`);
  }
}

export async function runPrepull(options: RunPrepullOptions): Promise<RunSummary> {
  const { kubeConfig, spec, signal, observer, log } = options;
  const now = options.now ?? ((): Date => new Date());
  const startedAt = now().getTime();
  const deadline = startedAt + spec.timeoutSeconds * 1000;
  const id = randomBytes(6).toString("hex");
  const name = runDaemonSetName(id);
  const { namespace } = spec;
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
  const actions = createClusterActions(kubeConfig, "kube-prepull-run");

  const waker = createWaker();
  signal.addEventListener("abort", waker.notify);
  const { nodes, daemonSets, pending } = watchRun(kubeConfig, core, apps, { namespace, id, name }, log, waker.notify, now);
  // Set before the create call: a create whose answer got lost may still have made the DaemonSet.
  let createAttempted = false;
  let created = false;

  /** Waits for the node cache; false when interrupted or out of time first. */
  const nodesListed = async (): Promise<boolean> => {
    while (!nodes.hasSynced()) {
      if (signal.aborted || now().getTime() >= deadline) return false;
      await waker.wait(100);
    }
    return true;
  };

  const drive = async (): Promise<Ending> => {
    // Leftovers of crashed runs first.
    await deleteExpiredRuns(apps, actions, namespace, now, observer);
    // The reflectors retry for ever; an unusable node list should end the run at once instead.
    await clusterCall("list nodes", () => core.listNode({ limit: 1 }));
    for (const reflector of [nodes, daemonSets]) reflector.start();
    if (!(await nodesListed())) return interruptedOrTimedOut();

    const expiresAt = new Date(deadline + RUN_EXPIRY_GRACE_SECONDS * 1000);
    const start = runStart({ id, spec, nodes: nodes.list(), expiresAt });
    if (start.kind === "nothing-to-pull") return { result: "succeeded", message: start.message, skipped: start.plan.skipped.length, unsupported: start.plan.unsupported };
    if (signal.aborted) return interruptedOrTimedOut();
    createAttempted = true;
    await clusterCall(`create daemonset/${name} in namespace ${namespace}`, () => actions.createDaemonSet(start.daemonSet));
    created = true;
    observer.started({ daemonSet: name, targets: start.plan.targets.length, skipped: start.plan.skipped.length, unsupported: start.plan.unsupported, limit: start.limit });

    const graceEnds = now().getTime() + options.schedulingGraceSeconds * 1000;
    for (;;) {
      const at = now().getTime();
      const daemonSet = daemonSets.get(namespace, name) ?? start.daemonSet;
      const detail = pending.read(daemonSet);
      const step = runStep({ spec, daemonSet, pendingPods: detail.pods, nodes: nodes.list(), now: at, deadline, graceEnds });
      observer.progress(step.progress);
      if (signal.aborted) return { ...interruptedOrTimedOut(), progress: step.progress };
      if (step.kind === "finished") return { result: step.result, message: step.message, progress: step.progress };
      if (step.wave) {
        log.debug({ daemonSet: name, added: step.wave.added }, "next wave");
        await clusterCall(`widen daemonset/${name} to the next wave`, () => actions.setDaemonSetAffinity(namespace, name, step.wave!.affinity));
      }
      const recheckAt = detail.recheckInMs !== undefined ? at + detail.recheckInMs : deadline;
      await waker.wait(Math.min(deadline, recheckAt, graceEnds > at ? graceEnds : deadline) - at);
    }
  };

  const interruptedOrTimedOut = (): Ending =>
    signal.aborted
      ? { result: "interrupted", message: `${String(signal.reason)} received` }
      : { result: "timed-out", message: `the node list was not available within ${spec.timeoutSeconds}s` };

  let ending: Ending;
  try {
    ending = await drive();
  } catch (error) {
    if (!(error instanceof ClusterError)) throw error;
    ending = { result: "error", message: error.message };
  } finally {
    signal.removeEventListener("abort", waker.notify);
    for (const reflector of [nodes, daemonSets]) reflector.stop();
    if (createAttempted) {
      // Whatever the ending (and for an unexpected error too): no DaemonSet stays behind.
      await actions.deleteDaemonSet(namespace, name).catch((error: unknown) => {
        observer.note(`could not delete daemonset/${name} (it expires, see kube-prepull.io/expires-at): ${apiErrorMessage(error)}`);
      });
    }
  }
  return runSummary({ ...ending, spec, ...(created ? { daemonSet: name } : {}), startedAt, now: now().getTime() });
}
