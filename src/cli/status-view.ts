// What `kube-prepull status` shows (spec §5): which workloads the WORKLOAD argument names, the
// prepull of each workload from its annotations, and the kubectl-style table, wide table, JSON and
// YAML of them. Pure; the API reads are in src/status.ts.
import { SYSTEM_ANNOTATIONS } from "../prepull/annotations.js";
import { decodeStatus, type FailureCount, type PrepullStatus } from "../prepull/progress.js";
import { WORKLOADS } from "../workloads/kinds.js";
import type { Workload, WorkloadKindName, WorkloadObject } from "../workloads/workload.js";
import { UsageError } from "./exit-codes.js";
import { toYaml } from "./yaml.js";

/** The workloads a WORKLOAD argument names: kinds to look at, and a name (none: every workload). */
export interface WorkloadSelector {
  workloads: readonly Workload[];
  name?: string;
}

// RFC 1123 subdomain: what a workload's name can be (Kubernetes object names).
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The kind a TYPE names as kubectl would take it: kind, plural, short name, each optionally `.group`. */
function kindOf(type: string): Workload | undefined {
  const lower = type.toLowerCase();
  return WORKLOADS.find((w) => {
    const names = [w.kind.toLowerCase(), w.resource, w.shortName];
    return names.some((n) => lower === n || lower === `${n}.${w.group}`);
  });
}

const KIND_NAMES = WORKLOADS.map((w) => `${w.kind.toLowerCase()} (${w.shortName})`).join(", ");

/**
 * WORKLOAD as kubectl takes a resource: `TYPE/NAME` (`deployment/web`, `deploy/web`,
 * `statefulsets.apps/db`), or a bare `NAME`, which names a workload of that name of any kind.
 */
export function parseWorkloadArgument(argument: string | undefined): WorkloadSelector {
  if (argument === undefined) return { workloads: WORKLOADS };
  const slash = argument.indexOf("/");
  const type = slash < 0 ? undefined : argument.slice(0, slash);
  const name = slash < 0 ? argument : argument.slice(slash + 1);
  const workload = type === undefined ? undefined : kindOf(type);
  if (type !== undefined && !workload) throw new UsageError(`WORKLOAD: "${type}" is not a workload kind kube-prepull serves; use one of ${KIND_NAMES}`);
  if (!OBJECT_NAME.test(name) || name.length > 253) {
    throw new UsageError(`WORKLOAD: "${name}" is not a workload name; expected NAME or TYPE/NAME, such as web or deployment/web`);
  }
  return { workloads: workload ? [workload] : WORKLOADS, name };
}

/** One workload's prepull: whose it is, whether kube-prepull holds its rollout, and its status. */
export interface PrepullItem {
  namespace: string;
  kind: WorkloadKindName;
  name: string;
  /** kube-prepull holds the workload's rollout now (`kube-prepull.io/held-by` is present). */
  held: boolean;
  status: PrepullStatus;
}

/** The prepull a workload's annotations show, or undefined when it has no status (yet). */
export function itemOf(workload: Workload, object: WorkloadObject): PrepullItem | undefined {
  const annotations = object.metadata?.annotations ?? {};
  const status = decodeStatus(annotations[SYSTEM_ANNOTATIONS.status]);
  if (!status) return undefined;
  return { namespace: object.metadata?.namespace ?? "", kind: workload.kind, name: object.metadata?.name ?? "", held: SYSTEM_ANNOTATIONS.heldBy in annotations, status };
}

export const itemKey = (item: Pick<PrepullItem, "namespace" | "kind" | "name">): string => `${item.namespace}/${item.kind}/${item.name}`;

/** Items in the order the table lists them: namespace, kind, name. */
export function sortItems(items: PrepullItem[]): PrepullItem[] {
  return [...items].sort((a, b) => (itemKey(a) < itemKey(b) ? -1 : itemKey(a) > itemKey(b) ? 1 : 0));
}

/** "deployment/web", as kubectl names objects. */
export const workloadName = (item: Pick<PrepullItem, "kind" | "name">): string => `${item.kind.toLowerCase()}/${item.name}`;

