#!/usr/bin/env node
// The kube-prepull command line. The only module that reads the environment, installs signal
// handlers and sets the exit code (exit-codes.ts).
import path from "node:path";
import type { CliContext } from "./cluster-command.js";
import { Interrupted } from "../local-cluster/wait.js";
import { exitCodeOfError, isReportedByCommander } from "./exit-codes.js";
import { buildProgram } from "./program.js";

/**
 * kubectl runs a plugin `kubectl-prepull` found on PATH for `kubectl prepull …`, with the rest of
 * the arguments (https://kubernetes.io/docs/tasks/extend-kubectl/kubectl-plugins/); installed
 * under that name (a link to this file), the command line calls itself what the user typed.
 */
const programName = (invokedAs: string | undefined): string =>
  path.basename(invokedAs ?? "") === "kubectl-prepull" ? "kubectl prepull" : "kube-prepull";

async function main(): Promise<void> {
  const name = programName(process.argv[1]);
  const ctx: CliContext = {
    env: process.env,
    out: (line) => process.stdout.write(line + "\n"),
    err: (line) => process.stderr.write(line + "\n"),
  };
  // SIGINT/SIGTERM as an AbortSignal whose reason is the signal's name. The handlers are installed
  // only for commands that ask (serve, run, status --watch, cluster up, demo), so Ctrl-C still
  // ends the others at once; a second signal of the same kind ends any command at once.
  let interruption: AbortController | undefined;
  const interrupted = (): AbortSignal => {
    if (!interruption) {
      const controller = new AbortController();
      for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => controller.abort(signal));
      interruption = controller;
    }
    return interruption.signal;
  };
  const onStop = (stop: () => Promise<void>): void => {
    const signal = interrupted();
    signal.addEventListener("abort", () => {
      ctx.err(`${name}: ${String(signal.reason)}, stopping`);
      void stop().finally(() => process.exit(0));
    }, { once: true });
  };
  try {
    await buildProgram(ctx, {
      isTty: process.stdout.isTTY === true,
      onStop,
      interruption: interrupted,
      stderr: { isTty: process.stderr.isTTY === true, columns: () => process.stderr.columns || 80, write: (text) => void process.stderr.write(text) },
      setExitCode: (code) => (process.exitCode = code),
      name,
    }).parseAsync(process.argv);
  } catch (error) {
    // commander printed its usage errors (and help) already.
    if (!isReportedByCommander(error)) ctx.err(`${name}: ${(error as Error).message}`);
    process.exitCode = exitCodeOfError(error);
    // What it started is stopped by now; whatever else still waits (a request to a component
    // that is gone) must not hold the exit.
    if (error instanceof Interrupted) process.exit();
  }
}

await main();
