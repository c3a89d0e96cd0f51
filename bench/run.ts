// `npm run bench`: runs the benchmarks and writes docs/benchmarks.md. Benchmarks report; they never
// fail a build and are not part of `npm test`.
//   npm run bench [-- --skip admission,api-cost,scripted,burst] [--duration 5 --warmup 1]
//                 [--nodes 100,1000 --pull-delay 5s] [--burst-deployments 100] [--scripted-first] [--pairs 2]
//                 [--scale-nodes 5000 --scale-deployments 10000]
//                 [--real-image-mib 200 --real-mb-per-second 25 --real-pairs 2 --real-cpu-limits 10m,…,none]
// (--skip also takes real-node.) A skipped section keeps the text of the previous run.
// SIGINT/SIGTERM at any point stop every cluster and process it started (support/interruption.ts).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../src/local-cluster/binaries.js";
import { benchmarkAdmission } from "./admission.js";
import { parseBenchArguments } from "./options.js";
import { measureOnCluster, type ClusterRun, type PrepullRun } from "./api-cost.js";
import type { ScriptedRun } from "./scripted.js";
import { benchmarkRealNode, type RealNodeResult } from "./real-node.js";
import { total } from "./support/audit.js";
import { installInterruptHandlers, interruption, unlessInterrupted } from "./support/interruption.js";
import { log, machineLine, mebibytes, seconds, table } from "./support/machine.js";
import { describeSample } from "./support/serve-memory.js";

const parsed = parseBenchArguments(process.argv.slice(2));
if (parsed.kind === "help") {
  process.stdout.write(parsed.usage);
  process.exit(0);
}
if (parsed.kind === "error") {
  process.stderr.write(`bench: ${parsed.message}\n\n${parsed.usage}`);
  process.exit(2);
}
const argument = parsed.value;
installInterruptHandlers();
const stateRoot = path.resolve(packageRoot(), argument("state-dir"));
const skipped = new Set(argument("skip").split(",").filter(Boolean));
const scriptedFirst = parsed.scriptedFirst;
const durationSeconds = Number(argument("duration"));
const warmupSeconds = Number(argument("warmup"));

const NOT_MEASURED = "_Not measured yet._";
const verdict = (met: boolean): string => (met ? "**met**" : "**missed**");

async function admissionSection(): Promise<string> {
  if (skipped.has("admission")) return NOT_MEASURED;
  log("admission: kube-prepull and bare HTTPS servers");
  const started = Date.now();
  const result = await benchmarkAdmission({ durationSeconds, warmupSeconds });
  return [
    `Each point: ${warmupSeconds} s warm-up, then ${durationSeconds} s measured with autocannon (keep-alive, TLS 1.3,`,
    "certificate not verified by the load generator) against `POST /mutate/deployments` on 127.0.0.1. The",
    "server runs in its own process (`bench/admission-server.ts`): `kube-prepull` is `startHttpsServer` +",
    "`createAdmissionApp` exactly as `serve` wires them (info logging to /dev/null, metrics on); `bare` is",
    "`https.createServer` with the same TLS and keep-alive settings that reads the body and answers a constant",
    "allowed AdmissionReview; `bare-parse` also `JSON.parse`s the review and answers with its uid (the least",
    "any webhook that reads the review must do). Every review carries the hold annotation, so CREATE and UPDATE get the",
    "hold patch (the real path, not the skip path). Latency resolution is 1 ms (autocannon). Load generator",
    "and server share the machine's CPUs, so absolute numbers are lower than with a separate client machine;",
    "the ratios are the meaningful figures.",
    "",
    result.markdown,
    "",
    `Targets: throughput ≥ 0.8× the bare server's at every point: ${verdict(result.worstRatio >= 0.8)} (worst ${result.worstRatio.toFixed(2)}×);`,
    `p99 ≤ 5 ms at 32 connections for the typical size: ${verdict(result.typicalP99At32 <= 5)} (${result.typicalP99At32} ms).`,
    `Section time: ${((Date.now() - started) / 60_000).toFixed(1)} min.`,
  ].join("\n");
}

const NODE_COUNTS = argument("nodes").split(",").map(Number);
const PULL_DELAY = argument("pull-delay");
const BURST_DEPLOYMENTS = Number(argument("burst-deployments"));
const PAIRS = Number(argument("pairs"));
const SCALE_NODES = Number(argument("scale-nodes"));
const SCALE_DEPLOYMENTS = Number(argument("scale-deployments"));
const SCALE_HOLD_TIMEOUT = argument("scale-hold-timeout");
let scaleRun: ClusterRun | undefined;
let scaleFailure: string | undefined;
const prepullRuns: PrepullRun[] = [];
const clusterRuns: ClusterRun[] = [];

