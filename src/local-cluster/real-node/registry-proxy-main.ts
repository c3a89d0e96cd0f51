// The registry proxy as its own process, started by the local cluster beside the registries:
//   node registry-proxy-main.js --state-dir DIR LISTEN_PORT=UPSTREAM_URL [LISTEN_PORT=UPSTREAM_URL …]
// Each pair is one listener on 127.0.0.1 forwarding to one registry, with its own configuration
// (PUT/GET /_kube-prepull/proxy). `--state-dir` only names the cluster in the command line, so that
// `down` recognises the process (processes.ts stopProcessGroup).
import http from "node:http";
import { pathToFileURL } from "node:url";
import { createRegistryProxy } from "./registry-proxy.js";

function main(args: string[]): void {
  const pairs = args.filter((a, i) => !a.startsWith("--") && args[i - 1] !== "--state-dir");
  if (pairs.length === 0) {
    process.stderr.write("usage: registry-proxy-main --state-dir DIR PORT=http://127.0.0.1:UPSTREAM …\n");
    process.exit(2);
  }
  for (const pair of pairs) {
    const [port, upstream] = pair.split("=");
    const proxy = createRegistryProxy(new URL(upstream!));
    const server = http.createServer(proxy.handler);
    server.listen(Number(port), "127.0.0.1", () => process.stdout.write(`registry proxy 127.0.0.1:${port} → ${upstream}\n`));
  }
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => process.exit(0));
}

// Only when run as a program (the image check loads every module without running it).
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) main(process.argv.slice(2));
