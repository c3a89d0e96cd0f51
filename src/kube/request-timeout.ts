// A bound on how long one API call of the controller may take. client-node sets none: during an
// etcd outage a write waits for the apiserver's own 60 s request timeout, and the controller's one
// worker with it, so holds that fell due were released ~30 s after the control plane was back
// (docs/reliability.md). Watches are not affected (they do not pass through here).
import * as k8s from "@kubernetes/client-node";

/** Writes (and reads) of single objects: far above their usual milliseconds, far below 60 s. */
export const API_CALL_TIMEOUT_MS = 10_000;

class TimedKubeConfig extends k8s.KubeConfig {
  constructor(private readonly timeoutMs: number) {
    super();
  }

  override async applySecurityAuthentication(context: Parameters<k8s.KubeConfig["applySecurityAuthentication"]>[0]): Promise<void> {
    await super.applySecurityAuthentication(context);
    if (!context.getSignal()) context.setSignal(AbortSignal.timeout(this.timeoutMs));
  }
}

/** A copy of `kubeConfig` whose API clients abort a call after `timeoutMs` (an AbortError: retried as unavailable). */
export function withCallTimeout(kubeConfig: k8s.KubeConfig, timeoutMs = API_CALL_TIMEOUT_MS): k8s.KubeConfig {
  const timed = new TimedKubeConfig(timeoutMs);
  timed.loadFromOptions({ clusters: kubeConfig.clusters, users: kubeConfig.users, contexts: kubeConfig.contexts, currentContext: kubeConfig.getCurrentContext() });
  return timed;
}
