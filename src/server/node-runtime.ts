// How the webhook image runs Node.js for `serve` (the Dockerfile's ENTRYPOINT and ENV; a unit test
// keeps them equal), so that the benchmarks start serve the way it is deployed. Both trade a little
// CPU for memory (docs/benchmarks.md, Scale: serve's RSS at 5000 nodes):
// - a young generation of 2 × 4 MiB instead of V8's 2 × 16 MiB, which sat mostly empty between
//   scavenges (https://v8.dev/blog/orinoco-parallel-scavenger);
// - two glibc malloc arenas instead of up to eight per core, which fragment native memory in a
//   process with several threads (libuv's pool, V8's GC threads; mallopt(3), M_ARENA_MAX).
export const SERVE_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4"];
export const SERVE_ENVIRONMENT: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };
