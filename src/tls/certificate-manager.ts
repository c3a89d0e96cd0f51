// Self-managed certificates, the effectful part (decisions in self-managed.ts, object shapes in
// self-managed-objects.ts): keeps the Secret's certificates current, serves the Secret's serving
// certificate, and keeps the CA bundle in both
// webhook configurations' caBundle — re-injecting it when something (a GitOps tool re-applying
// the manifests) overwrites it. Every replica runs this; writes carry the resourceVersion read, so
// two replicas racing settle on one Secret (409 → re-read, as open-policy-agent/cert-controller).
//
// Triggers: watches on the Secret and the two configurations (one object each, by field selector,
// which is what lets RBAC restrict them by resourceNames), and a timer at the next renewal time.
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { Reflector, type ReflectorOptions } from "../kube/reflector.js";
import type { TlsMaterial } from "../server/servers.js";
import {
  applyCertificateAction, caBundleOf, decideCertificateAction, decodeSecretData,
  type CertificateAction, type CertificatePolicy, type CertificateSet,
} from "./self-managed.js";
import { base64Bundle, caBundlePatch, certificateSecret, configurationsTrust, recheckDelayMs } from "./self-managed-objects.js";
import { httpStatusOf } from "../kube/api-errors.js";

export interface SelfManagedTlsOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  secretName: string;
  /** Name of the mutating and the validating webhook configuration to inject the CA into. */
  webhookName: string;
  policy: CertificatePolicy;
  /** Longest time between two checks (the timer is set sooner when a renewal is due sooner). */
  checkIntervalMs: number;
  log: Logger;
  now: () => Date;
  /** Called when the Secret's serving certificate changed (a renewal by this or another replica). */
  onServingCertificate: (tls: TlsMaterial) => void;
}

export interface SelfManagedTls {
  /** The serving certificate and the trusted CA bundle, as last read from the Secret. */
  current: () => TlsMaterial & { caPem: string };
  /** Every webhook of both configurations trusts the certificate being served. */
  isReady: () => boolean;
  stop: () => void;
}

type WebhookConfiguration = k8s.V1MutatingWebhookConfiguration | k8s.V1ValidatingWebhookConfiguration;
type CertificateChange = Exclude<CertificateAction, { kind: "keep" }>;

const FIELD_MANAGER = "kube-prepull";
/** Write conflicts tolerated in one sync before it fails (each one means another replica wrote). */
const MAX_CONFLICT_RETRIES = 5;
const RETRY_AFTER_FAILURE_MS = 5000;

export async function startSelfManagedTls(options: SelfManagedTlsOptions): Promise<SelfManagedTls> {
  const manager = new CertificateManager(options);
  await manager.start();
  return { current: () => manager.current(), isReady: () => manager.isReady(), stop: () => manager.stop() };
}

/** The state every trigger shares, and the steps of one reconcile. */
class CertificateManager {
  private readonly core: k8s.CoreV1Api;
  private readonly admission: k8s.AdmissionregistrationV1Api;
  private readonly jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
  private readonly mutating: Reflector<k8s.V1MutatingWebhookConfiguration>;
  private readonly validating: Reflector<k8s.V1ValidatingWebhookConfiguration>;
  private readonly secrets: Reflector<k8s.V1Secret>;

  private set: CertificateSet | undefined;
  private signerTrustedSince: Date | undefined;
  private ready = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** The serving certificate last handed to the server. */
  private served: TlsMaterial | undefined;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(private readonly options: SelfManagedTlsOptions) {
    const { kubeConfig, namespace, secretName, webhookName, log } = options;
    this.core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.admission = kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
    const watchOne = <T extends k8s.KubernetesObject>(name: string, path: string, objectName: string, list: ReflectorOptions<T>["list"]): Reflector<T> =>
      new Reflector<T>({ name, kubeConfig, path, fieldSelector: `metadata.name=${objectName}`, list, onEvent: () => this.trigger(), log });
    this.mutating = watchOne("mutatingwebhookconfigurations", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
      webhookName, (p) => this.admission.listMutatingWebhookConfiguration(p));
    this.validating = watchOne("validatingwebhookconfigurations", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
      webhookName, (p) => this.admission.listValidatingWebhookConfiguration(p));
    this.secrets = watchOne("secrets", `/api/v1/namespaces/${namespace}/secrets`, secretName,
      (p) => this.core.listNamespacedSecret({ namespace, ...p }));
  }

  /**
   * A usable Secret first (created by whichever replica gets there first), so the server starts
   * with a certificate; failures here are start-up errors (the pod restarts). Then the watches.
   */
  async start(): Promise<void> {
    await this.syncSecret();
    this.served = this.set!.serving;
    for (const reflector of this.reflectors()) reflector.start();
    this.trigger();
  }

  current(): TlsMaterial & { caPem: string } {
    return { ...this.set!.serving, caPem: caBundleOf(this.set!) };
  }