/** One cluster per node count, measuring what is not skipped; the burst only on the largest. Once. */
let clustersMeasured: Promise<void> | undefined;
const measureClusters = (): Promise<void> => (clustersMeasured ??= measureAllClusters());
async function measureAllClusters(): Promise<void> {
  const largest = Math.max(...NODE_COUNTS);
  for (const nodes of NODE_COUNTS) {
    const wanted = {
      prepull: !skipped.has("api-cost"),
      scripted: !skipped.has("scripted"),
      burstDeployments: !skipped.has("burst") && nodes === largest ? BURST_DEPLOYMENTS : 0,
    };
    if (!wanted.prepull && !wanted.scripted && wanted.burstDeployments === 0) continue;
    log(`cluster with ${nodes} nodes: ${JSON.stringify(wanted)}`);
    const run = await measureOnCluster({ nodes, pullDelay: PULL_DELAY, ...wanted, scriptedFirst, pairs: PAIRS, bare: wanted.scripted, stateRoot });
    clusterRuns.push(run);
    if (run.prepull) prepullRuns.push(run.prepull);
  }
  if (!skipped.has("scale")) {
    // Kubernetes' documented limit (https://kubernetes.io/docs/setup/best-practices/cluster-large/),
    // with serve caching SCALE_DEPLOYMENTS Deployments: one held prepull on every node.
    log(`cluster with ${SCALE_NODES} nodes and ${SCALE_DEPLOYMENTS} Deployments`);
    // A run that cannot finish (time-outs at this size) is reported, not allowed to lose the others.
    try {
      scaleRun = await measureOnCluster({ nodes: SCALE_NODES, pullDelay: PULL_DELAY, prepull: true, scripted: false, burstDeployments: 0, fillerDeployments: SCALE_DEPLOYMENTS, holdTimeout: SCALE_HOLD_TIMEOUT, stateRoot });
      if (scaleRun.prepull) prepullRuns.push(scaleRun.prepull);
    } catch (error) {
      if (interruption.aborted) await unlessInterrupted(error);
      scaleFailure = (error as Error).message;
      log(`scale run failed: ${scaleFailure}`);
    }
  }
}

async function scaleSection(): Promise<string> {
  await measureClusters();
  const run = scaleRun;
  if (scaleFailure) return `The run with ${SCALE_NODES} nodes and ${SCALE_DEPLOYMENTS} Deployments failed: ${scaleFailure}.`;
  if (!run?.prepull || !run.startup) return NOT_MEASURED;
  const p = run.prepull;
  const rssTarget = 250e6;
  return [
    `A local cluster with ${run.nodes} simulated nodes and ${run.startup.deployments} Deployments (replicas 0, in 20 covered`,
    `namespaces, a typical small pod template each) created before serve starts. Then one held Deployment (2 images, \`hold-timeout: ${SCALE_HOLD_TIMEOUT}\`) on`,
    `every node, followed as in the API-cost section (simulated pull ${PULL_DELAY}); its requests are the last column there.`,
    "",
    table(["measure", "value", "target", "verdict"], [
      ["serve start → ready (caches synced)", seconds(run.startup.syncedMs), "reported", ""],
      [`serve peak RSS once synced (${run.startup.deployments} Deployments, ${run.nodes} nodes)`, mebibytes(run.startup.peakRss), "≤ 250 MB", verdict(run.startup.peakRss <= rssTarget)],
      ["serve peak RSS at the end of the prepull", mebibytes(p.servePeakRss), "≤ 250 MB", verdict(p.servePeakRss <= rssTarget)],
      ["serve's memory at its highest sampled RSS (every 2 s)", p.serveMemoryAtPeak ? describeSample(p.serveMemoryAtPeak) : "not sampled", "reported", ""],
      ...p.milestones.map(([name, ms]) => [name, seconds(ms), "", ""]),
      ["serve CPU time (start to end)", `${p.serveCpuSeconds.toFixed(1)} s`, "", ""],
      ["API requests of the prepull", String(total(p.perPrepull)), "as at 100 and 1000 nodes ±2", ""],
      ["bytes serve received during the prepull", `${(p.bytesReceived / 1e6).toFixed(2)} MB = ${(p.bytesReceived / run.nodes / 1000).toFixed(2)} KB/node`, "≤ 5 KB/node", verdict(p.bytesReceived / run.nodes <= 5000)],
      ["watch events the apiserver sent during the prepull, every client's, largest resources (MB, cluster-wide watches open at the end)", describeWatchEvents(p), "reported", ""],
      ["watchers the apiserver terminated (every client's)", String(p.watchersTerminated), "0", verdict(p.watchersTerminated === 0)],
      ["of them kube-prepull's (its watches opened again)", String(reopenedWatches(p)), "0", verdict(reopenedWatches(p) === 0)],
    ]),
  ].join("\n");
}

