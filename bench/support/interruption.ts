// SIGINT/SIGTERM for the benchmarks (their mains install it): one AbortSignal, which a cluster
// start in progress obeys (it stops what it launched), and the stops of what the benchmark has
// running (clusters, serve, the script), run before it exits 130/143 — so an interrupted
// `npm run bench` leaves no cluster and no serve behind.
import { exitCodeOfSignal } from "../../src/cli/exit-codes.js";
import { log } from "./machine.js";

const controller = new AbortController();
const stops = new Set<() => Promise<void>>();

/** Fires on the first SIGINT or SIGTERM (its reason is the signal's name), once the handlers are installed. */
export const interruption: AbortSignal = controller.signal;

/**
 * Has `stop` run if the benchmark is interrupted while what it stops runs. Returns the release:
 * call it once that was stopped the ordinary way.
 */
export function stopOnInterrupt(stop: () => Promise<void>): () => void {
  stops.add(stop);
  return () => void stops.delete(stop);
}

/**
 * On SIGINT or SIGTERM: says so, aborts `interruption`, runs every registered stop, then exits
 * 130 (SIGINT) or 143 (SIGTERM). A second signal of the same kind ends the process at once.
 */
export function installInterruptHandlers(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      if (controller.signal.aborted) return;
      log(`${signal}: interrupted, stopping the cluster(s) and processes it started`);
      controller.abort(signal);
      void Promise.allSettled([...stops].map((stop) => stop())).then(() => {
        log(`${signal}: stopped everything it started`);
        process.exit(exitCodeOfSignal(signal));
      });
    });
  }
}

/**
 * For a benchmark's main: an error after an interruption is the interruption's doing (a request
 * to a stopped cluster): wait for the handler, which exits once everything is stopped.
 */
export async function unlessInterrupted(error: unknown): Promise<never> {
  if (!interruption.aborted) throw error;
  return new Promise<never>(() => undefined);
}
