// Where serve's memory is at its highest: RSS from /proc next to the V8 heap and external memory
// serve reports on its own /metrics (prom-client's default metrics), sampled every few seconds,
// keeping the sample with the highest RSS. VmHWM gives the peak but not what it is made of.
import { residentMemoryBytes } from "../../src/local-cluster/processes.js";
import { sumBy, sumOf } from "./prometheus-text.js";

export interface MemorySample {
  rss: number;
  /** V8 heap spaces' committed bytes by space (new, old, code, large_object, …). */
  heapSpaces: Map<string, number>;
  heapUsed: number;
  /** Memory outside the V8 heap that V8 knows of (Buffers, ArrayBuffers). */
  external: number;
}

const PREFIX = "kube_prepull_nodejs_";

/** The sample's parts from serve's Prometheus text (prefix kube_prepull_, src/observability/metrics.ts). */
export function parseHeapMetrics(text: string, rss: number): MemorySample {
  return {
    rss,
    heapSpaces: sumBy(text, `${PREFIX}heap_space_size_total_bytes`, "space"),
    heapUsed: sumOf(text, `${PREFIX}heap_size_used_bytes`),
    external: sumOf(text, `${PREFIX}external_memory_bytes`),
  };
}

/** Samples serve until `stop`, which returns the sample of highest RSS (undefined if none was taken). */
export function sampleServeMemory(pid: number, opsPort: number, intervalMs = 2000): { stop: () => MemorySample | undefined } {
  let highest: MemorySample | undefined;
  let busy = false;
  const take = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
      const sample = parseHeapMetrics(text, residentMemoryBytes(pid) ?? 0);
      if (!highest || sample.rss > highest.rss) highest = sample;
    } catch {
      // serve busy or gone: the next sample tells
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void take(), intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      return highest;
    },
  };
}

/** "RSS 240 MiB: heap 180 MiB (old 130, new 32, …), 150 used; external 5 MiB". */
export function describeSample(sample: MemorySample): string {
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
  const total = [...sample.heapSpaces.values()].reduce((a, b) => a + b, 0);
  const spaces = [...sample.heapSpaces].filter(([, bytes]) => bytes >= 2 ** 20).sort((a, b) => b[1] - a[1]).map(([space, bytes]) => `${space} ${mib(bytes)}`);
  return `RSS ${mib(sample.rss)} MiB: V8 heap ${mib(total)} MiB committed (${spaces.join(", ")}), ${mib(sample.heapUsed)} MiB of it in use; external ${mib(sample.external)} MiB`;
}