/** "nodes 310.2 MB to 5 watches, pods 20.1 MB to 7 watches". */
const describeWatchEvents = (run: PrepullRun): string =>
  run.watchEvents?.map((share) => `${share.resource} ${(share.bytes / 1e6).toFixed(1)} MB to ${share.watchers} watches`).join(", ") || "not measured";

/** kube-prepull's watches opened during a prepull: each is one the apiserver (or the network) closed. */
const reopenedWatches = (run: PrepullRun): number =>
  [...run.perPrepull].filter(([key]) => key.startsWith("watch ")).reduce((sum, [, n]) => sum + n, 0);

const requestTable = (counts: (run: PrepullRun) => Map<string, number>): string => {
  const keys = [...new Set(prepullRuns.flatMap((run) => [...counts(run).keys()]))].sort();
  return table(["verb resource", ...prepullRuns.map((run) => `${run.nodes} nodes`)], [
    ...keys.map((k) => [k, ...prepullRuns.map((run) => String(counts(run).get(k) ?? 0))]),
    ["**total**", ...prepullRuns.map((run) => `**${total(counts(run))}**`)],
  ]);
};

async function apiCostSection(): Promise<string> {
  await measureClusters();
  if (skipped.has("api-cost")) return NOT_MEASURED;
  const perPrepull = (run: PrepullRun): number => total(run.perPrepull);
  const fewest = prepullRuns[0]!;
  const flat = prepullRuns.every((run) => Math.abs(perPrepull(run) - perPrepull(fewest)) <= 2);
  return [
    "Local cluster (`docs/local-cluster.md`) with N simulated nodes; the apiserver audits (level Metadata)",
    "every request of kube-prepull's ServiceAccount and nothing else. `kube-prepull serve` runs as its own",
    "process with that ServiceAccount's token (`--register --no-leader-elect`). After serve is ready and its",
    "webhook answers, one Deployment (2 images, `hold: \"true\"`) is created and followed until its DaemonSet",
    "is deleted. Counted: distinct audit IDs from serve's user in that window (a watch counts once while",
    `it stays open). Prepull pods simulate a pull of ${PULL_DELAY} (\`sim.kube-prepull.io/pull-delay\`).`,
    "",
    "Requests per prepull:",
    "",
    requestTable((run) => run.perPrepull),
    "",
    prepullRuns.length < 2 ? "Target (the count does not grow with the number of nodes): needs two node counts."
      : `Target: equal within ±2 at every node count (${prepullRuns.map((run) => `${perPrepull(run)} at ${run.nodes}`).join(", ")}): ${verdict(flat)}.`,
    "",
    "Watches the apiserver closed as unresponsive in the same window (`apiserver_terminated_watchers_total`",
    "increase, every client's, not only kube-prepull's; target 0): " +
      prepullRuns.map((run) => `${run.watchersTerminated} at ${run.nodes} nodes (pods: ${run.podWatchersTerminated})`).join(", ") +
      `: ${verdict(prepullRuns.every((run) => run.watchersTerminated === 0))}.`,
    "Of them kube-prepull's (a closed watch is opened again, so each is a `watch` request in the table above): " +
      prepullRuns.map((run) => `${reopenedWatches(run)} at ${run.nodes} nodes`).join(", ") + ".",
    "",
    "Bytes serve received from the apiserver during the prepull, counted at serve's side (a TCP relay on",
    "127.0.0.1 between serve and the apiserver: the TLS stream, so a few percent above the JSON), per node",
    "(target ≤ 5 KB): " +
      prepullRuns.map((run) => `${(run.bytesReceived / 1000).toFixed(0)} KB at ${run.nodes} nodes = ${(run.bytesReceived / run.nodes / 1000).toFixed(2)} KB/node`).join(", ") +
      `: ${verdict(prepullRuns.every((run) => run.bytesReceived / run.nodes <= 5000))}.`,
    "",
    "Requests at startup (from serve's start until it is ready; once per process, not per prepull):",
    "",
    requestTable((run) => run.startup),
  ].join("\n");
}

