// `kube-prepull serve` as a library: admission over HTTPS, operations endpoints, the controller,
// and (for runs outside a cluster) self-registration of the webhook configurations with a url.
// The CLI, the demo and the tests start it with startServe(); only the CLI reads the environment.
import * as k8s from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { renderWebhookConfigurations, WEBHOOK_TIMEOUT_SECONDS, type InstallMode } from "./admission/webhook-configuration.js";
import { startController, type RunningController } from "./controller/controller.js";
import type { ControllerConfig } from "./controller/reconcile.js";
import { createClusterActions } from "./kube/cluster-actions.js";
import { startLeaderElection, type LeaderElection } from "./kube/leader-election.js";
import { createMetrics, type Metrics } from "./observability/metrics.js";
import { createAdmissionApp } from "./server/admission-app.js";
import { startHttpsServer, startOpsServer, type RunningHttpsServer, type RunningServer, type TlsMaterial } from "./server/servers.js";
import { startSelfManagedTls, type SelfManagedTls, type SelfManagedTlsOptions } from "./tls/certificate-manager.js";
import { createCertificateAuthority, issueCertificate } from "./tls/certificates.js";
import { httpStatusOf } from "./kube/api-errors.js";

export interface ServeOptions {
  kubeConfig: k8s.KubeConfig;
  host: string;
  port: number;
  opsPort: number;
  /** Serving certificate; when absent, a CA and certificate for `host` are generated in memory. */
  tls?: TlsMaterial & { caPem: string };
  /**
   * Where to re-read the serving certificate from (mounted Secret files that cert-manager or a
   * user renews): checked every `intervalMs`, swapped in without a restart when it changed.
   */
  tlsReload?: { load: () => TlsMaterial; intervalMs: number };
  /**
   * Self-managed certificates (spec §5): kept in this Secret of `namespace`, injected into the
   * webhook configurations named `webhookName`, renewed before expiry. Excludes `tls`.
   */
  selfManagedTls?: Omit<SelfManagedTlsOptions, "kubeConfig" | "log" | "now" | "onServingCertificate">;
  /** Register the webhook configurations with this name, pointing at https://host:port. */
  register?: { name: string; mode: InstallMode; ownNamespace: string; removeOnStop: boolean };
  controller: ControllerConfig;
  /** Run the controller (false: admission only). */
  runController: boolean;
  /** Run the controller only while holding this Lease (several replicas); absent: always. */
  leaderElection?: { namespace: string; name: string; identity?: string };
  log?: Logger;
  logLevel?: string;
  now?: () => Date;
}

export interface RunningServe {
  admissionPort: number;
  opsPort: number;
  metrics: Metrics;
  caPem: string;
  stop: () => Promise<void>;
}

export function generateLocalTls(host: string, now: Date): TlsMaterial & { caPem: string } {
  const notBefore = new Date(now.getTime() - 3600_000);
  const notAfter = new Date(now.getTime() + 365 * 24 * 3600_000);
  const ca = createCertificateAuthority({ commonName: "kube-prepull-local-ca", notBefore, notAfter });
  const isIp = /^[0-9.]+$|:/.test(host);
  const leaf = issueCertificate(ca, {
    commonName: "kube-prepull",
    ...(isIp ? { ipAddresses: [host] } : { dnsNames: [host] }),
    usage: "server",
    notBefore,
    notAfter,
  });
  return { ...leaf, caPem: ca.certPem };
}

async function applyObject<T extends k8s.KubernetesObject>(
  read: () => Promise<T>,
  create: () => Promise<unknown>,
  replace: (resourceVersion: string) => Promise<unknown>,
): Promise<void> {
  try {
    const existing = await read();
    await replace(existing.metadata!.resourceVersion!);
  } catch (error) {
    if (httpStatusOf(error) !== 404) throw error;
    await create();
  }
}

/** The controller while this replica runs it; readiness and shutdown look here. */
interface ControllerSlot {
  start: () => void;
  stop: () => void;
  /** True when no controller runs here, or the running one has synced its caches. */
  isReady: () => boolean;
}

function controllerSlot(startOne: () => RunningController): ControllerSlot {
  let controller: RunningController | undefined;
  return {
    start: () => {
      controller = startOne();
    },
    stop: () => {
      controller?.stop();
      controller = undefined;
    },
    isReady: () => controller === undefined || controller.hasSynced(),
  };
}

interface AdmissionEdge {
  selfManaged: SelfManagedTls | undefined;
  tls: TlsMaterial & { caPem: string };
  admission: RunningHttpsServer;
}

/** Starts the HTTPS admission server with its certificate: self-managed, given, or generated. */
async function startAdmissionEdge(options: ServeOptions, log: Logger, metrics: Metrics, now: () => Date): Promise<AdmissionEdge> {
  let renewServing = (_tls: TlsMaterial): void => undefined; // bound once the server listens
  const selfManaged: SelfManagedTls | undefined = options.selfManagedTls
    ? await startSelfManagedTls({
        ...options.selfManagedTls,
        kubeConfig: options.kubeConfig,
        log,
        now,
        onServingCertificate: (next) => renewServing(next),
      })
    : undefined;
  const tls = selfManaged?.current() ?? options.tls ?? generateLocalTls(options.host, now());

  const admission = await startHttpsServer(createAdmissionApp({ log, metrics, now }), {
    host: options.host,
    port: options.port,
    tls,
  });
  if (selfManaged) {
    renewServing = (next) => {
      admission.setCertificate(next);
      log.info("serving certificate renewed from the Secret");
    };
    admission.setCertificate(selfManaged.current()); // a renewal while the server was starting
  }
  return { selfManaged, tls, admission };
}

