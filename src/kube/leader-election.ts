// Lease-based leader election (coordination.k8s.io/v1), so that one of several `serve` replicas
// runs the controller (spec §2). Written by hand: @kubernetes/client-node has none, and the one npm
// package is little used (webhook-engineering notes §1.7). It follows client-go's
// tools/leaderelection: a follower takes over a lease whose record it has not seen change for the
// lease duration on its *own* clock (no trust in other machines' clocks); a leader that cannot
// renew within the renew deadline steps down before the lease can expire for others; updates are
// guarded by resourceVersion, so two candidates never both win. Defaults as controller-runtime:
// 15 s lease, 10 s renew deadline, 2 s retry.
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { httpStatusOf } from "./api-errors.js";
import { withCallSignal } from "./request-timeout.js";

export interface LeaseRecord {
  holder: string;
  leaseDurationSeconds: number;
  transitions: number;
  acquireTime?: Date;
  renewTime?: Date;
}

export type LeaseDecision =
  | { kind: "take"; transitions: number; acquireTime: Date }
  | { kind: "renew"; transitions: number; acquireTime: Date }
  | { kind: "follow"; holder: string };

/**
 * What a candidate does with the lease record it just read. `observedAt` is when, on this
 * candidate's clock, the record was last seen to change.
 */
export function decideLease(input: { record: LeaseRecord; identity: string; observedAt: number; now: Date }): LeaseDecision {
  const { record, identity, observedAt, now } = input;
  if (record.holder === identity) {
    return { kind: "renew", transitions: record.transitions, acquireTime: record.acquireTime ?? now };
  }
  const expired = record.holder === "" || now.getTime() >= observedAt + record.leaseDurationSeconds * 1000;
  if (!expired) return { kind: "follow", holder: record.holder };
  return { kind: "take", transitions: record.transitions + 1, acquireTime: now };
}

export function leaseRecord(lease: k8s.V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  return {
    holder: spec.holderIdentity ?? "",
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 15,
    transitions: spec.leaseTransitions ?? 0,
    ...(spec.acquireTime ? { acquireTime: new Date(spec.acquireTime) } : {}),
    ...(spec.renewTime ? { renewTime: new Date(spec.renewTime) } : {}),
  };
}

export interface LeaderElectionOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  name: string;
  /** Unique per replica: hostname (the pod name in a cluster) plus a random suffix by default. */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log: Logger;
}

export interface LeaderElection {
  identity: string;
  isLeader: () => boolean;
  /** Stops campaigning; a leader hands the lease back so another replica takes over at once. */
  stop: () => Promise<void>;
}

const micro = (date: Date): k8s.V1MicroTime => new k8s.V1MicroTime(date.getTime());

/** The spec a candidate writes when it takes or renews the lease. */
export function leaseSpec(input: { identity: string; leaseSeconds: number; decision: Exclude<LeaseDecision, { kind: "follow" }>; now: Date }): k8s.V1LeaseSpec {
  const { identity, leaseSeconds, decision, now } = input;
  return {
    holderIdentity: identity,
    leaseDurationSeconds: leaseSeconds,
    leaseTransitions: decision.transitions,
    acquireTime: micro(decision.acquireTime),
    renewTime: micro(now),
  };
}

/** Changes whenever the holder renews or the lease changes hands (what "seen to change" means). */
export function observationKey(record: LeaseRecord): string {
  return `${record.holder}|${record.renewTime?.getTime() ?? ""}|${record.transitions}`;
}

type LeaseApi = k8s.CoordinationV1Api;

/** Fails at start-up, not silently later, when the Lease's namespace does not exist. */
async function checkLeaseNamespace(api: LeaseApi, namespace: string): Promise<void> {
  try {
    await api.listNamespacedLease({ namespace, limit: 1 });
  } catch (error) {
    throw new Error(`leader election: cannot use Leases in namespace "${namespace}" (${httpStatusOf(error) ?? (error as Error).message}); create the namespace or change --leader-election-namespace`);
  }
}

/** Hands the lease back (client-go ReleaseOnCancel): an empty holder is free to take now. */
async function releaseLease(api: LeaseApi, lease: { name: string; namespace: string; identity: string; log: Logger }): Promise<void> {
  const { name, namespace, identity, log } = lease;
  try {
    const current = await api.readNamespacedLease({ name, namespace });
    if (current.spec?.holderIdentity === identity) {
      await api.replaceNamespacedLease({ name, namespace, body: { ...current, spec: { ...current.spec, holderIdentity: "", leaseDurationSeconds: 1 } } });
    }
  } catch (error) {
    log.warn({ err: error }, "leader election: could not release the lease");
  }
}

