// `kube-prepull run IMAGE...`: one-shot prepull for CI pipelines, right after `docker push`
// (spec §5). Parses the flags into a RunSpec, runs it (src/run.ts), prints progress on stderr and
// the summary on stdout, and hands back the exit code (exit-codes.ts).
import type * as k8s from "@kubernetes/client-node";
import { Command, InvalidArgumentError, Option } from "commander";
import { pino } from "pino";
import { SCHEDULING_GRACE_DEFAULT_SECONDS } from "../controller/reconcile.js";
import { DEFAULT_SETTINGS, parseMaxParallel, type MaxParallel } from "../prepull/annotations.js";
import { InvalidImageReference } from "../prepull/image-reference.js";
import { runImages, runPlacement, runSummary, type PullPolicy, type RunSpec, type RunSummary } from "../prepull/run.js";
import { runPrepull } from "../run.js";
import type { CliContext } from "./cluster-command.js";
import { exitCodeOfResult, UsageError } from "./exit-codes.js";
import { lineView, summaryLines, terminalView, type ProgressView } from "./run-output.js";
import { DEFAULT_HELPER_IMAGE } from "../version.js";
import { collectKeyValue, loadKubeConfig, parseDurationOption } from "./serve-command.js";

/** The stream progress goes to (stderr), as main.ts sees it. */
export interface ProgressStream {
  isTty: boolean;
  columns: () => number;
  write: (text: string) => void;
}

export interface RunCommandOptions {
  /** SIGINT/SIGTERM as an AbortSignal (its reason is the signal's name); asking installs the handlers. */
  interruption: () => AbortSignal;
  stderr: ProgressStream;
  setExitCode: (code: number) => void;
}

export interface RunFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  // Repeatable flags are undefined when absent: no "(default: {})" in --help.
  nodeSelector?: Record<string, string>;
  toleration?: k8s.V1Toleration[];
  pullSecret?: string[];
  imagePullPolicy?: PullPolicy;
  maxParallel: MaxParallel;
  timeout: number;
  output: "text" | "json";
  helperImage: string;
  prepullPodLabel?: Record<string, string>;
  prepullPodAnnotation?: Record<string, string>;
  priorityClass?: string;
}

/** Plain lines at most this often when stderr is not a terminal. */
const LINE_INTERVAL_MS = 2000;
const TAINT_EFFECTS = new Set(["NoSchedule", "PreferNoSchedule", "NoExecute"]);

export function parseMaxParallelOption(value: string): MaxParallel {
  const parsed = parseMaxParallel(value);
  if (!parsed) throw new InvalidArgumentError(`expected a whole number of nodes (such as 10) or a percentage from 1% to 100% (such as 25%), got "${value}"`);
  return parsed;
}

/**
 * A toleration in the syntax of `kubectl taint`: KEY[=VALUE][:EFFECT] (no VALUE: any value;
 * no EFFECT: every effect), or "*" for every taint. Repeatable.
 */
