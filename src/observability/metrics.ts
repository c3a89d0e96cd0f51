// Prometheus metrics (spec §6), prefix kube_prepull_. One registry per process, passed to whoever
// records; no module-level singletons, so tests can make their own.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { PrepullResult } from "../prepull/progress.js";
import { VERSION } from "../version.js";

export interface Metrics {
  registry: Registry;
  admissionDuration: Histogram<"webhook" | "operation" | "decision">;
  admissions: Counter<"webhook" | "decision">;
  prepulls: Counter<"result">;
  prepullDuration: Histogram<"result">;
  nodesPulled: Counter;
  nodesFailed: Counter;
  activePrepulls: Gauge;
  heldWorkloads: Gauge<"kind">;
  queueDepth: Gauge;
  leader: Gauge;
  keepWarmNodes: Gauge<"list" | "state">;
  /** Always 1; its labels say which kube-prepull (and Node.js) runs, as kube-state-metrics' *_info series do. */
  buildInfo: Gauge<"version" | "node_version">;
}

/** The results a finished prepull is counted under (kube_prepull_prepulls_total{result}). */
export const PREPULL_RESULTS: readonly PrepullResult[] = ["Succeeded", "Failed", "TimedOut", "Superseded"];

/** kube_prepull_build_info{version, node_version} 1: what runs, for dashboards and alerts on mixed versions. */
function buildInfoGauge(registers: Registry[], build: { version: string; nodeVersion: string }): Gauge<"version" | "node_version"> {
  const gauge = new Gauge({
    name: "kube_prepull_build_info",
    help: "Always 1; the labels name the kube-prepull version and the Node.js version running it.",
    labelNames: ["version", "node_version"] as const,
    registers,
  });
  gauge.set({ version: build.version, node_version: build.nodeVersion }, 1);
  return gauge;
}

/** `build` defaults to this package's version and the running Node.js (tests pass their own). */
export function createMetrics(options: { defaultMetrics: boolean; build?: { version: string; nodeVersion: string } }): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: "kube_prepull_" });
  const registers = [registry];
  const metrics: Metrics = {
    registry,
    admissionDuration: new Histogram({
      name: "kube_prepull_admission_duration_seconds",
      help: "Time to answer an AdmissionReview, by webhook, operation and decision.",
      labelNames: ["webhook", "operation", "decision"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    admissions: new Counter({
      name: "kube_prepull_admissions_total",
      help: "AdmissionReviews answered, by webhook and decision.",
      labelNames: ["webhook", "decision"],
      registers,
    }),
    prepulls: new Counter({
      name: "kube_prepull_prepulls_total",
      help: "Prepulls finished, by result (Succeeded, Failed, TimedOut, Superseded).",
      labelNames: ["result"],
      registers,
    }),
    prepullDuration: new Histogram({
      name: "kube_prepull_prepull_duration_seconds",
      help: "Time from the request to the end of a prepull, by result.",
      labelNames: ["result"],
      buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    }),
    nodesPulled: new Counter({ name: "kube_prepull_nodes_pulled_total", help: "Nodes that finished pulling a prepull's images.", registers }),
    nodesFailed: new Counter({ name: "kube_prepull_nodes_failed_total", help: "Nodes whose pull failed.", registers }),
    activePrepulls: new Gauge({ name: "kube_prepull_active_prepulls", help: "Prepull DaemonSets pulling now.", registers }),
    heldWorkloads: new Gauge({
      name: "kube_prepull_held_workloads",
      help: "Workloads whose rollout kube-prepull holds now, by kind.",
      labelNames: ["kind"] as const,
      registers,
    }),
    queueDepth: new Gauge({ name: "kube_prepull_queue_depth", help: "Prepulls waiting for the concurrency cap.", registers }),
    leader: new Gauge({ name: "kube_prepull_leader", help: "1 while this replica runs the controller (holds the Lease), else 0.", registers }),
    keepWarmNodes: new Gauge({
      name: "kube_prepull_keep_warm_nodes",
      help: "Nodes of a keep-warm list: desired (the DaemonSet's), warm (pulled), failed (pull errors).",
      labelNames: ["list", "state"] as const,
      registers,
    }),
    buildInfo: buildInfoGauge(registers, options.build ?? { version: VERSION, nodeVersion: process.version }),
  };
  // Every result exported from the start at 0: a series born at its first increment hides that
  // increment from rate() and increase(), which the alerts use (manifests/monitoring/alerts).
  for (const result of PREPULL_RESULTS) metrics.prepulls.inc({ result }, 0);
  return metrics;
}
