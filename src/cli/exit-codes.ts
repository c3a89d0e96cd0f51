// The exit codes of kube-prepull: CI pipelines branch on them (docs/ci-pipelines.md has the table).
import { CommanderError } from "commander";
import { Interrupted } from "../local-cluster/wait.js";
import type { RunResult } from "../prepull/run.js";

export const EXIT_CODES = {
  /** `run`: every targeted node pulled (or none needed to). Other commands: done. */
  ok: 0,
  /** An unexpected error; the message says what. */
  unexpected: 1,
  /** The command line is wrong: an unknown flag, a bad value, no image, an invalid image reference, an unknown --context. */
  usage: 2,
  /** `run`: pulls failed on some nodes; the summary names each node and its reason. */
  pullFailed: 3,
  /** `run`: not every targeted node pulled within --timeout. */
  timedOut: 4,
  /** `run`, `status`: the cluster could not be used: kubeconfig, connection, permissions, a refused write. */
  clusterError: 5,
  /** `status WORKLOAD`: no such workload, or it has no prepull status yet. */
  notFound: 6,
  /** `run`, `cluster up`, `demo`: interrupted by SIGINT (Ctrl-C), after stopping what it started: 128 + 2, as shells report it. */
  interrupted: 130,
  /** `run`, `cluster up`, `demo`: interrupted by SIGTERM (a cancelled CI job), after stopping what it started: 128 + 15. */
  terminated: 143,
} as const;

/** A command-line mistake found after parsing (in an action): printed, then exit code 2. */
export class UsageError extends Error {}

/** The cluster could not be used (kubeconfig, connection, permissions): printed, then exit code 5. */
export class ClusterError extends Error {}

/** What the command was asked about is not there: printed, then exit code 6. */
export class NotFoundError extends Error {}

/** The exit code of a command interrupted by `signal` ("SIGINT", "SIGTERM"), as a shell reports a death by it. */
export function exitCodeOfSignal(signal: unknown): number {
  return signal === "SIGTERM" ? EXIT_CODES.terminated : EXIT_CODES.interrupted;
}

/** The exit code of a finished `run`; `signal` is the interruption's reason ("SIGINT", "SIGTERM"). */
export function exitCodeOfResult(result: RunResult, signal?: unknown): number {
  switch (result) {
    case "succeeded":
      return EXIT_CODES.ok;
    case "failed":
      return EXIT_CODES.pullFailed;
    case "timed-out":
      return EXIT_CODES.timedOut;
    case "error":
      return EXIT_CODES.clusterError;
    case "interrupted":
      return exitCodeOfSignal(signal);
  }
}

/**
 * The exit code for an error that ended a command: commander's own (already printed) usage errors
 * and UsageError give 2, help and version 0, ClusterError 5, NotFoundError 6, Interrupted 130 or
 * 143, anything else 1.
 */
export function exitCodeOfError(error: unknown): number {
  if (error instanceof Interrupted) return exitCodeOfSignal(error.reason);
  if (error instanceof UsageError) return EXIT_CODES.usage;
  if (error instanceof ClusterError) return EXIT_CODES.clusterError;
  if (error instanceof NotFoundError) return EXIT_CODES.notFound;
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
  return EXIT_CODES.unexpected;
}

/** Whether commander printed the error itself (its usage errors, help): main.ts prints the others. */
export function isReportedByCommander(error: unknown): boolean {
  return error instanceof CommanderError;
}