/**
 * When the lease calls of an attempt must have ended: a leader's renewal within the renew deadline
 * of its last one (client-go's RenewDeadline), or it steps down; any other attempt within a renew
 * deadline from now. client-node sets no timeout of its own, and a call that hangs (an apiserver
 * restarting or overloaded; seen in the chaos soak: one candidate waited 3.5 minutes on a single
 * call while nobody led) would stop the loop: a candidate would never take over, a leader would
 * never step down.
 */
export function attemptDeadline(input: { leader: boolean; lastRenew: number; now: number; renewDeadlineMs: number }): number {
  return input.leader ? input.lastRenew + input.renewDeadlineMs : input.now + input.renewDeadlineMs;
}

export async function startLeaderElection(options: LeaderElectionOptions): Promise<LeaderElection> {
  const identity = options.identity ?? `${hostname()}_${randomBytes(4).toString("hex")}`;
  const leaseDurationMs = options.leaseDurationMs ?? 15_000;
  const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
  const retryPeriodMs = options.retryPeriodMs ?? 2_000;
  const { namespace, name, log } = options;
  const leaseSeconds = Math.max(1, Math.round(leaseDurationMs / 1000));
  let callsEndAt = Date.now() + renewDeadlineMs;
  const api = withCallSignal(options.kubeConfig, () => AbortSignal.timeout(Math.max(1, callsEndAt - Date.now()))).makeApiClient(k8s.CoordinationV1Api);

  await checkLeaseNamespace(api, namespace);

  let leader = false;
  let running = true;
  let lastRenew = 0;
  let observed: { key: string; at: number } | undefined;
  let timer: NodeJS.Timeout | undefined;

  /** One attempt to acquire or renew: "held" when this replica holds the lease afterwards. */
  const attempt = async (): Promise<"held" | "follow"> => {
    const now = new Date();
    let lease: k8s.V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (httpStatusOf(error) !== 404) throw error;
      await api.createNamespacedLease({
        namespace,
        body: { metadata: { name, namespace }, spec: leaseSpec({ identity, leaseSeconds, decision: { kind: "take", transitions: 0, acquireTime: now }, now }) },
      });
      return "held";
    }
    const record = leaseRecord(lease);
    const key = observationKey(record);
    if (observed?.key !== key) observed = { key, at: Date.now() };
    const decision = decideLease({ record, identity, observedAt: observed.at, now });
    if (decision.kind === "follow") return "follow";
    // resourceVersion makes this a compare-and-swap: a 409 means someone else wrote first.
    await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: leaseSpec({ identity, leaseSeconds, decision, now }) } });
    if (decision.kind === "take") log.info({ lease: `${namespace}/${name}`, identity, previous: record.holder || undefined }, "acquired the lease");
    return "held";
  };

  const loop = async (): Promise<void> => {
    if (!running) return;
    let result: "held" | "follow" | "failed" = "failed";
    callsEndAt = attemptDeadline({ leader, lastRenew, now: Date.now(), renewDeadlineMs });
    try {
      result = await attempt();
    } catch (error) {
      if (httpStatusOf(error) !== 409) log.warn({ err: error, lease: `${namespace}/${name}` }, "leader election: lease update failed");
    }
    if (!running) return;
    const now = Date.now();
    if (result === "held") {
      lastRenew = now;
      if (!leader) {
        leader = true;
        options.onStartedLeading();
      }
    } else if (leader && (result === "follow" || now - lastRenew >= renewDeadlineMs)) {
      // Someone else holds it, or renewing failed for too long: step down before others may
      // consider the lease expired.
      leader = false;
      log.warn({ lease: `${namespace}/${name}`, identity }, "lost the lease");
      options.onStoppedLeading();
    }
    // Leaders renew on the retry period; candidates retry with a little jitter so that replicas
    // started together do not collide (client-go uses up to 1.2× more; less here keeps the
    // takeover after a leader's death within lease duration + 2 retry periods of its last renewal).
    const delay = leader ? retryPeriodMs : retryPeriodMs * (1 + Math.random() * 0.2);
    timer = setTimeout(() => void loop(), delay);
  };
  void loop();

  return {
    identity,
    isLeader: () => leader,
    stop: async () => {
      running = false;
      clearTimeout(timer);
      if (!leader) return;
      leader = false;
      options.onStoppedLeading();
      callsEndAt = Date.now() + renewDeadlineMs;
      await releaseLease(api, { name, namespace, identity, log });
    },
  };
}