  isReady(): boolean {
    return this.ready;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const reflector of this.reflectors()) reflector.stop();
  }

  private reflectors(): Reflector<k8s.KubernetesObject>[] {
    return [this.secrets, this.mutating, this.validating];
  }

  /** Runs one reconcile at a time; a trigger during a run causes one more run after it. */
  private trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.reconcile()
      .catch((error: unknown) => {
        this.options.log.warn({ err: error }, "certificate reconcile failed; retrying");
        this.schedule(new Date(this.options.now().getTime() + RETRY_AFTER_FAILURE_MS));
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.trigger();
        }
      });
  }

  private schedule(at: Date | undefined): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => this.trigger(), recheckDelayMs(at, this.options.now(), this.options.checkIntervalMs));
    this.timer.unref();
  }

  private async reconcile(): Promise<void> {
    let recheckAt = await this.syncSecret();
    this.handOverServingCertificate();
    if (this.mutating.hasSynced() && this.validating.hasSynced()) recheckAt = await this.syncConfigurations();
    this.schedule(recheckAt);
  }

  /** Tells the server when the Secret's serving certificate changed (a renewal by any replica). */
  private handOverServingCertificate(): void {
    const { set, served } = this;
    if (set && (served?.certPem !== set.serving.certPem || served.keyPem !== set.serving.keyPem)) {
      if (served) this.options.onServingCertificate(set.serving);
      this.served = set.serving;
    }
  }

  /** Injects the CA bundle, then notes what the webhooks trust; returns when to check again. */
  private async syncConfigurations(): Promise<Date | undefined> {
    const { policy, now } = this.options;
    await this.inject(this.mutating.list()[0], "mutating");
    await this.inject(this.validating.list()[0], "validating");
    const trust = (certPem: string): boolean => configurationsTrust(this.mutating.list(), this.validating.list(), certPem);
    const signerTrusted = this.set !== undefined && trust(this.set.signer.certPem);
    if (signerTrusted && !this.signerTrustedSince) this.signerTrustedSince = now();
    if (!signerTrusted) this.signerTrustedSince = undefined;
    this.ready = this.set !== undefined && trust(this.set.serving.certPem);
    // What is due next, now that it is known since when the webhooks trust the signer.
    const next = decideCertificateAction({ set: this.set, now: now(), policy, signerTrustedSince: this.signerTrustedSince });
    return next.kind === "keep" ? next.recheckAt : now();
  }

  /** Reads the Secret, carries out what is due, writes it back; retries on a write conflict. */
  private async syncSecret(): Promise<Date | undefined> {
    const { policy, now } = this.options;
    for (let attempt = 0; ; attempt++) {
      const secret = await this.readSecret(attempt);
      const stored = decodeSecretData(secret?.data);
      const action = decideCertificateAction({ set: stored, now: now(), policy, signerTrustedSince: this.signerTrustedSince });
      if (action.kind === "keep") {
        this.set = stored;
        return action.recheckAt;
      }
      // After a write (or a conflict) the next pass re-reads from the apiserver and decides again.
      await this.writeSecret(secret, stored, action, attempt);
    }
  }

  /** The watch's copy first (no request per trigger); after a conflict, the apiserver's. */
  private async readSecret(attempt: number): Promise<k8s.V1Secret | undefined> {
    const { namespace, secretName } = this.options;
    const cached = attempt === 0 && this.secrets.hasSynced() ? this.secrets.get(namespace, secretName) : undefined;
    if (cached) return cached;
    try {
      return await this.core.readNamespacedSecret({ name: secretName, namespace });
    } catch (error) {
      if (httpStatusOf(error) !== 404) throw error;
      return undefined;
    }
  }

  private async writeSecret(secret: k8s.V1Secret | undefined, stored: CertificateSet | undefined, action: CertificateChange, attempt: number): Promise<void> {
    const { namespace, secretName, policy, log, now } = this.options;
    const next = applyCertificateAction(stored, action, now(), policy)!;
    const body = certificateSecret({ name: secretName, namespace, resourceVersion: secret?.metadata?.resourceVersion, set: next });
    try {
      if (secret) await this.core.replaceNamespacedSecret({ name: secretName, namespace, body, fieldManager: FIELD_MANAGER });
      else await this.core.createNamespacedSecret({ namespace, body, fieldManager: FIELD_MANAGER });
      log.info({ secret: `${namespace}/${secretName}`, action: action.kind, reason: action.reason }, "certificates updated");
      this.set = next;
      if (action.kind === "rotate-ca" || action.kind === "create") this.signerTrustedSince = undefined;
    } catch (error) {
      // Another replica wrote first (409 on update, AlreadyExists on create): use what it wrote.
      if (httpStatusOf(error) !== 409 || attempt >= MAX_CONFLICT_RETRIES) throw error;
      log.debug({ action: action.kind }, "certificate Secret changed meanwhile; re-reading");
    }
  }

  /** Sets every webhook's caBundle to the trusted bundle (JSON patch: `test` guards against reordering). */
  private async inject(config: WebhookConfiguration | undefined, kind: "mutating" | "validating"): Promise<void> {
    if (!config || !this.set) return;
    const body = caBundlePatch(config.webhooks ?? [], base64Bundle(caBundleOf(this.set)));
    if (body.length === 0) return;
    const { webhookName, log } = this.options;
    const patch = { name: webhookName, body, fieldManager: FIELD_MANAGER };
    try {
      if (kind === "mutating") await this.admission.patchMutatingWebhookConfiguration(patch, this.jsonPatch);
      else await this.admission.patchValidatingWebhookConfiguration(patch, this.jsonPatch);
      log.info({ configuration: `${kind}/${webhookName}` }, "CA bundle injected");
    } catch (error) {
      // 422: the webhooks were reordered meanwhile; 404: deleted. The watch event brings another pass.
      if (httpStatusOf(error) !== 422 && httpStatusOf(error) !== 404) throw error;
    }
  }
}