/** Re-reads the serving certificate every `intervalMs` and swaps it in when it changed. */
function reloadServingCertificate(
  admission: RunningHttpsServer,
  initial: TlsMaterial,
  reload: NonNullable<ServeOptions["tlsReload"]>,
  log: Logger,
): NodeJS.Timeout {
  let served = initial;
  const timer = setInterval(() => {
    try {
      const next = reload.load();
      if (next.certPem === served.certPem && next.keyPem === served.keyPem) return;
      admission.setCertificate(next); // throws on a mismatched or half-written pair: keep the old one
      served = next;
      log.info("serving certificate reloaded");
    } catch (error) {
      log.warn({ err: error }, "serving certificate not reloaded; keeping the current one");
    }
  }, reload.intervalMs);
  timer.unref();
  return timer;
}

/** Creates or replaces both webhook configurations, pointing at `url`. */
async function registerWebhooks(
  admissionApi: k8s.AdmissionregistrationV1Api,
  register: NonNullable<ServeOptions["register"]>,
  url: string,
  caBundlePem: string,
  log: Logger,
): Promise<void> {
  const { mutating, validating } = renderWebhookConfigurations({
    name: register.name,
    mode: register.mode,
    ownNamespace: register.ownNamespace,
    target: { url, caBundlePem },
    timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
  });
  const name = register.name;
  await applyObject(
    () => admissionApi.readMutatingWebhookConfiguration({ name }),
    () => admissionApi.createMutatingWebhookConfiguration({ body: mutating }),
    (rv) => admissionApi.replaceMutatingWebhookConfiguration({ name, body: { ...mutating, metadata: { ...mutating.metadata, resourceVersion: rv } } }),
  );
  await applyObject(
    () => admissionApi.readValidatingWebhookConfiguration({ name }),
    () => admissionApi.createValidatingWebhookConfiguration({ body: validating }),
    (rv) => admissionApi.replaceValidatingWebhookConfiguration({ name, body: { ...validating, metadata: { ...validating.metadata, resourceVersion: rv } } }),
  );
  log.info({ name, mode: register.mode }, "webhook configurations registered");
}

/** Best effort: a configuration already gone (or out of reach) must not stop the shutdown. */
async function unregisterWebhooks(admissionApi: k8s.AdmissionregistrationV1Api, name: string): Promise<void> {
  await admissionApi.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
  await admissionApi.deleteValidatingWebhookConfiguration({ name }).catch(() => undefined);
}

/**
 * Starts the controller when asked: under leader election when a Lease is named (returned, to be
 * stopped), at once otherwise.
 */
async function startControllerRole(
  options: ServeOptions,
  controller: ControllerSlot,
  log: Logger,
  metrics: Metrics,
): Promise<LeaderElection | undefined> {
  if (!options.runController) return undefined;
  if (!options.leaderElection) {
    metrics.leader.set(1);
    controller.start();
    return undefined;
  }
  return startLeaderElection({
    kubeConfig: options.kubeConfig,
    ...options.leaderElection,
    log,
    onStartedLeading: () => {
      log.info("leading: starting the controller");
      metrics.leader.set(1);
      controller.start();
    },
    onStoppedLeading: () => {
      log.info("no longer leading: stopping the controller");
      metrics.leader.set(0);
      controller.stop();
    },
  });
}

export async function startServe(options: ServeOptions): Promise<RunningServe> {
  const now = options.now ?? (() => new Date());
  const log = options.log ?? pino({ level: options.logLevel ?? "info", base: { component: "kube-prepull" } });
  const metrics = createMetrics({ defaultMetrics: true });
  const controller = controllerSlot(() =>
    startController({
      kubeConfig: options.kubeConfig,
      actions: createClusterActions(options.kubeConfig, "kube-prepull"),
      config: options.controller,
      log,
      metrics,
      now,
    }),
  );
  const { selfManaged, tls, admission } = await startAdmissionEdge(options, log, metrics, now);
  const ops: RunningServer = await startOpsServer({
    host: options.host,
    port: options.opsPort,
    registry: metrics.registry,
    // Every replica serves admission; self-managed certificates: once every webhook trusts the
    // certificate served; the replica running the controller: once its caches are synced.
    isReady: () => (selfManaged?.isReady() ?? true) && controller.isReady(),
  });
  const reloadTimer = options.tlsReload ? reloadServingCertificate(admission, tls, options.tlsReload, log) : undefined;
  log.info({ admission: `https://${options.host}:${admission.port}`, ops: `http://${options.host}:${ops.port}` }, "serving");

  const admissionApi = options.kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
  let election: LeaderElection | undefined;
  try {
    if (options.register) {
      await registerWebhooks(admissionApi, options.register, `https://${options.host}:${admission.port}`, tls.caPem, log);
    }
    election = await startControllerRole(options, controller, log, metrics);
  } catch (error) {
    // A start that fails (the apiserver unreachable, the Lease's namespace missing) must not leave
    // the servers listening: they would keep a `serve` process alive that never said it serves.
    clearInterval(reloadTimer);
    selfManaged?.stop();
    controller.stop();
    await Promise.all([admission.close(), ops.close()]);
    throw error;
  }

  return {
    admissionPort: admission.port,
    opsPort: ops.port,
    metrics,
    caPem: tls.caPem,
    stop: async () => {
      clearInterval(reloadTimer);
      selfManaged?.stop();
      if (election) await election.stop();
      controller.stop();
      if (options.register?.removeOnStop) await unregisterWebhooks(admissionApi, options.register.name);
      await Promise.all([admission.close(), ops.close()]);
    },
  };
}
