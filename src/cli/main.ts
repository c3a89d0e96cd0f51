#!/usr/bin/env node
// The kube-prepull command line. The only module that reads the environment and sets the exit code.
import { Command } from "commander";
import { clusterCommand, type CliContext } from "./cluster-command.js";

export function buildProgram(ctx: CliContext): Command {
  const program = new Command("kube-prepull")
    .description("Pull a Deployment's new images onto its nodes before it rolls out.")
    .showHelpAfterError()
    .exitOverride();
  program.addCommand(clusterCommand(ctx));
  return program;
}

async function main(): Promise<void> {
  const ctx: CliContext = {
    env: process.env,
    out: (line) => process.stdout.write(line + "\n"),
    err: (line) => process.stderr.write(line + "\n"),
  };
  try {
    await buildProgram(ctx).parseAsync(process.argv);
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
