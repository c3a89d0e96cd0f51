// A bound on how long one API call of the controller may take. client-node sets none: during an
// etcd outage a write waits for the apiserver's own 60 s request timeout, and the controller's one
// worker with it, so holds that fell due were released ~30 s after the control plane was back
// (docs/reliability.md). Watches are not affected (they do not pass through here). Leader election
// gives each lease call its own deadline through withCallSignal (src/kube/leader-election.ts).
import * as k8s from "@kubernetes/client-node";

/** Writes (and reads) of single objects: far above their usual milliseconds, far below 60 s. */
export const API_CALL_TIMEOUT_MS = 10_000;

class SignalledKubeConfig extends k8s.KubeConfig {
  constructor(private readonly signalFor: () => AbortSignal) {
    super();
  }

  override async applySecurityAuthentication(context: Parameters<k8s.KubeConfig["applySecurityAuthentication"]>[0]): Promise<void> {
    await super.applySecurityAuthentication(context);
    if (!context.getSignal()) context.setSignal(this.signalFor());
  }
}

/** A copy of `kubeConfig` whose API clients end each call when `signalFor()` (asked at the call) aborts. */
export function withCallSignal(kubeConfig: k8s.KubeConfig, signalFor: () => AbortSignal): k8s.KubeConfig {
  const signalled = new SignalledKubeConfig(signalFor);
  signalled.loadFromOptions({ clusters: kubeConfig.clusters, users: kubeConfig.users, contexts: kubeConfig.contexts, currentContext: kubeConfig.getCurrentContext() });
  return signalled;
}

/** A copy of `kubeConfig` whose API clients abort a call after `timeoutMs` (an AbortError: retried as unavailable). */
export function withCallTimeout(kubeConfig: k8s.KubeConfig, timeoutMs = API_CALL_TIMEOUT_MS): k8s.KubeConfig {
  return withCallSignal(kubeConfig, () => AbortSignal.timeout(timeoutMs));
}