async function endToEndSection(): Promise<string> {
  await measureClusters();
  if (prepullRuns.length === 0) return Promise.resolve(NOT_MEASURED);
  const names = [...new Set(prepullRuns.flatMap((run) => run.milestones.map(([name]) => name.replace(/\d+ nodes/, "N nodes"))))];
  const at = (run: PrepullRun, name: string): string => {
    const hit = run.milestones.find(([n]) => n.replace(/\d+ nodes/, "N nodes") === name);
    return hit ? seconds(hit[1]) : "not reached";
  };
  return Promise.resolve([
    `Same runs as above: time from the Deployment's CREATE until each milestone was first seen (polled every`,
    `100 ms), simulated pull delay ${PULL_DELAY} per node (kwok adds up to 1 s jitter), then serve's resources.`,
    "",
    table(["milestone", ...prepullRuns.map((run) => `${run.nodes} nodes`)], [
      ...names.map((name) => [name, ...prepullRuns.map((run) => at(run, name))]),
      ["serve peak RSS (whole process: admission + controller)", ...prepullRuns.map((run) => mebibytes(run.servePeakRss))],
      ["serve CPU time (start to end of run)", ...prepullRuns.map((run) => `${run.serveCpuSeconds.toFixed(1)} s`)],
    ]),
  ].join("\n"));
}

const msOf = (run: PrepullRun, prefix: string): number | undefined => run.milestones.find(([name]) => name.startsWith(prefix))?.[1];
const milestone = (run: PrepullRun, prefix: string): string => {
  const ms = msOf(run, prefix);
  return ms !== undefined ? seconds(ms) : "not reached";
};

