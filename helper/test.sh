#!/usr/bin/env bash
# Format check, vet, unit tests, then a full cross-build of the helper.
# Usage: test.sh [VERSION]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"

VERSION="${1:-v0.1.0}"

# Use the gofmt that ships with the go toolchain in use.
unformatted="$("$(go env GOROOT)/bin/gofmt" -l .)"
if [[ -n "$unformatted" ]]; then
  echo "test.sh: files need gofmt:" >&2
  echo "$unformatted" >&2
  exit 1
fi

go vet ./...
go test -count=1 ./...

outdir="$(mktemp -d)"
trap 'rm -rf "$outdir"' EXIT
./build.sh "$VERSION" "$outdir"
