// `kube-prepull serve`: the webhook and the controller in one process (spec §5).
import { readFileSync } from "node:fs";
import * as k8s from "@kubernetes/client-node";
import { Command, InvalidArgumentError, Option } from "commander";
import { SCHEDULING_GRACE_DEFAULT_SECONDS, type ControllerConfig } from "../controller/reconcile.js";
import { admissionPath } from "../admission/paths.js";
import { parseDuration } from "../prepull/annotations.js";
import { startServe, type ServeOptions } from "../serve.js";
import { DEFAULT_POLICY_DURATIONS, serviceDnsNames, splitSubjectAltNames } from "../tls/self-managed.js";
import { DEFAULT_HELPER_IMAGE } from "../version.js";
import { WORKLOADS } from "../workloads/kinds.js";
import { parsePositiveInteger, type CliContext } from "./cluster-command.js";
import { UsageError } from "./exit-codes.js";

export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port from 0 to 65535, got "${value}"`);
  return n;
}

export function parseDurationOption(value: string): number {
  const seconds = parseDuration(value);
  if (seconds === undefined || seconds === 0) throw new InvalidArgumentError(`expected a duration such as "30s", "15m" or "1h30m", got "${value}"`);
  return seconds;
}

/** Collects repeated key=value options into a map. */
export function collectKeyValue(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

interface ServeFlags {
  kubeconfig?: string;
  host: string;
  port: number;
  opsPort: number;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsCaFile?: string;
  tlsSecret?: string;
  serviceName: string;
  tlsSan: string[];
  tlsValidity: number;
  tlsCaValidity: number;
  register: boolean;
  webhookName: string;
  installMode: "opt-in" | "cluster-wide";
  namespace: string;
  controller: boolean;
  helperImage: string;
  pullStrategy: "init-containers" | "image-volumes";
  prepullPodLabel: Record<string, string>;
  prepullPodAnnotation: Record<string, string>;
  priorityClass?: string;
  cleanupTtl: number;
  schedulingGrace: number;
  maxConcurrentPrepulls: number;
  leaderElect: boolean;
  leaderElectionNamespace?: string;
  leaderElectionId: string;
  logLevel: string;
}

export function loadKubeConfig(path: string | undefined): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault(); // $KUBECONFIG, ~/.kube/config, then in-cluster
  return kc;
}

/** The end of `serve --help`: the paths the webhook configurations point at, and the operations endpoints. */
export function servePathsHelp(): string {
  const rows = WORKLOADS.map((w) => `  ${admissionPath("mutate", w).padEnd(26)}${admissionPath("validate", w)}`);
  return [
    "",
    "Webhook paths (HTTPS on --port; a webhook configuration's service.path or url names one):",
    ...rows,
    "Operations (HTTP on --ops-port): /healthz, /readyz, /metrics",
  ].join("\n");
}

export function serveCommand(ctx: CliContext, onStop: (stop: () => Promise<void>) => void): Command {
  return new Command("serve")
    .description("run the admission webhook (HTTPS) and the controller")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
    .option("--host <address>", "address to listen on (in a cluster: the pod IP)", "127.0.0.1")
    .option("--port <port>", "HTTPS port for admission", parsePort, 8443)
    .option("--ops-port <port>", "HTTP port for /healthz, /readyz and /metrics", parsePort, 8080)
    .option("--tls-cert-file <path>", "serving certificate (PEM), re-read every 30 s so renewals need no restart; without it one is generated for --host")
    .option("--tls-key-file <path>", "serving certificate's key (PEM)")
    .option("--tls-ca-file <path>", "CA of the serving certificate, for --register")
    .option("--tls-secret <name>", "self-managed certificates: a CA and the serving certificate kept in this Secret of --namespace (created if missing), the CA injected into the webhook configurations named --webhook-name, renewed before expiry")
    .option("--service-name <name>", "Service the apiserver calls the webhook through: its DNS names go into the self-managed certificate", "kube-prepull")
    .option("--tls-san <name-or-ip>", "extra DNS name or IP address for the self-managed certificate (repeatable)", (v: string, prev: string[] = []) => [...prev, v], [])
    .addOption(new Option("--tls-validity <duration>", "lifetime of a self-managed serving certificate; renewed after two thirds of it")
      .argParser(parseDurationOption).default(DEFAULT_POLICY_DURATIONS.servingValiditySeconds, "8760h"))
    .addOption(new Option("--tls-ca-validity <duration>", "lifetime of the self-managed CA; a new one is trusted next to it after two thirds of it")
      .argParser(parseDurationOption).default(DEFAULT_POLICY_DURATIONS.caValiditySeconds, "87600h"))
    .option("--register", "register the webhook configurations with a url client config (runs outside a cluster)", false)
    .option("--webhook-name <name>", "name of the webhook configurations", "kube-prepull")
    .addOption(new Option("--install-mode <mode>", "which namespaces the webhooks registered by --register cover").choices(["opt-in", "cluster-wide"]).default("opt-in"))
    .option("--namespace <name>", "kube-prepull's own namespace (never covered)", "kube-prepull")
    .option("--no-controller", "serve admission only")
    .option("--helper-image <image>", "image holding the static prepull helper", DEFAULT_HELPER_IMAGE)
    .addOption(new Option("--pull-strategy <strategy>", "how prepull pods pull: init containers running the helper (any cluster) or image volumes (Kubernetes >= 1.35, containerd >= 2.1 or CRI-O >= 1.31)")
      .choices(["init-containers", "image-volumes"]).default("init-containers"))
    .option("--prepull-pod-label <key=value>", "extra label on prepull pods (repeatable)", collectKeyValue, {})
    .option("--prepull-pod-annotation <key=value>", "extra annotation on prepull pods (repeatable)", collectKeyValue, {})
    .option("--priority-class <name>", "priorityClassName of prepull pods")
    .addOption(new Option("--cleanup-ttl <duration>", "delete a finished prepull's DaemonSet after this long even if the rollout has not completed")
      .argParser(parseDurationOption).default(900, "15m"))
    .addOption(new Option("--scheduling-grace <duration>", "after this long, prepull pods that cannot be scheduled stop counting")
      .argParser(parseDurationOption).default(SCHEDULING_GRACE_DEFAULT_SECONDS, `${SCHEDULING_GRACE_DEFAULT_SECONDS}s`))
    .option("--max-concurrent-prepulls <n>", "cluster-wide cap on prepulls pulling at once; more wait in a queue", (v) => parsePositiveInteger(v, 10000, 1), 20)
    .option("--no-leader-elect", "run the controller without a Lease (a single replica only)")
    .option("--leader-election-namespace <name>", "namespace of the Lease (default: --namespace)")
    .option("--leader-election-id <name>", "name of the Lease", "kube-prepull")
    .addOption(new Option("--log-level <level>", "log level").choices(["trace", "debug", "info", "warn", "error"]).default("info"))
    .addHelpText("after", servePathsHelp())
    .action(async (flags: ServeFlags) => runServe(ctx, onStop, flags));
}

/**
 * Flag combinations commander cannot check on its own: UsageErrors, which main.ts prints and exits
 * with 2 (commander's InvalidArgumentError is only printed when commander itself throws it).
 */
function checkServeFlags(flags: ServeFlags): void {
  if (Boolean(flags.tlsCertFile) !== Boolean(flags.tlsKeyFile)) {
    throw new UsageError("--tls-cert-file and --tls-key-file go together");
  }
  if (flags.register && flags.tlsCertFile && !flags.tlsCaFile) {
    throw new UsageError("--register with --tls-cert-file needs --tls-ca-file (the caBundle to register)");
  }
  if (flags.tlsSecret && flags.tlsCertFile) {
    throw new UsageError("--tls-secret (self-managed) and --tls-cert-file (files) are two certificate modes: choose one");
  }
  if (flags.tlsValidity * 3 > flags.tlsCaValidity) {
    // The serving certificate never outlives its CA; a longer one would be renewed over and over.
    throw new UsageError("--tls-validity must be at most a third of --tls-ca-validity");
  }
}

async function runServe(ctx: CliContext, onStop: (stop: () => Promise<void>) => void, flags: ServeFlags): Promise<void> {
  checkServeFlags(flags);
  const running = await startServe(serveOptions(flags, ctx.env));
  ctx.err(`kube-prepull: serving admission on https://${flags.host}:${running.admissionPort}, /healthz /readyz /metrics on http://${flags.host}:${running.opsPort}`);
  onStop(running.stop);
}

