// `kube-prepull status [WORKLOAD]` (also `kubectl prepull status`): the prepulls of workloads as a
// kubectl-style table, wide table, JSON or YAML, read from their `kube-prepull.io/status`
// annotations; --watch prints each change as the watches bring it (spec §5). Flags and output
// here; the API reads in src/status.ts; what is shown in status-view.ts.
import type * as k8s from "@kubernetes/client-node";
import { Command, Option } from "commander";
import { pino } from "pino";
import { watchWorkloads, listWorkloads, type FoundWorkload, type StatusQuery } from "../status.js";
import type { CliContext } from "./cluster-command.js";
import { ClusterError, NotFoundError, UsageError } from "./exit-codes.js";
import { kubeConfigFor, namespaceOf } from "./run-command.js";
import {
  columnWidths, formatRow, itemKey, itemOf, listDocument, noPrepullsMessage, parseWorkloadArgument, renderDocument,
  sortItems, tableHeader, tableRow, workloadName, type OutputFormat, type PrepullItem, type TableOptions, type WorkloadSelector,
} from "./status-view.js";

export interface StatusFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  allNamespaces?: boolean;
  output?: "wide" | "json" | "yaml";
  watch?: boolean;
}

export interface StatusCommandOptions {
  /** SIGINT/SIGTERM as an AbortSignal; asking installs the handlers (--watch ends on it, exit 0). */
  interruption: () => AbortSignal;
}

/** The kubeconfig, with a context that cannot be loaded reported as the cluster being unusable. */
function loadConfig(flags: StatusFlags): k8s.KubeConfig {
  try {
    return kubeConfigFor(flags);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new ClusterError(`cannot load the kubeconfig: ${(error as Error).message}`);
  }
}

function queryOf(argument: string | undefined, flags: StatusFlags): { query: StatusQuery; selector: WorkloadSelector } {
  // Flags first: a usage error must not wait for a cluster.
  const selector = parseWorkloadArgument(argument);
  if (flags.allNamespaces && flags.namespace !== undefined) throw new UsageError("--all-namespaces and --namespace: use one of them");
  if (flags.allNamespaces && selector.name !== undefined) throw new UsageError("a workload cannot be named across all namespaces: use --namespace");
  const kubeConfig = loadConfig(flags);
  const namespace = flags.allNamespaces ? undefined : namespaceOf(flags.namespace, kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace);
  return { query: { kubeConfig, namespace, workloads: selector.workloads, ...(selector.name ? { name: selector.name } : {}) }, selector };
}

const itemsOf = (found: FoundWorkload[]): PrepullItem[] => found.flatMap(({ workload, object }) => itemOf(workload, object) ?? []);

/** A named workload that is missing, or has no status yet (a watch waits for one instead). */
function checkNamed(selector: WorkloadSelector, query: StatusQuery, found: FoundWorkload[], watch: boolean): void {
  if (selector.name === undefined) return;
  const what = selector.workloads.length === 1 ? `${selector.workloads[0]!.kind.toLowerCase()}/${selector.name}` : `workload named "${selector.name}"`;
  if (found.length === 0) throw new NotFoundError(`no ${what} in namespace ${query.namespace}`);
  if (!watch && itemsOf(found).length === 0) {
    const names = found.map(({ workload }) => workloadName({ kind: workload.kind, name: selector.name! })).join(", ");
    throw new NotFoundError(`${names} in namespace ${query.namespace} has no prepull status yet: kube-prepull has not seen a new image in it (is the namespace opted in, and kube-prepull running?)`);
  }
}

const formatOf = (flags: StatusFlags): OutputFormat => flags.output ?? "table";

/** Prints items as they change: rows under the table's header (printed with the first), or documents. */
export function changePrinter(ctx: CliContext, format: OutputFormat, options: TableOptions, shown: PrepullItem[]): (item: PrepullItem) => void {
  const printed = new Map(shown.map((item) => [itemKey(item), JSON.stringify(item)]));
  let widths = columnWidths([tableHeader(options), ...shown.map((item) => tableRow(item, options, new Date()))]);
  let header = shown.length > 0;
  return (item: PrepullItem): void => {
    const signature = JSON.stringify(item);
    if (printed.get(itemKey(item)) === signature) return;
    printed.set(itemKey(item), signature);
    if (format === "json" || format === "yaml") {
      ctx.out(format === "yaml" ? `---\n${renderDocument(item, "yaml")}` : renderDocument(item, "json"));
      return;
    }
    const row = tableRow(item, options, new Date());
    widths = columnWidths(header ? [row] : [tableHeader(options), row], widths);
    if (!header) ctx.out(formatRow(tableHeader(options), widths));
    header = true;
    ctx.out(formatRow(row, widths));
  };
}

function print(ctx: CliContext, format: OutputFormat, options: TableOptions, items: PrepullItem[], namespace: string | undefined): void {
  if (format === "json" || format === "yaml") {
    ctx.out(renderDocument(listDocument(items), format));
    return;
  }
  if (items.length === 0) {
    ctx.err(noPrepullsMessage(namespace));
    return;
  }
  const rows = [tableHeader(options), ...sortItems(items).map((item) => tableRow(item, options, new Date()))];
  const widths = columnWidths(rows);
  rows.forEach((row) => ctx.out(formatRow(row, widths)));
}

async function follow(query: StatusQuery, show: (item: PrepullItem) => void, signal: AbortSignal): Promise<void> {
  // The reflectors retry failed watches; a line on stderr says so.
  const stop = watchWorkloads(query, (type, { workload, object }) => {
    const item = type === "DELETED" ? undefined : itemOf(workload, object);
    if (item) show(item);
  }, pino({ level: "warn" }, pino.destination(2)));
  await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  stop();
}

export function statusCommand(ctx: CliContext, options: StatusCommandOptions): Command {
  return new Command("status")
    .description("show the prepulls of workloads (kubectl-style table); WORKLOAD is NAME or TYPE/NAME (deployment/web, sts/db)")
    .argument("[workload]", "a workload: NAME (any kind) or TYPE/NAME (deployment, statefulset, daemonset, job, cronjob, or their short names)")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
    .option("--context <name>", "kubeconfig context (default: the current context)")
    .option("-n, --namespace <namespace>", "namespace (default: the context's namespace, else default)")
    .option("-A, --all-namespaces", "prepulls in every namespace")
    .addOption(new Option("-o, --output <format>", "wide (images, DaemonSet, failed nodes), json or yaml (every field)").choices(["wide", "json", "yaml"]))
    .option("-w, --watch", "after the list, print each change (until Ctrl-C)")
    .action(async (argument: string | undefined, flags: StatusFlags) => {
      const { query: asked, selector } = queryOf(argument, flags);
      const { found, forbidden } = await listWorkloads(asked);
      forbidden.forEach((f) => ctx.err(`warning: ${f.message}; not shown`));
      // The watches follow the kinds that could be listed.
      const query = { ...asked, workloads: asked.workloads.filter((w) => !forbidden.some((f) => f.workload === w)) };
      checkNamed(selector, query, found, flags.watch === true);
      const format = formatOf(flags);
      const table: TableOptions = { allNamespaces: query.namespace === undefined, wide: format === "wide" };
      const items = itemsOf(found);
      // A watch of nothing yet prints its header with the first row.
      if (!(flags.watch && items.length === 0)) print(ctx, format, table, items, query.namespace);
      if (flags.watch) await follow(query, changePrinter(ctx, format, table, items), options.interruption());
    });
}
