// The kube-prepull command tree as unit tests build it: no output unless asked for, no signal
// handlers, no exit code set.
import type { Command } from "commander";
import { buildProgram } from "../../src/cli/program.js";

export function testProgram(err: (line: string) => void = () => undefined): Command {
  return buildProgram({ env: {}, out: () => undefined, err }, {
    isTty: false,
    onStop: () => undefined,
    interruption: () => new AbortController().signal,
    stderr: { isTty: false, columns: () => 80, write: () => undefined },
    setExitCode: () => undefined,
  });
}