function serveOptions(flags: ServeFlags, env: CliContext["env"]): ServeOptions {
  const tlsFiles = tlsFileOptions(flags); // read first: a missing file fails before the kubeconfig is loaded
  return {
    kubeConfig: loadKubeConfig(flags.kubeconfig),
    host: flags.host,
    port: flags.port,
    opsPort: flags.opsPort,
    ...tlsFiles,
    ...selfManagedTlsOptions(flags),
    ...(flags.register
      ? { register: { name: flags.webhookName, mode: flags.installMode, ownNamespace: flags.namespace, removeOnStop: false } }
      : {}),
    runController: flags.controller,
    ...leaderElectionOptions(flags, env),
    controller: controllerConfig(flags),
    logLevel: flags.logLevel,
  };
}

/** --tls-cert-file and --tls-key-file (and --tls-ca-file): the certificate, and where to re-read it from. */
function tlsFileOptions(flags: ServeFlags): Pick<ServeOptions, "tls" | "tlsReload"> {
  if (!flags.tlsCertFile) return {};
  const loadFiles = (): { certPem: string; keyPem: string } => ({
    certPem: readFileSync(flags.tlsCertFile!, "utf8"),
    keyPem: readFileSync(flags.tlsKeyFile!, "utf8"),
  });
  const tls = { ...loadFiles(), caPem: flags.tlsCaFile ? readFileSync(flags.tlsCaFile, "utf8") : "" };
  // Renewed files (a Secret volume updated by cert-manager or by hand) are served within 30 s.
  return { tls, tlsReload: { load: loadFiles, intervalMs: 30_000 } };
}

