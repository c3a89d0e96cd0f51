// Reading samples out of a Prometheus text exposition (the apiserver's /metrics, serve's): enough for
// the benchmarks' sums by label. Pure.

/** The sample lines of metric `name` whose labels contain every `labels` pair and the text `contains`. */
export function samples(text: string, name: string, labels: Record<string, string> = {}, contains = ""): string[] {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  return text.split("\n")
    .filter((line) => (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && wanted.every((pair) => line.includes(pair)) && line.includes(contains));
}

const valueOf = (line: string): number => Number(line.split(" ").pop());

/** The sum of those samples' values. */
export function sumOf(text: string, name: string, labels: Record<string, string> = {}, contains = ""): number {
  return samples(text, name, labels, contains).reduce((sum, line) => sum + valueOf(line), 0);
}

/** Metric `name`'s samples (with every `labels` pair) summed by the value of label `by`. */
export function sumBy(text: string, name: string, by: string, labels: Record<string, string> = {}): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of samples(text, name, labels)) {
    const key = new RegExp(`[{,]${by}="([^"]*)"`).exec(line)?.[1] ?? "";
    sums.set(key, (sums.get(key) ?? 0) + valueOf(line));
  }
  return sums;
}