async function scriptedSection(): Promise<string> {
  await measureClusters();
  const runs = clusterRuns.filter((run) => run.scripted);
  if (runs.length === 0) return Promise.resolve(NOT_MEASURED);
  const scriptRow = (nodes: number, s: ScriptedRun, order: string): string[] => [String(nodes), `script (\`bench/scripted-prepull.sh\`)${order}`,
    s.allReadyMs === undefined ? "not seen" : seconds(s.allReadyMs), seconds(s.scriptSawReadyMs), seconds(s.doneMs), String(total(s.requests))];
  const prepullRow = (nodes: number, p: PrepullRun, order: string): string[] => [String(nodes), `kube-prepull (held Deployment)${order}`,
    milestone(p, "DaemonSet status: all pods Ready"), milestone(p, "all "), milestone(p, "DaemonSet deleted"), String(total(p.perPrepull))];
  const rows = runs.flatMap((run) => run.pairs.length > 0
    ? run.pairs.flatMap((pair, i) => pair.scriptedFirst
      ? [scriptRow(run.nodes, pair.scripted, `, pair ${i + 1}, first`), prepullRow(run.nodes, pair.prepull, `, pair ${i + 1}, second`)]
      : [prepullRow(run.nodes, pair.prepull, `, pair ${i + 1}, first`), scriptRow(run.nodes, pair.scripted, `, pair ${i + 1}, second`)])
    : [scriptRow(run.nodes, run.scripted!, "")]);
  const ratios = runs.flatMap((run) => {
    const done = run.pairs.map((pair) => (msOf(pair.prepull, "DaemonSet deleted") ?? NaN) / pair.scripted.doneMs);
    const ready = run.bare ? run.pairs.map((pair) => (msOf(pair.prepull, "DaemonSet status: all pods Ready") ?? NaN) / run.bare!.allReadyMs) : [];
    return [
      ...(done.length > 0 ? [`${run.nodes} nodes: kube-prepull "done" ÷ the script's "done", per pair: ${done.map((r) => `${r.toFixed(2)}×`).join(", ")} (target ≤ 0.8×): ${verdict(done.every((r) => r <= 0.8))}.`] : []),
      ...(run.bare ? [`${run.nodes} nodes: kube-prepull's DaemonSet applied with serve stopped was all Ready after ${seconds(run.bare.allReadyMs)}; kube-prepull's own (all pods Ready) ÷ that, per pair: ${ready.map((r) => `${r.toFixed(2)}×`).join(", ")} (target ≤ 1.1×): ${verdict(ready.length > 0 && ready.every((r) => r <= 1.1))}.`] : []),
    ];
  });
  const keys = [...new Set(runs.flatMap((run) => [...run.scripted!.requests.keys()]))].sort();
  return Promise.resolve([
    `On the same cluster as the API-cost run, ${PAIRS} pair${PAIRS === 1 ? "" : "s"} of runs, alternating which goes first (the first pair starts with ${scriptedFirst ? "the script, `--scripted-first`" : "kube-prepull"}; each kube-prepull run is a new held Deployment, each script run a new DaemonSet), after one uncounted warm-up run of the script on each cluster (${runs.map((run) => `${run.nodes} nodes: done after ${run.warmupMs === undefined ? "–" : seconds(run.warmupMs)}`).join(", ")}): the first DaemonSet on a cluster whose nodes have just become Ready is the slowest, whoever applies it.`,
    "`bench/scripted-prepull.sh` applies a run-once DaemonSet like kube-prepull's (one init container per",
    "image, a pause container, the same requests/limits and the same simulated pull,",
    `\`sim.kube-prepull.io/pull-delay: ${PULL_DELAY}\`), sleeps 15 s, polls`,
    "`kubectl get ds -o jsonpath='{.status.numberReady} {.status.desiredNumberScheduled}'` every 3 s until",
    "they are equal, then `kubectl delete ds` (which waits until the DaemonSet is gone). It uses the",
    "version-matched kubectl of the local cluster with a fresh cache directory (as on a CI runner, so its",
    "discovery requests count) and authenticates as its own ServiceAccount, `scripted-prepull`, which the",
    "audit policy records beside kube-prepull's. Times start at the Deployment's CREATE (kube-prepull) or",
    "at the script's start; \"all pods Ready\" is the DaemonSet's status as the benchmark saw it (polled",
    "every 100 ms as the unaudited admin), \"all pulled\" is when each approach knew it (kube-prepull: status",
    "Succeeded; script: its poll). kube-prepull's \"done\" includes its held rollout: it deletes the",
    "DaemonSet once the released rollout has completed. kube-prepull's requests exclude serve's start-up",
    "(see above); the script's include everything it sent.",
    "",
    table(["nodes", "approach", "DaemonSet status: all pods Ready", "time to all pulled (as the approach knows it)", "time to done (cleaned up)", "API requests"], rows),
    "",
    ...ratios.flatMap((line) => [line, ""]),
    "",
    "The script's requests:",
    "",
    table(["verb resource", ...runs.map((run) => `${run.nodes} nodes`)], [
      ...keys.map((k) => [k, ...runs.map((run) => String(run.scripted!.requests.get(k) ?? 0))]),
      ["**total**", ...runs.map((run) => `**${total(run.scripted!.requests)}**`)],
    ]),
  ].join("\n"));
}

