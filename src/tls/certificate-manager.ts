// Self-managed certificates, the effectful part (decisions in self-managed.ts): keeps the Secret's
// certificates current, serves the Secret's serving certificate, and keeps the CA bundle in both
// webhook configurations' caBundle — re-injecting it when something (a GitOps tool re-applying
// the manifests) overwrites it. Every replica runs this; writes carry the resourceVersion read, so
// two replicas racing settle on one Secret (409 → re-read, as open-policy-agent/cert-controller).
//
// Triggers: watches on the Secret and the two configurations (one object each, by field selector,
// which is what lets RBAC restrict them by resourceNames), and a timer at the next renewal time.
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { errorCode } from "../kube/cluster-actions.js";
import { Reflector } from "../kube/reflector.js";
import type { TlsMaterial } from "../server/servers.js";
import {
  applyCertificateAction, bundleTrusts, caBundleOf, decideCertificateAction, decodeSecretData, encodeSecretData,
  type CertificatePolicy, type CertificateSet,
} from "./self-managed.js";

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

const FIELD_MANAGER = "kube-prepull";

export async function startSelfManagedTls(options: SelfManagedTlsOptions): Promise<SelfManagedTls> {
  const { kubeConfig, namespace, secretName, webhookName, policy, log, now } = options;
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const admission = kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
  const jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);

  let set: CertificateSet | undefined;
  let signerTrustedSince: Date | undefined;
  let ready = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  /** Reads the Secret, carries out what is due, writes it back; retries on a write conflict. */
  const syncSecret = async (): Promise<Date | undefined> => {
    for (let attempt = 0; ; attempt++) {
      // The watch's copy first (no request per trigger); after a conflict, the apiserver's.
      let secret: k8s.V1Secret | undefined = attempt === 0 && secrets.hasSynced() ? secrets.get(namespace, secretName) : undefined;
      if (!secret) {
        try {
          secret = await core.readNamespacedSecret({ name: secretName, namespace });
        } catch (error) {
          if (errorCode(error) !== 404) throw error;
        }
      }
      const stored = decodeSecretData(secret?.data);
      const action = decideCertificateAction({ set: stored, now: now(), policy, signerTrustedSince });
      if (action.kind === "keep") {
        set = stored;
        return action.recheckAt;
      }
      const next = applyCertificateAction(stored, action, now(), policy)!;
      const body: k8s.V1Secret = {
        metadata: {
          name: secretName,
          namespace,
          labels: { "app.kubernetes.io/managed-by": "kube-prepull" },
          ...(secret?.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
        },
        type: "kubernetes.io/tls",
        data: encodeSecretData(next),
      };
      try {
        if (secret) await core.replaceNamespacedSecret({ name: secretName, namespace, body, fieldManager: FIELD_MANAGER });
        else await core.createNamespacedSecret({ namespace, body, fieldManager: FIELD_MANAGER });
        log.info({ secret: `${namespace}/${secretName}`, action: action.kind, reason: action.reason }, "certificates updated");
        set = next;
        if (action.kind === "rotate-ca" || action.kind === "create") signerTrustedSince = undefined;
      } catch (error) {
        // Another replica wrote first (409 on update, AlreadyExists on create): use what it wrote.
        if (errorCode(error) !== 409 || attempt >= 5) throw error;
        log.debug({ action: action.kind }, "certificate Secret changed meanwhile; re-reading");
      }
    }
  };

  /** Sets every webhook's caBundle to the trusted bundle (JSON patch: `test` guards against reordering). */
  const inject = async (config: WebhookConfiguration | undefined, kind: "mutating" | "validating"): Promise<void> => {
    if (!config || !set) return;
    const bundle = Buffer.from(caBundleOf(set), "utf8").toString("base64");
    const body = (config.webhooks ?? []).flatMap((webhook, i) =>
      webhook.clientConfig.caBundle === bundle
        ? []
        : [
            { op: "test", path: `/webhooks/${i}/name`, value: webhook.name },
            { op: "add", path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle },
          ],
    );
    if (body.length === 0) return;
    const patch = { name: webhookName, body, fieldManager: FIELD_MANAGER };
    try {
      if (kind === "mutating") await admission.patchMutatingWebhookConfiguration(patch, jsonPatch);
      else await admission.patchValidatingWebhookConfiguration(patch, jsonPatch);
      log.info({ configuration: `${kind}/${webhookName}` }, "CA bundle injected");
    } catch (error) {
      // 422: the webhooks were reordered meanwhile; 404: deleted. The watch event brings another pass.
      if (errorCode(error) !== 422 && errorCode(error) !== 404) throw error;
    }
  };

  const configurationsTrust = (certPem: string): boolean => {
    const all = [...mutating.list(), ...validating.list()];
    return mutating.list().length === 1 && validating.list().length === 1 &&
      all.every((c) => (c.webhooks ?? []).length > 0 && (c.webhooks ?? []).every((w) =>
        w.clientConfig.caBundle !== undefined && bundleTrusts(Buffer.from(w.clientConfig.caBundle, "base64").toString("utf8"), certPem)));
  };

  let served: TlsMaterial | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  const reconcile = async (): Promise<void> => {
    let recheckAt = await syncSecret();
    if (set && (served?.certPem !== set.serving.certPem || served.keyPem !== set.serving.keyPem)) {
      if (served) options.onServingCertificate(set.serving);
      served = set.serving;
    }
    if (mutating.hasSynced() && validating.hasSynced()) {
      await inject(mutating.list()[0], "mutating");
      await inject(validating.list()[0], "validating");
      const signerTrusted = set !== undefined && configurationsTrust(set.signer.certPem);
      if (signerTrusted && !signerTrustedSince) signerTrustedSince = now();
      if (!signerTrusted) signerTrustedSince = undefined;
      ready = set !== undefined && configurationsTrust(set.serving.certPem);
      // What is due next, now that it is known since when the webhooks trust the signer.
      const next = decideCertificateAction({ set, now: now(), policy, signerTrustedSince });
      recheckAt = next.kind === "keep" ? next.recheckAt : now();
    }
    schedule(recheckAt);
  };
  /** Runs one reconcile at a time; a trigger during a run causes one more run after it. */
  const trigger = (): void => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = reconcile()
      .catch((error: unknown) => {
        log.warn({ err: error }, "certificate reconcile failed; retrying");
        schedule(new Date(now().getTime() + 5000));
      })
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          trigger();
        }
      });
  };
  const schedule = (at: Date | undefined): void => {
    clearTimeout(timer);
    if (stopped) return;
    const delay = Math.min(options.checkIntervalMs, Math.max(100, (at?.getTime() ?? Infinity) - now().getTime() + 50));
    timer = setTimeout(trigger, delay);
    timer.unref();
  };

  const byName = (name: string): string => `metadata.name=${name}`;
  const mutating = new Reflector<k8s.V1MutatingWebhookConfiguration>({
    name: "mutatingwebhookconfigurations",
    kubeConfig,
    path: "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
    fieldSelector: byName(webhookName),
    list: (p) => admission.listMutatingWebhookConfiguration(p),
    onEvent: trigger,
    log,
  });
  const validating = new Reflector<k8s.V1ValidatingWebhookConfiguration>({
    name: "validatingwebhookconfigurations",
    kubeConfig,
    path: "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
    fieldSelector: byName(webhookName),
    list: (p) => admission.listValidatingWebhookConfiguration(p),
    onEvent: trigger,
    log,
  });
  const secrets = new Reflector<k8s.V1Secret>({
    name: "secrets",
    kubeConfig,
    path: `/api/v1/namespaces/${namespace}/secrets`,
    fieldSelector: byName(secretName),
    list: (p) => core.listNamespacedSecret({ namespace, ...p }),
    onEvent: trigger,
    log,
  });

  // Start-up: a usable Secret first (created by whichever replica gets there first), so the server
  // starts with a certificate; failures here are start-up errors (the pod restarts).
  await syncSecret();
  served = set!.serving;
  for (const reflector of [secrets, mutating, validating]) reflector.start();
  trigger();

  return {
    current: () => ({ ...set!.serving, caPem: caBundleOf(set!) }),
    isReady: () => ready,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      for (const reflector of [secrets, mutating, validating]) reflector.stop();
    },
  };
}
