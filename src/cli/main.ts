#!/usr/bin/env node
// The kube-prepull command line. The only module that reads the environment, installs signal
// handlers and sets the exit code (exit-codes.ts).
import type { CliContext } from "./cluster-command.js";
import { exitCodeOfError, isReportedByCommander } from "./exit-codes.js";
import { buildProgram } from "./program.js";

async function main(): Promise<void> {
  const ctx: CliContext = {
    env: process.env,
    out: (line) => process.stdout.write(line + "\n"),
    err: (line) => process.stderr.write(line + "\n"),
  };
  // SIGINT/SIGTERM as an AbortSignal whose reason is the signal's name. The handlers are installed
  // only for commands that ask (serve, run), so Ctrl-C still ends the others at once; a second
  // signal of the same kind ends any command at once.
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
      ctx.err(`kube-prepull: ${String(signal.reason)}, stopping`);
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
    }).parseAsync(process.argv);
  } catch (error) {
    // commander printed its usage errors (and help) already.
    if (!isReportedByCommander(error)) ctx.err(`kube-prepull: ${(error as Error).message}`);
    process.exitCode = exitCodeOfError(error);
  }
}

await main();
