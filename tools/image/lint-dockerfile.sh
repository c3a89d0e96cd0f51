#!/usr/bin/env bash
# Lint the Dockerfile without a Docker engine:
#   1. dockerfile-utils (devDependency; the validator behind the Dockerfile language server):
#      syntax, flags, instruction arguments, stage names, ARGs in FROM, casing, WORKDIR. Its CLI
#      exits non-zero on errors only; here any finding, warning or error, fails.
#   2. test/unit/image/dockerfile.test.ts (compiled: run `npm run build` first): the rules of
#      BuildKit's `docker build --check` and hadolint it lacks, and the project's own (targets,
#      helper build matching helper/build.sh, the layout verify-webhook-layout.sh reproduces).
# Local only: no network.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
lint="node_modules/.bin/dockerfile-utils"
[[ -x "$lint" ]] || { echo "lint-dockerfile: $lint missing: run \`npm ci\`" >&2; exit 1; }

findings="$("$lint" lint --json Dockerfile)" || true
if [[ "$findings" != "[]" ]]; then
  echo "lint-dockerfile: dockerfile-utils $("$lint" --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1) findings in Dockerfile:" >&2
  "$lint" lint Dockerfile >&2 || true
  exit 1
fi
echo "lint-dockerfile: dockerfile-utils: no findings"

compiled="dist/test/unit/image/dockerfile.test.js"
[[ -f "$compiled" ]] || { echo "lint-dockerfile: $compiled missing: run \`npm run build\` first" >&2; exit 1; }
node --test --test-reporter=spec "$compiled"
echo "lint-dockerfile: ok"
