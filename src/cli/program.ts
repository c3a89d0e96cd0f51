// The kube-prepull command tree, without side effects (main.ts runs it; tests inspect it).
import { Command } from "commander";
import { clusterCommand, type CliContext } from "./cluster-command.js";
import { demoCommand } from "./demo-command.js";
import { runCommand, type RunCommandOptions } from "./run-command.js";
import { serveCommand } from "./serve-command.js";
import { DEFAULT_HELPER_IMAGE, VERSION } from "../version.js";
import { statusCommand } from "./status-command.js";

export interface ProgramOptions extends RunCommandOptions {
  /** Whether stdout is a terminal (the demo redraws a line). */
  isTty: boolean;
  /** Long-running commands (serve) hand over how to stop; SIGINT/SIGTERM run it, then exit 0. */
  onStop: (stop: () => Promise<void>) => void;
  /** The name usage and help show: "kube-prepull", or "kubectl prepull" when run as a kubectl plugin. */
  name?: string;
}

/**
 * Gives every command below `command` its settings (addCommand does not), but a one-line hint
 * instead of the whole help after a usage error. Below a command with options of its own
 * (`cluster --name`), the help shows them too: `cluster up --help` lists `--name`.
 */
function inherit(command: Command, path: string): void {
  for (const sub of command.commands) {
    sub.copyInheritedSettings(command).showHelpAfterError(`(see: ${path} ${sub.name()} --help)`);
    if (command.parent) sub.configureHelp({ ...command.configureHelp(), showGlobalOptions: true });
    inherit(sub, `${path} ${sub.name()}`);
  }
}

/** `kube-prepull version`: the version, the helper image it pulls with by default, and the Node.js running it. */
function versionCommand(ctx: CliContext): Command {
  return new Command("version")
    .description("print the version, the default helper image and the Node.js version")
    .action(() => {
      ctx.out(`kube-prepull ${VERSION}`);
      ctx.out(`helper image (default): ${DEFAULT_HELPER_IMAGE}`);
      ctx.out(`node: ${process.version}`);
    });
}

export function buildProgram(ctx: CliContext, options: ProgramOptions): Command {
  const program = new Command(options.name ?? "kube-prepull")
    .description("Pull a workload's new images onto its nodes before it rolls out (Deployments, StatefulSets, DaemonSets, Jobs, CronJobs).")
    .configureOutput({ writeOut: (text) => ctx.out(text.replace(/\n$/, "")), writeErr: (text) => ctx.err(text.replace(/\n$/, "")) })
    // `--version` prints the bare version, for scripts; `version` says more.
    .version(VERSION, "-V, --version", "print the version")
    .showHelpAfterError()
    // Usage errors become exceptions main.ts turns into exit code 2 (exit-codes.ts), in every subcommand.
    .exitOverride();
  program.addCommand(serveCommand(ctx, options.onStop));
  program.addCommand(runCommand(ctx, options));
  program.addCommand(statusCommand(ctx, options));
  program.addCommand(demoCommand(ctx, options.isTty, options.interruption));
  program.addCommand(clusterCommand(ctx, options.interruption));
  program.addCommand(versionCommand(ctx));
  inherit(program, program.name());
  return program;
}