async function burstSection(): Promise<string> {
  await measureClusters();
  const run = clusterRuns.find((r) => r.burst);
  if (!run) return Promise.resolve(NOT_MEASURED);
  const b = run.burst!;
  const succeeded = b.phases.get("Succeeded") ?? 0;
  const allDone = b.finished && succeeded === b.deployments && b.stillHeld === 0;
  const cap = 20;
  const rssTarget = 200e6;
  const phases = [...b.phases].map(([phase, n]) => `${n} ${phase}`).join(", ");
  const lastQueue = b.samples.at(-1)?.[1] ?? NaN;
  const peakInFlight = Math.max(0, ...b.samples.map(([, q, a]) => q + a).filter(Number.isFinite));
  // Queue depth and active prepulls every 5 s (of the per-second scrapes).
  const series = b.samples.filter((_, i) => i % 5 === 0).map(([t, q, a]) => `${t.toFixed(0)} s: ${q}/${a}`).join(", ");
  return Promise.resolve([
    `On the ${run.nodes}-node cluster, after the runs above, with the same serve process (default`,
    `\`--max-concurrent-prepulls\` ${cap}): ${b.deployments} Deployments are created at v1 with \`prepull: "false"\`, each`,
    `restricted by required node affinity to its own ${b.nodesPerDeployment} nodes (the prepull copies it, so each prepull`,
    `DaemonSet has ${b.nodesPerDeployment} pods and the burst ${b.deployments * b.nodesPerDeployment} in all; every Deployment on all nodes would be`,
    `${b.deployments * run.nodes} pods, which the simulated cluster cannot schedule in minutes on this machine). Then all of them are`,
    "updated at once (image v2, `prepull: \"true\"`, `hold: \"true\"`) and followed (every 1 s, as the admin)",
    "until every status is Succeeded, every hold released and every prepull DaemonSet deleted. serve's ops",
    "port is scraped every second for `kube_prepull_queue_depth` and `kube_prepull_active_prepulls`; 429s are",
    "counted in the audit log (serve's user) and as the increase of the apiserver's",
    "`apiserver_request_total{code=\"429\"}` (all users; `kubectl get --raw /metrics`). Simulated pull:",
    `${PULL_DELAY}. Peak RSS is the process's high-water mark (VmHWM), so it covers serve's whole life.`,
    "",
    table(["measure", "value", "target", "verdict"], [
      ["Deployments finished", `${phases}; ${b.stillHeld} still held`, `all ${b.deployments} Succeeded, holds released`, verdict(allDone)],
      ["time to all Succeeded and released", b.allSucceededMs ? seconds(b.allSucceededMs) : "not reached", "", ""],
      ["time to all prepull DaemonSets deleted", b.finished ? seconds(b.allCleanedUpMs) : `not reached in ${seconds(b.allCleanedUpMs)}`, "", ""],
      ["peak queue depth", String(b.peakQueueDepth), "", ""],
      ["queue drained at the end", String(lastQueue), "0", verdict(lastQueue === 0)],
      ["queued + active at any scrape", `≤ ${peakInFlight}`, `≤ ${b.deployments}`, verdict(peakInFlight <= b.deployments)],
      ["peak active prepulls", String(b.peakActivePrepulls), `≤ ${cap}`, verdict(b.peakActivePrepulls <= cap)],
      ["429s to serve (audit log)", String(b.audit429), "0", verdict(b.audit429 === 0)],
      ["apiserver_request_total{code=\"429\"} increase", String(b.apiserver429), "0", verdict(b.apiserver429 === 0)],
      ["serve peak RSS", `${mebibytes(b.servePeakRss)} (${(b.servePeakRss / 1e6).toFixed(0)} MB)`, "≤ 200 MB", verdict(b.servePeakRss <= rssTarget)],
      ["serve CPU time during the burst", `${b.serveCpuSeconds.toFixed(1)} s`, "", ""],
      ["kube-prepull's webhook calls within 25 ms, as the apiserver timed them (`apiserver_admission_webhook_admission_duration_seconds`, le 0.025)",
        b.webhookCalls > 0 ? `${(100 * b.webhookCallsWithin25ms / b.webhookCalls).toFixed(1)} % of ${b.webhookCalls}` : "no calls seen", "≥ 99 %",
        verdict(b.webhookCalls > 0 && b.webhookCallsWithin25ms / b.webhookCalls >= 0.99)],
      ["serve API requests during the burst", String(b.serveRequests), "", ""],
    ]),
    "",
    `Queued / active prepulls every 5 s after the burst: ${series}.`,
  ].join("\n"));
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

function realNodeTables(r: RealNodeResult): string {
  const s = (ms: number | undefined): string => (ms === undefined ? "–" : seconds(ms));
  const cold = r.rollouts.filter((x) => x.mode === "cold");
  const held = r.rollouts.filter((x) => x.mode === "held");
  const speedups = held.map((h) => median(cold.map((c) => c.totalMs)) / (h.afterReleaseMs ?? Infinity));
  const overheads = held.map((h) => (h.releasedMs ?? 0) - (h.kubeletPullMs ?? 0));
  return [
    table(["run (in order)", "image", "set image → hold released", "kubelet's pull time", "hold released → rollout complete", "set image → rollout complete"],
      r.rollouts.map((x) => [x.mode, x.image.replace(/^[^/]+\//, ""), s(x.releasedMs), s(x.kubeletPullMs), s(x.afterReleaseMs), s(x.totalMs)])),
    "",
    `Rollout after release vs the cold rollout (median cold ÷ each held run's after-release time): ${speedups.map((x) => x.toFixed(1) + "×").join(", ")} — target ≥ 10×: ${verdict(speedups.every((x) => x >= 10))}.`,
    `Prepull overhead over the raw pull (set image → released, minus the kubelet's pull time of the prepull pod): ${overheads.map((o) => seconds(o)).join(", ")} — target ≤ 2 s: ${verdict(overheads.every((o) => o <= 2000))}.`,
    "",
    "Prepull pod (helper install + one init container per image + pause), images already present, create → Ready on the real node, by CPU limit (requests 10m CPU, 32Mi; memory limit 32Mi):",
    "",
    table(["CPU limit", "1 image", "6 images"], [...new Set(r.starts.map((x) => x.cpuLimit))].map((limit) => [
      limit, ...[1, 6].map((n) => r.starts.find((x) => x.cpuLimit === limit && x.images === n)?.ms.map((m) => seconds(m)).join(", ") ?? "–"),
    ])),
  ].join("\n");
}

async function realNodeSection(): Promise<string> {
  const mbPerSecond = Number(argument("real-mb-per-second"));
  const options = {
    bytesPerSecond: mbPerSecond * 1e6,
    imageMiB: Number(argument("real-image-mib")),
    pairs: Number(argument("real-pairs")),
    cpuLimits: argument("real-cpu-limits").split(",").filter(Boolean),
    startRepeats: 2,
    stateRoot,
  };
  log("real node: kubelet + containerd, throttled registry");
  const started = Date.now();
  const result = await benchmarkRealNode(options);
  return [
    `One real node (kubelet v1.34.4 + Debian's containerd 1.6 and runc, src/local-cluster/real-node/) pulling through the`,
    `local registry's proxy throttled to ${mbPerSecond} MB/s; the image has two random layers, ${options.imageMiB} MiB in all. A`,
    "Deployment of 2 replicas on that node changes its image: `cold` in a namespace kube-prepull does not cover, `held`",
    "with `kube-prepull.io/hold: \"true\"` in one it covers. Pairs alternate their order; every run pulls an image the node",
    "has not seen. The kubelet's pull time is from its own `Pulled` Event.",
    "",
    realNodeTables(result),
    "",
    `Section time: ${((Date.now() - started) / 60_000).toFixed(1)} min.`,
  ].join("\n");
}

const sections: Array<[string, string, () => Promise<string>]> = [
  ["admission", "Admission throughput and latency", admissionSection],
  ["api-cost", "API cost per prepull", apiCostSection],
  ["api-cost", "End-to-end prepull and controller memory", endToEndSection],
  ["scripted", "The common scripted way, side by side", scriptedSection],
  ["burst", `Burst: ${BURST_DEPLOYMENTS} Deployments at once`, burstSection],
  ["scale", `Scale: ${SCALE_NODES} nodes and ${SCALE_DEPLOYMENTS} Deployments`, scaleSection],
  ["real-node", "A real node: rollouts with and without kube-prepull", realNodeSection],
];

const parts = [
  "# Benchmarks",
  "",
  "Written by `npm run bench` (builds, then runs `node dist/bench/run.js`); do not edit by hand.",
  "Benchmarks report, they never fail the build and are not part of `npm test`.",
  "",
  machineLine(),
];
// The hand-written reading of the numbers below this marker survives a re-run.
const ANALYSIS_MARKER = "<!-- hand-written analysis below: kept by npm run bench -->";
const file = path.join(packageRoot(), "docs", "benchmarks.md");
const previous = existsSync(file) ? readFileSync(file, "utf8") : "";
const KEPT = "_Skipped in the latest run; these figures are from an earlier run._";

/** A section's text in the previous file (up to the next heading or the analysis), without an old "kept" line. */
function previousSection(title: string): string | undefined {
  const generated = previous.split(ANALYSIS_MARKER)[0]!;
  const start = generated.indexOf(`\n## ${title}\n`);
  if (start < 0) return undefined;
  const body = generated.slice(start + title.length + 5);
  const end = body.indexOf("\n## ");
  const text = (end < 0 ? body : body.slice(0, end)).trim().replace(KEPT, "").trim();
  return text && text !== NOT_MEASURED ? text : undefined;
}

for (const [key, title, section] of sections) {
  const kept = skipped.has(key) ? previousSection(title) : undefined;
  parts.push("", `## ${title}`, "", kept ? `${KEPT}\n\n${kept}` : await section().catch(unlessInterrupted));
}
const analysis = previous.includes(ANALYSIS_MARKER) ? previous.slice(previous.indexOf(ANALYSIS_MARKER)) : `${ANALYSIS_MARKER}\n`;
writeFileSync(file, parts.join("\n") + "\n\n" + analysis);
log(`wrote ${file}`);
