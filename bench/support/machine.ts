// What every benchmark reports besides its numbers: the machine it ran on, and per-process CPU time
// and peak memory read from /proc (Linux only).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";

export { peakMemoryBytes } from "../../src/local-cluster/processes.js";

export const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
export const seconds = (ms: number): string => (ms / 1000).toFixed(1) + " s";
export const mebibytes = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  // /proc/<pid>/stat fields 14 and 15: utime, stime in clock ticks (100 Hz on Linux).
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function cpuModel(): string {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("model name"));
    return line?.split(":")[1]?.trim() ?? "unknown CPU";
  } catch {
    return os.cpus()[0]?.model ?? "unknown CPU";
  }
}

function nproc(): string {
  try {
    return execFileSync("nproc", { encoding: "utf8" }).trim();
  } catch {
    return String(os.availableParallelism());
  }
}

/** One Markdown line: date, `nproc`, CPU model, RAM, Node version. */
export function machineLine(now = new Date()): string {
  return (
    `Measured ${now.toISOString().slice(0, 16).replace("T", " ")} UTC on ${nproc()} CPUs (\`nproc\`), ${cpuModel()}, ` +
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${os.type()} ${os.release()}.`
  );
}

/** A Markdown table. */
export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
