// The kube-prepull command tree, without side effects (main.ts runs it; tests inspect it).
import { Command } from "commander";
import { clusterCommand, type CliContext } from "./cluster-command.js";
import { demoCommand } from "./demo-command.js";
import { serveCommand } from "./serve-command.js";

export function buildProgram(ctx: CliContext, options: { isTty: boolean; onStop: (stop: () => Promise<void>) => void }): Command {
  const program = new Command("kube-prepull")
    .description("Pull a Deployment's new images onto its nodes before it rolls out.")
    .showHelpAfterError()
    .exitOverride();
  program.addCommand(serveCommand(ctx, options.onStop));
  program.addCommand(demoCommand(ctx, options.isTty));
  program.addCommand(clusterCommand(ctx));
  return program;
}
