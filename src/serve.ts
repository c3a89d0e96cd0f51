// `kube-prepull serve` as a library: admission over HTTPS, operations endpoints, the controller,
// and (for runs outside a cluster) self-registration of the webhook configurations with a url.
// The CLI, the demo and the tests start it with startServe(); only the CLI reads the environment.
import * as k8s from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { renderWebhookConfigurations, type InstallMode } from "./admission/webhook-configuration.js";
import { startController, type RunningController } from "./controller/controller.js";
import type { ControllerConfig } from "./controller/reconcile.js";
import { createClusterActions, errorCode } from "./kube/cluster-actions.js";
import { startLeaderElection, type LeaderElection } from "./kube/leader-election.js";
import { createMetrics, type Metrics } from "./observability/metrics.js";
import { createAdmissionApp } from "./server/admission-app.js";
import { startHttpsServer, startOpsServer, type RunningServer, type TlsMaterial } from "./server/servers.js";
import { startSelfManagedTls, type SelfManagedTls, type SelfManagedTlsOptions } from "./tls/certificate-manager.js";
import { createCertificateAuthority, issueCertificate } from "./tls/certificates.js";

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
    if (errorCode(error) !== 404) throw error;
    await create();
  }
}

export async function startServe(options: ServeOptions): Promise<RunningServe> {
  const now = options.now ?? (() => new Date());
  const log = options.log ?? pino({ level: options.logLevel ?? "info", base: { component: "kube-prepull" } });
  const metrics = createMetrics({ defaultMetrics: true });
  let controller: RunningController | undefined;
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
  const ops: RunningServer = await startOpsServer({
    host: options.host,
    port: options.opsPort,
    registry: metrics.registry,
    // Every replica serves admission; self-managed certificates: once every webhook trusts the
    // certificate served; the replica running the controller: once its caches are synced.
    isReady: () => (selfManaged?.isReady() ?? true) && (controller === undefined || controller.hasSynced()),
  });
  let served: TlsMaterial = tls;
  const reload = options.tlsReload;
  const reloadTimer = reload
    ? setInterval(() => {
        try {
          const next = reload.load();
          if (next.certPem === served.certPem && next.keyPem === served.keyPem) return;
          admission.setCertificate(next); // throws on a mismatched or half-written pair: keep the old one
          served = next;
          log.info("serving certificate reloaded");
        } catch (error) {
          log.warn({ err: error }, "serving certificate not reloaded; keeping the current one");
        }
      }, reload.intervalMs)
    : undefined;
  reloadTimer?.unref();
  log.info({ admission: `https://${options.host}:${admission.port}`, ops: `http://${options.host}:${ops.port}` }, "serving");

  const admissionApi = options.kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
  if (options.register) {
    const { mutating, validating } = renderWebhookConfigurations({
      name: options.register.name,
      mode: options.register.mode,
      ownNamespace: options.register.ownNamespace,
      target: { url: `https://${options.host}:${admission.port}`, caBundlePem: tls.caPem },
      timeoutSeconds: 5,
    });
    const name = options.register.name;
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
    log.info({ name, mode: options.register.mode }, "webhook configurations registered");
  }

  const runController = (): void => {
    controller = startController({
      kubeConfig: options.kubeConfig,
      actions: createClusterActions(options.kubeConfig, "kube-prepull"),
      config: options.controller,
      log,
      metrics,
      now,
    });
  };
  const stopController = (): void => {
    controller?.stop();
    controller = undefined;
  };
  let election: LeaderElection | undefined;
  if (options.runController && options.leaderElection) {
    election = await startLeaderElection({
      kubeConfig: options.kubeConfig,
      ...options.leaderElection,
      log,
      onStartedLeading: () => {
        log.info("leading: starting the controller");
        metrics.leader.set(1);
        runController();
      },
      onStoppedLeading: () => {
        log.info("no longer leading: stopping the controller");
        metrics.leader.set(0);
        stopController();
      },
    });
  } else if (options.runController) {
    metrics.leader.set(1);
    runController();
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
      stopController();
      if (options.register?.removeOnStop) {
        const name = options.register.name;
        await admissionApi.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
        await admissionApi.deleteValidatingWebhookConfiguration({ name }).catch(() => undefined);
      }
      await Promise.all([admission.close(), ops.close()]);
    },
  };
}
