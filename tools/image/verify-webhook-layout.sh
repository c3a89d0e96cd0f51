#!/usr/bin/env bash
# Reproduce the webhook image (Dockerfile, target `webhook`) without a Docker engine, in a fresh
# temporary directory, and check that it runs:
#
#   1. the build stage: a build context holding only what the Dockerfile COPYs into /src
#      (package.json, package-lock.json, tsconfig.json, tsconfig.build.json, src/), compiled with
#      `tsc -p tsconfig.build.json` as the Dockerfile does (the repo's dev install stands in for
#      the stage's full `npm ci`); the output must be dist/src and nothing else;
#   2. the webhook stage's /app: package.json, production-only node_modules and dist/src. The image
#      gets node_modules from `npm ci` then `npm prune --omit=dev`; here `npm ci --omit=dev
#      --ignore-scripts` from the same lockfile, checked to hold exactly the lockfile's non-dev
#      packages (so the two are the same tree) and no package with an install script;
#   3. from /app, as uid/gid 65532 where possible and with an empty environment:
#      `node dist/src/cli/main.js --help` and `serve --help` (the image's ENTRYPOINT and CMD), the
#      flags the Deployment in manifests/base passes, and every module under dist/src loading.
#
# Talks to the npm registry only (npm ci); everything else is local. Not verified here: the
# distroless base image itself, the image's size, the multi-arch manifest, running in a container.
# Usage: tools/image/verify-webhook-layout.sh   (needs the repo's dev install: `npm ci`)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
started=$SECONDS
say() { echo "verify-webhook-layout: $*"; }
fail() { echo "verify-webhook-layout: FAIL: $*" >&2; exit 1; }
entries() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' '; }

[[ -x "$repo/node_modules/.bin/tsc" ]] || fail "no TypeScript in $repo/node_modules: run \`npm ci\` first"

image_node="$(sed -nE 's|^FROM +gcr\.io/distroless/nodejs([0-9]+)-.*|\1|p' "$repo/Dockerfile" | head -n1)"
say "node $(node --version) here, npm $(npm --version); the image runs Node ${image_node:-?} (Dockerfile)"
if [[ -n "$image_node" && "$(node -p 'process.versions.node.split(".")[0]')" != "$image_node" ]]; then
  say "note: a different Node major than the image's: what runs here is the layout, not that runtime"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kube-prepull-image.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# Node resolves packages from every ancestor's node_modules: one above the temp directory would
# hide a missing production dependency.
dir="$tmp"
while [[ "$dir" != "/" ]]; do
  dir="$(dirname "$dir")"
  [[ ! -e "$dir/node_modules" ]] || fail "$dir/node_modules exists above the temp directory; set TMPDIR elsewhere"
done

# 1. The build stage (WORKDIR /src).
ctx="$tmp/src"
mkdir -p "$ctx"
cp "$repo/package.json" "$repo/package-lock.json" "$repo/tsconfig.json" "$repo/tsconfig.build.json" "$ctx/"
cp -R "$repo/src" "$ctx/src"
ln -s "$repo/node_modules" "$ctx/node_modules"
(cd "$ctx" && ./node_modules/.bin/tsc -p tsconfig.build.json) || fail "tsc -p tsconfig.build.json failed on the build stage's files"
built="$(entries "$ctx/dist")"
[[ "$built" == "src " ]] || fail "tsc -p tsconfig.build.json wrote dist/{${built% }}; the image copies dist/src only"
say "build stage: tsc -p tsconfig.build.json -> dist/src ($(find "$ctx/dist/src" -name '*.js' | wc -l | tr -d ' ') modules)"

# 2. The webhook stage (WORKDIR /app).
app="$tmp/app"
mkdir -p "$app/dist"
cp "$ctx/package.json" "$ctx/package-lock.json" "$app/"
(cd "$app" && npm_config_update_notifier=false \
  npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null) || fail "npm ci --omit=dev failed"
rm "$app/package-lock.json" # the image holds package.json, node_modules and dist/src only
cp -R "$ctx/dist/src" "$app/dist/src"
layout="$(entries "$app")$(entries "$app/dist")"
[[ "$layout" == "dist node_modules package.json src " ]] || fail "unexpected /app layout: $layout"

