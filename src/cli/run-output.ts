// What `kube-prepull run` prints: a live progress bar on a terminal, plain lines otherwise (both on
// stderr), and the summary (stdout). The formatting is pure; the two views only add timing.
import type { Progress } from "../prepull/progress.js";
import type { RunSummary } from "../prepull/run.js";
import { unsupportedNote } from "../prepull/targets.js";
import type { RunObserver } from "../run.js";

/** "[######------------------]" */
export function progressBar(done: number, total: number, width = 24): string {
  const filled = total === 0 ? 0 : Math.min(width, Math.round((done / total) * width));
  return "[" + "#".repeat(filled) + "-".repeat(width - filled) + "]";
}

/** "45s", "2m05s", "1h02m" */
export function formatElapsed(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/** "40/100 nodes pulled, 2 failed": what a plain line is printed for when it changes. */
export function progressCounts(progress: Progress): string {
  const failed = progress.failures.length > 0 ? `, ${progress.failures.length} failed` : "";
  return `${progress.pulled}/${progress.desired} nodes pulled${failed}`;
}

/** A plain progress line: "   12s  40/100 nodes pulled, 2 failed (25 pulling, 33 waiting)". */
export function progressLine(progress: Progress, elapsedSeconds: number): string {
  const detail = [
    ...(progress.inFlight > 0 ? [`${progress.inFlight} pulling`] : []),
    ...(progress.waiting.length > 0 ? [`${progress.waiting.length} waiting`] : []),
  ];
  return `${formatElapsed(elapsedSeconds).padStart(6)}  ${progressCounts(progress)}${detail.length > 0 ? ` (${detail.join(", ")})` : ""}`;
}

/** The terminal's progress line: bar, counts, elapsed time; cut to the terminal's width (a wrapped line would break the \r redraw). */
export function progressBarLine(progress: Progress, elapsedSeconds: number, columns: number): string {
  const line = `${progressBar(progress.pulled, progress.desired)} ${progressCounts(progress)}  ${formatElapsed(elapsedSeconds)}`;
  return line.slice(0, Math.max(10, columns - 1));
}

export function startedLine(info: { images: string[]; namespace: string; daemonSet: string; targets: number; skipped: number; unsupported: number; limit: number }): string {
  const skipped = info.skipped > 0 ? ` (${info.skipped} already have ${info.images.length === 1 ? "it" : "them"})` : "";
  const waves = info.limit < info.targets ? `, ${info.limit} at a time` : "";
  return `pulling ${info.images.join(", ")} on ${plural(info.targets, "node")}${skipped}${waves} with daemonset/${info.daemonSet} in namespace ${info.namespace}${unsupportedNote(info.unsupported)}`;
}

/** Failures listed one per line up to this many; --output json lists them all. */
const LISTED_FAILURES = 20;

/** The summary of a run as text (stdout). */
export function summaryLines(summary: RunSummary): string[] {
  const { nodes } = summary;
  const took = `${summary.durationSeconds.toFixed(1)}s`;
  const skipped = nodes.skipped > 0 ? `, ${nodes.skipped} already had ${summary.images.length === 1 ? "it" : "them"}` : "";
  const headline: Record<RunSummary["result"], string> = {
    succeeded: summary.daemonSet === null
      ? `succeeded: nothing to pull (${summary.message})`
      : `succeeded: ${summary.images.join(", ")} pulled on ${nodes.pulled}/${nodes.targeted} nodes in ${took}${skipped}${unsupportedNote(nodes.unsupported)}`,
    failed: `failed: ${nodes.failed} of ${nodes.targeted} nodes could not pull ${summary.images.join(", ")} (${nodes.pulled} pulled, ${took})${unsupportedNote(nodes.unsupported)}`,
    "timed-out": `timed out: ${summary.message}${nodes.failed > 0 ? `, ${nodes.failed} failed` : ""}`,
    interrupted: `interrupted: ${summary.message} after ${took} (${nodes.pulled}/${nodes.targeted} nodes pulled)`,
    error: `error: ${summary.message}`,
  };
  const failures = summary.failures.slice(0, LISTED_FAILURES).map((f) => `  ${f.node}  ${f.reason}${f.message ? `: ${f.message}` : ""}`);
  const more = summary.failures.length > LISTED_FAILURES ? [`  … and ${summary.failures.length - LISTED_FAILURES} more (--output json lists every node)`] : [];
  const cleanup = summary.daemonSet !== null ? [`daemonset/${summary.daemonSet} deleted`] : [];
  return [headline[summary.result], ...failures, ...more, ...cleanup];
}

/**
 * When a plain progress line is due: undefined when the counts did not change since the last
 * printed line, 0 for now, else the milliseconds to wait (lines at most every `intervalMs`).
 */
export function lineDue(last: { counts: string; at: number } | undefined, counts: string, now: number, intervalMs: number): number | undefined {
  if (last?.counts === counts) return undefined;
  if (!last) return 0;
  return Math.max(0, last.at + intervalMs - now);
}

export interface ProgressView extends RunObserver {
  /** Ends the progress display (the final line) before the summary is printed. */
  close(): void;
}

interface ViewOptions {
  images: string[];
  namespace: string;
  now: () => number;
  startedAt: number;
}

/** A terminal: one line redrawn with \r on every change and every second (the elapsed time). */
export function terminalView(write: (text: string) => void, columns: () => number, options: ViewOptions): ProgressView {
  let last: Progress | undefined;
  let drawn = false;
  const elapsed = (): number => (options.now() - options.startedAt) / 1000;
  const draw = (): void => {
    if (!last) return;
    write(`\r${progressBarLine(last, elapsed(), columns())}\x1b[K`);
    drawn = true;
  };
  const ticker = setInterval(draw, 1000);
  ticker.unref();
  const note = (line: string): void => {
    write(`${drawn ? "\r\x1b[K" : ""}${line}\n`);
    draw();
  };
  return {
    started: (info) => note(startedLine({ ...info, images: options.images, namespace: options.namespace })),
    progress: (progress) => {
      const changed = !last || progressCounts(last) !== progressCounts(progress);
      last = progress;
      if (changed) draw();
    },
    note,
    close: () => {
      clearInterval(ticker);
      if (!drawn) return;
      draw();
      write("\n");
    },
  };
}

/** Not a terminal (a CI log): a line when the counts change, at most every `intervalMs`, and a final one. */
export function lineView(line: (text: string) => void, options: ViewOptions & { intervalMs: number }): ProgressView {
  let last: Progress | undefined;
  let printed: { counts: string; at: number } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const elapsed = (): number => (options.now() - options.startedAt) / 1000;
  const print = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (!last) return;
    line(progressLine(last, elapsed()));
    printed = { counts: progressCounts(last), at: options.now() };
  };
  const consider = (): void => {
    if (!last || timer) return;
    const due = lineDue(printed, progressCounts(last), options.now(), options.intervalMs);
    if (due === 0) print();
    else if (due !== undefined) timer = setTimeout(print, due);
  };
  return {
    started: (info) => line(startedLine({ ...info, images: options.images, namespace: options.namespace })),
    progress: (progress) => {
      last = progress;
      consider();
    },
    note: line,
    close: () => {
      clearTimeout(timer);
      if (last) print();
    },
  };
}
