// The by-hand bench scripts' (pod-shape, concurrent-reviews, soak) `--name value` flags; `npm run
// bench` itself parses strictly (bench/options.ts).
export function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback;
}