/** --tls-secret: certificates kept in a Secret, for the Service's DNS names and the --tls-san names. */
function selfManagedTlsOptions(flags: ServeFlags): Pick<ServeOptions, "selfManagedTls"> {
  if (!flags.tlsSecret) return {};
  return {
    selfManagedTls: {
      namespace: flags.namespace,
      secretName: flags.tlsSecret,
      webhookName: flags.webhookName,
      policy: {
        dnsNames: [...serviceDnsNames(flags.serviceName, flags.namespace), ...splitSubjectAltNames(flags.tlsSan).dnsNames],
        ipAddresses: splitSubjectAltNames(flags.tlsSan).ipAddresses,
        caValiditySeconds: flags.tlsCaValidity,
        servingValiditySeconds: flags.tlsValidity,
        // Never longer than a short-lived serving certificate can wait for it.
        caPropagationSeconds: Math.min(DEFAULT_POLICY_DURATIONS.caPropagationSeconds, flags.tlsValidity / 10),
      },
      checkIntervalMs: 10 * 60_000,
    },
  };
}

function leaderElectionOptions(flags: ServeFlags, env: CliContext["env"]): Pick<ServeOptions, "leaderElection"> {
  if (!flags.leaderElect) return {};
  return {
    leaderElection: {
      namespace: flags.leaderElectionNamespace ?? flags.namespace,
      name: flags.leaderElectionId,
      // The pod name (downward API) makes the holder readable in `kubectl get lease`.
      ...(env.POD_NAME ? { identity: `${env.POD_NAME}_${process.pid}` } : {}),
    },
  };
}

function controllerConfig(flags: ServeFlags): ControllerConfig {
  return {
    pod: {
      helperImage: flags.helperImage,
      strategy: flags.pullStrategy,
      extraLabels: flags.prepullPodLabel,
      extraAnnotations: flags.prepullPodAnnotation,
      ...(flags.priorityClass ? { priorityClassName: flags.priorityClass } : {}),
    },
    cleanupTtlSeconds: flags.cleanupTtl,
    schedulingGraceSeconds: flags.schedulingGrace,
    maxConcurrentPrepulls: flags.maxConcurrentPrepulls,
    // Keep-warm lists: ConfigMaps labelled kube-prepull.io/keep-warm=true in --namespace.
    keepWarm: { namespace: flags.namespace },
  };
}
