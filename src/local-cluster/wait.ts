// Waiting for the local cluster to reach a state: used by `cluster up`, the demo and the tests.
// (kube-prepull itself watches; these helpers poll because they wait once, for a few seconds.)
import { setTimeout as sleep } from "node:timers/promises";
import type * as k8s from "@kubernetes/client-node";
import { SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";

/**
 * A start or a wait given up because its AbortSignal fired (SIGINT or SIGTERM: the signal's name is
 * the reason). Whoever started processes has stopped them by the time it reaches the caller.
 */
export class Interrupted extends Error {
  constructor(readonly reason: unknown, outcome?: string) {
    super(`interrupted by ${String(reason)}${outcome ? `: ${outcome}` : ""}`);
  }
}

/** Throws Interrupted once `signal` has fired: the check between two steps of a start. */
export function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Interrupted(signal.reason);
}

/** Waits `ms`, or less when `signal` fires (then throws Interrupted). */
export async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    if (signal?.aborted) throw new Interrupted(signal.reason);
    throw error;
  }
}

export interface PollOptions {
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
  /** Errors that end the wait at once (for example "a component exited"); others are retried. */
  isFatal?: (error: unknown) => boolean;
  /** Ends the wait with Interrupted when it fires. */
  signal?: AbortSignal;
}

/** Calls `check` until it returns a value other than undefined or false, and returns that value. */
export async function pollUntil<T>(check: () => Promise<T | undefined | false>, options: PollOptions): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    throwIfInterrupted(options.signal);
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (options.isFatal?.(error)) throw error;
      lastError = error;
    }
    await pause(options.intervalMs ?? 250, options.signal);
  }
  const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${options.what}${detail}`);
}

/** A namespace's `default` ServiceAccount, which pods need and the controller-manager creates. */
export async function waitForServiceAccount(core: k8s.CoreV1Api, namespace: string, timeoutMs = 60_000, signal?: AbortSignal): Promise<void> {
  await pollUntil(async () => {
    await core.readNamespacedServiceAccount({ name: "default", namespace });
    return true;
  }, { what: `ServiceAccount default in namespace ${namespace}`, timeoutMs, signal });
}

/**
 * Newly registered webhook configurations reach the apiserver's admission chain through an
 * informer: probe with server-side dry runs until kube-prepull's mutation shows.
 */
export async function waitForPrepullWebhook(apps: k8s.AppsV1Api, namespace: string, timeoutMs = 60_000, signal?: AbortSignal): Promise<void> {
  const probe: k8s.V1Deployment = {
    metadata: { name: "kube-prepull-probe" },
    spec: {
      selector: { matchLabels: { probe: "true" } },
      template: { metadata: { labels: { probe: "true" } }, spec: { containers: [{ name: "probe", image: "example.com/probe:1" }] } },
    },
  };
  await pollUntil(async () => {
    const answer = await apps.createNamespacedDeployment({ namespace, body: probe, dryRun: "All" });
    return answer.metadata?.annotations?.[SYSTEM_ANNOTATIONS.request] !== undefined;
  }, { what: `the apiserver to call kube-prepull's webhook in namespace ${namespace}`, timeoutMs, signal });
}
