#!/usr/bin/env node
// The kube-prepull command line. The only module that reads the environment and sets the exit code.
import type { CliContext } from "./cluster-command.js";
import { buildProgram } from "./program.js";

async function main(): Promise<void> {
  const ctx: CliContext = {
    env: process.env,
    out: (line) => process.stdout.write(line + "\n"),
    err: (line) => process.stderr.write(line + "\n"),
  };
  // Long-running commands (serve) hand over how to stop; SIGINT/SIGTERM run it, then exit.
  const onStop = (stop: () => Promise<void>): void => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        ctx.err(`kube-prepull: ${signal}, stopping`);
        void stop().finally(() => process.exit(0));
      });
    }
  };
  try {
    await buildProgram(ctx, { isTty: process.stdout.isTTY === true, onStop }).parseAsync(process.argv);
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode;
    if (typeof code === "number") {
      process.exitCode = code; // commander already printed usage errors and help
      return;
    }
    ctx.err(`kube-prepull: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}

await main();