/** kubectl's age format (apimachinery's duration.HumanDuration): "45s", "3m20s", "5h", "2d3h", "3y". */
export function humanDuration(seconds: number): string {
  if (seconds < -1) return "<invalid>";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 120) return `${s}s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 10) return s % 60 === 0 ? `${minutes}m` : `${minutes}m${s % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const days = Math.floor(hours / 24) % 365;
  if (hours < 24 * 365 * 8) return days === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${days}d`;
  return `${Math.floor(hours / 24 / 365)}y`;
}

const since = (time: string, now: Date): number => (now.getTime() - Date.parse(time)) / 1000;

/** "ErrImagePull: node-a,node-b,+3 more; InvalidImageName: node-c" (the annotation names up to 20 nodes). */
export function failedNodesCell(failures: FailureCount[] | undefined): string {
  if (!failures || failures.length === 0) return "<none>";
  return failures
    .map((f) => `${f.reason}: ${[...f.nodes, ...(f.count > f.nodes.length ? [`+${f.count - f.nodes.length} more`] : [])].join(",")}`)
    .join("; ");
}

/** "0", or like kubectl's RESTARTS: "2 (5m ago)". */
function supersededCell(status: PrepullStatus, now: Date): string {
  const s = status.superseded;
  return s ? `${s.count} (${humanDuration(since(s.at, now))} ago)` : "0";
}

export interface TableOptions {
  /** -A: a NAMESPACE column. */
  allNamespaces: boolean;
  /** -o wide: IMAGES, DAEMONSET and FAILED NODES too. */
  wide: boolean;
}

export function tableHeader(options: TableOptions): string[] {
  return [
    ...(options.allNamespaces ? ["NAMESPACE"] : []),
    "WORKLOAD", "PHASE", "PULLED", "FAILED", "HELD", "SUPERSEDED", "AGE",
    ...(options.wide ? ["IMAGES", "DAEMONSET", "FAILED NODES"] : []),
    "MESSAGE",
  ];
}

/** The cells of one prepull's row, in tableHeader's order. */
export function tableRow(item: PrepullItem, options: TableOptions, now: Date): string[] {
  const { status } = item;
  return [
    ...(options.allNamespaces ? [item.namespace] : []),
    workloadName(item),
    status.phase,
    `${status.nodes.pulled}/${status.nodes.desired}`,
    String(status.nodes.failed),
    item.held ? "yes" : "no",
    supersededCell(status, now),
    humanDuration(since(status.startedAt, now)),
    ...(options.wide ? [status.images.join(","), status.daemonSet || "<none>", failedNodesCell(status.failures)] : []),
    // One line per row, whatever the message holds.
    (status.message ?? "").replace(/\s*\n\s*/g, " "),
  ];
}

/** Column widths that fit every row (kubectl's tabwriter: 3 spaces between columns). */
export function columnWidths(rows: string[][], previous: number[] = []): number[] {
  const widths = [...previous];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return widths;
}

export function formatRow(cells: string[], widths: number[]): string {
  return cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 3))).join("").trimEnd();
}

/** The table: a header and one row per prepull, aligned. */
export function renderTable(items: PrepullItem[], options: TableOptions, now: Date): string[] {
  const rows = [tableHeader(options), ...sortItems(items).map((item) => tableRow(item, options, now))];
  const widths = columnWidths(rows);
  return rows.map((row) => formatRow(row, widths));
}

/** What "nothing to show" says, as kubectl does ("No resources found in default namespace."). */
export function noPrepullsMessage(namespace: string | undefined): string {
  return namespace === undefined ? "No prepulls found." : `No prepulls found in ${namespace} namespace.`;
}

export type OutputFormat = "table" | "wide" | "json" | "yaml";

/** The JSON and YAML document: every item, with every field of its status. */
export const listDocument = (items: PrepullItem[]): { items: PrepullItem[] } => ({ items: sortItems(items) });

/** A JSON or YAML document (a list, or one item while watching). */
export function renderDocument(document: object, format: "json" | "yaml"): string {
  return format === "json" ? JSON.stringify(document, null, 2) : toYaml(document).trimEnd();
}