# The installed tree is exactly the lockfile's production packages: what `npm prune --omit=dev`
# leaves in the image. No devDependency unless a production package needs it too.
# shellcheck disable=SC2016 # JavaScript, not shell
node -e '
const fs = require("node:fs"), path = require("node:path");
const [app, lockFile, pkgFile] = process.argv.slice(1);
const lock = JSON.parse(fs.readFileSync(lockFile, "utf8")).packages;
const pkg = JSON.parse(fs.readFileSync(pkgFile, "utf8"));
const problems = [];
const entries = Object.entries(lock).filter(([p]) => p.startsWith("node_modules/"));
for (const [p, meta] of entries) {
  const present = fs.existsSync(path.join(app, p, "package.json"));
  if (meta.dev && present) problems.push(`dev-only package installed: ${p}`);
  if (!meta.dev && !meta.optional && !present) problems.push(`production package missing: ${p}`);
  if (!meta.dev && meta.hasInstallScript) problems.push(`${p} has an install script: the image runs it, --ignore-scripts here does not`);
}
const installed = entries.filter(([p]) => fs.existsSync(path.join(app, p, "package.json"))).map(([p]) => p);
for (const name of ["typescript", "eslint", "typescript-eslint", "@eslint/js"]) {
  if (installed.includes(`node_modules/${name}`)) problems.push(`${name} is in the production node_modules`);
}
const kept = [];
for (const name of Object.keys(pkg.devDependencies ?? {})) {
  if (!installed.includes(`node_modules/${name}`)) continue;
  const users = entries.filter(([p, m]) => !m.dev && installed.includes(p) && (m.dependencies ?? {})[name] !== undefined)
    .map(([p]) => p.replace(/^.*node_modules\//, ""));
  if (users.length === 0) problems.push(`devDependency ${name} installed with no production package needing it`);
  else kept.push(`${name} (needed by ${users.join(", ")})`);
}
if (problems.length > 0) { console.error(problems.join("\n")); process.exit(1); }
console.log(`verify-webhook-layout: node_modules: ${installed.length} packages, exactly the lockfile production set; no devDependency` +
  (kept.length ? ` except those production packages also need: ${kept.join("; ")}` : ""));
' "$app" "$repo/package-lock.json" "$repo/package.json" || fail "production node_modules does not match the lockfile"

nm_kib="$(du -sk "$app/node_modules" | cut -f1)"
app_kib="$(du -sk "$app" | cut -f1)"
# Largest top-level packages (one du each: du counts a directory once across its arguments).
largest="$(cd "$app/node_modules" && for d in [!@.]* @*/*; do [[ -d "$d" ]] && du -sk -- "$d"; done |
  sort -rn | head -n 3 | awk '{printf "%s%s %.1f MiB", (NR > 1 ? ", " : ""), $2, $1 / 1024}')"
say "node_modules: $((nm_kib / 1024)) MiB on disk; /app $((app_kib / 1024)) MiB; largest: $largest"

# 3. Run it as the image does: from /app, uid/gid 65532 (USER 65532:65532), no inherited environment.
chmod 755 "$tmp"
mkdir -p "$tmp/home"
as_image=(env -i "PATH=$(dirname "$(command -v node)"):/usr/bin:/bin" "HOME=$tmp/home")
run_as="current user $(id -u)"
if [[ "$(id -u)" == 0 ]] && command -v setpriv >/dev/null; then
  chmod 777 "$tmp/home"
  as_image=(setpriv --reuid=65532 --regid=65532 --clear-groups "${as_image[@]}")
  run_as="uid/gid 65532"
fi
run() { (cd "$app" && timeout 60 "${as_image[@]}" node "$@"); }

top_help="$(run dist/src/cli/main.js --help)" || fail "node dist/src/cli/main.js --help exited $?"
grep -qE '^ +serve( |$)' <<<"$top_help" || fail "--help lists no serve command"
serve_help="$(run dist/src/cli/main.js serve --help)" || fail "node dist/src/cli/main.js serve --help exited $?"

flags=(--host --port --ops-port --namespace --tls-cert-file --tls-key-file --helper-image
  --no-leader-elect --leader-election-namespace --leader-election-id --log-level)
deployment="$repo/manifests/base/deployment.yaml"
if [[ -f "$deployment" ]]; then
  # Every flag the shipped Deployment passes to the image.
  mapfile -t from_manifest < <(sed -nE 's/^[[:space:]]*-[[:space:]]+"?(--[a-z0-9-]+).*/\1/p' "$deployment")
  [[ ${#from_manifest[@]} -gt 0 ]] || fail "found no --flags in the args of $deployment"
  flags+=("${from_manifest[@]}")
fi
missing=()
for flag in $(printf '%s\n' "${flags[@]}" | sort -u); do
  grep -qE -- "^ +(-[a-zA-Z], )?$flag( |$)" <<<"$serve_help" || missing+=("$flag")
done
[[ ${#missing[@]} -eq 0 ]] || fail "serve --help does not list: ${missing[*]}"
say "ran as $run_as from /app: --help and serve --help exit 0; serve takes $(printf '%s\n' "${flags[@]}" | sort -u | wc -l | tr -d ' ') checked flags (incl. every one in manifests/base/deployment.yaml)"

# Every compiled module loads with production dependencies only (main.js runs the CLI: done above).
loaded="$(run --input-type=module -e '
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
const files = readdirSync("dist/src", { recursive: true }).map(String)
  .filter((f) => f.endsWith(".js") && f !== join("cli", "main.js")).sort();
for (const f of files) await import(pathToFileURL(resolve("dist/src", f)).href);
console.log(files.length);
process.exit(0);
')" || fail "a module under dist/src does not load with production dependencies only"
say "all $loaded other modules under dist/src load"

say "ok in $((SECONDS - started))s"