export function parseToleration(value: string, previous: k8s.V1Toleration[] = []): k8s.V1Toleration[] {
  if (value === "*") return [...previous, { operator: "Exists" }];
  const match = /^([^=:\s]+)(?:=([^:\s]*))?(?::(\w+))?$/.exec(value);
  if (!match || (match[3] !== undefined && !TAINT_EFFECTS.has(match[3]))) {
    throw new InvalidArgumentError(`expected KEY[=VALUE][:EFFECT] with EFFECT NoSchedule, PreferNoSchedule or NoExecute, or "*", got "${value}"`);
  }
  const [, key, taintValue, effect] = match;
  return [
    ...previous,
    { key, ...(taintValue !== undefined ? { operator: "Equal", value: taintValue } : { operator: "Exists" }), ...(effect ? { effect } : {}) },
  ];
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The namespace to run in: --namespace, else the kubeconfig context's, else "default". */
export function namespaceOf(flag: string | undefined, contextNamespace: string | undefined): string {
  return flag ?? contextNamespace ?? "default";
}

/** The kubeconfig with --context applied; an unknown context is a usage error. */
export function kubeConfigFor(flags: Pick<RunFlags, "kubeconfig" | "context">): k8s.KubeConfig {
  const kc = loadKubeConfig(flags.kubeconfig);
  if (flags.context) {
    if (!kc.getContexts().some((c) => c.name === flags.context)) {
      throw new UsageError(`--context: no context "${flags.context}" in the kubeconfig (it has: ${kc.getContexts().map((c) => c.name).join(", ") || "none"})`);
    }
    kc.setCurrentContext(flags.context);
  }
  return kc;
}

/** The run's spec from its arguments, but for the namespace (which may come from the kubeconfig). */
export function runSpecOf(images: string[], flags: RunFlags): Omit<RunSpec, "namespace"> {
  let pulls;
  try {
    pulls = runImages(images, flags.imagePullPolicy);
  } catch (error) {
    if (error instanceof InvalidImageReference) throw new UsageError(error.message);
    throw error;
  }
  return {
    images: pulls,
    placement: runPlacement(flags.nodeSelector ?? {}, flags.toleration ?? []),
    pullSecrets: flags.pullSecret ?? [],
    maxParallel: flags.maxParallel,
    timeoutSeconds: flags.timeout,
    pod: {
      helperImage: flags.helperImage,
      extraLabels: flags.prepullPodLabel ?? {},
      extraAnnotations: flags.prepullPodAnnotation ?? {},
      ...(flags.priorityClass ? { priorityClassName: flags.priorityClass } : {}),
    },
  };
}

export function runCommand(ctx: CliContext, options: RunCommandOptions): Command {
  return new Command("run")
    .description("prepull images on the nodes once, for CI pipelines (after docker push): exits 0 when every targeted node has them")
    .argument("<image...>", "images to pull, as your pods name them")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
    .option("--context <name>", "kubeconfig context (default: the current context)")
    .option("-n, --namespace <namespace>", "namespace of the prepull DaemonSet (default: the context's namespace, else default)")
    .option("--node-selector <key=value>", "pull only on nodes with this label (repeatable; all must match)", collectKeyValue)
    .option("--toleration <key[=value][:effect]>", `pull on nodes with this taint too (repeatable; "*" for every taint)`, parseToleration)
    .option("--pull-secret <name>", "imagePullSecret of the prepull pods, in the namespace (repeatable)", collect)
    .addOption(new Option("--image-pull-policy <policy>", "pull policy of every image (default: as Kubernetes defaults a container's: Always for :latest, else IfNotPresent)")
      .choices(["Always", "IfNotPresent"]))
    .addOption(new Option("--max-parallel <n|p%>", "at most this many nodes pulling at once, in waves, to spare the registry")
      .argParser(parseMaxParallelOption).default(DEFAULT_SETTINGS.maxParallel, "100%"))
    .addOption(new Option("--timeout <duration>", "give up after this long (exit code 4)").argParser(parseDurationOption).default(DEFAULT_SETTINGS.holdTimeoutSeconds, "10m"))
    .addOption(new Option("-o, --output <format>", "text, or json: one summary object on stdout").choices(["text", "json"]).default("text"))
    .option("--helper-image <image>", "image holding the static prepull helper", DEFAULT_HELPER_IMAGE)
    .option("--prepull-pod-label <key=value>", "extra label on the prepull pods (repeatable)", collectKeyValue)
    .option("--prepull-pod-annotation <key=value>", "extra annotation on the prepull pods (repeatable)", collectKeyValue)
    .option("--priority-class <name>", "priorityClassName of the prepull pods")
    .action(async (images: string[], flags: RunFlags) => {
      const summary = await run(ctx, options, images, flags);
      if (flags.output === "json") ctx.out(JSON.stringify(summary, null, 2));
      else summaryLines(summary).forEach((line) => ctx.out(line));
      options.setExitCode(exitCodeOfResult(summary.result, options.interruption().reason));
    });
}

async function run(ctx: CliContext, options: RunCommandOptions, images: string[], flags: RunFlags): Promise<RunSummary> {
  const startedAt = Date.now();
  // Flags first (a usage error must not wait for a cluster), then the kubeconfig.
  const draft = runSpecOf(images, flags);
  let kubeConfig: k8s.KubeConfig;
  try {
    kubeConfig = kubeConfigFor(flags);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const message = `cannot load the kubeconfig: ${(error as Error).message}`;
    return runSummary({ result: "error", message, spec: { ...draft, namespace: namespaceOf(flags.namespace, undefined) }, startedAt, now: Date.now() });
  }
  const spec: RunSpec = { ...draft, namespace: namespaceOf(flags.namespace, kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace) };
  const viewOptions = { images: spec.images.map((i) => i.image), namespace: spec.namespace, now: Date.now, startedAt };
  const view: ProgressView = options.stderr.isTty
    ? terminalView(options.stderr.write, options.stderr.columns, viewOptions)
    : lineView(ctx.err, { ...viewOptions, intervalMs: LINE_INTERVAL_MS });
  const signal = options.interruption();
  const onInterrupt = (): void => view.note(`${String(signal.reason)}: stopping, deleting the prepull DaemonSet`);
  signal.addEventListener("abort", onInterrupt, { once: true });
  try {
    return await runPrepull({
      kubeConfig,
      spec,
      signal,
      observer: view,
      // Watch failures the reflectors retry; worth a line on stderr, not a progress bar's worth.
      log: pino({ level: "warn" }, pino.destination(2)),
      schedulingGraceSeconds: SCHEDULING_GRACE_DEFAULT_SECONDS,
    });
  } finally {
    signal.removeEventListener("abort", onInterrupt);
    view.close();
  }
}
