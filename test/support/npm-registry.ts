// A read-only npm registry on 127.0.0.1 holding exactly the packages of a lockfile (the production
// ones): the packuments npm asks for when it installs a packed tarball, built from the lockfile's
// entries. The tarballs are not served: npm finds them in its own cache by their integrity (`npm
// ci` put them there); one it lacks is a 404, and the install fails saying which. So a test can
// run `npm install -g <tarball>` as a CI pipeline would, without a connection outside 127.0.0.0/8.
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";

interface LockEntry {
  name?: string;
  version: string;
  integrity?: string;
  dev?: boolean;
  link?: boolean;
  [field: string]: unknown;
}

/** Manifest fields npm's resolver reads from a packument version. */
const MANIFEST_FIELDS = ["dependencies", "optionalDependencies", "peerDependencies", "peerDependenciesMeta", "bin", "engines", "os", "cpu", "license"];

/** The packuments of a lockfile's non-dev packages, by name; `tarballBase` prefixes their tarball URLs. */
export function packumentsOf(lockfile: { packages: Record<string, LockEntry> }, tarballBase: string): Map<string, { name: string; versions: Record<string, unknown>; "dist-tags": Record<string, string> }> {
  const packuments = new Map<string, { name: string; versions: Record<string, unknown>; "dist-tags": Record<string, string> }>();
  for (const [key, entry] of Object.entries(lockfile.packages)) {
    if (key === "" || entry.dev || entry.link || !entry.integrity) continue;
    const name = entry.name ?? key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);
    const packument = packuments.get(name) ?? { name, versions: {}, "dist-tags": {} };
    const manifest: Record<string, unknown> = {
      name,
      version: entry.version,
      dist: { tarball: `${tarballBase}/${name}/-/${name.split("/").pop()}-${entry.version}.tgz`, integrity: entry.integrity },
    };
    for (const field of MANIFEST_FIELDS) if (entry[field] !== undefined) manifest[field] = entry[field];
    packument.versions[entry.version] = manifest;
    packument["dist-tags"].latest ??= entry.version;
    packuments.set(name, packument);
  }
  return packuments;
}

export interface LockfileRegistry {
  url: string;
  /** Paths asked for that the registry does not have (a tarball missing from npm's cache shows here). */
  missing: string[];
  stop: () => Promise<void>;
}

export async function startLockfileRegistry(lockfilePath: string): Promise<LockfileRegistry> {
  const lockfile = JSON.parse(readFileSync(lockfilePath, "utf8")) as { packages: Record<string, LockEntry> };
  const missing: string[] = [];
  let packuments = new Map<string, unknown>();
  const server = http.createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? "/").slice(1));
    const packument = packuments.get(name);
    if (req.method !== "GET" || !packument) {
      missing.push(req.url ?? "");
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(packument));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  packuments = packumentsOf(lockfile, url);
  return { url, missing, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}
