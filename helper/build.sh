#!/usr/bin/env bash
# Build static prepull-helper binaries for linux/amd64 and linux/arm64.
# Usage: build.sh [VERSION] [OUTDIR]   (defaults: v0.1.0, helper/bin)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
# Fall back to the default Go install location if go is not on PATH.
command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"

VERSION="${1:-v0.1.0}"
OUTDIR="${2:-bin}"
mkdir -p "$OUTDIR"

for arch in amd64 arm64; do
  out="$OUTDIR/prepull-helper-linux-$arch"
  # CGO_ENABLED=0: pure-Go build, no libc, so the binary runs in any image.
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.version=$VERSION" -o "$out" .

  # Verify static linking; at least one check must run.
  if command -v file >/dev/null; then
    info="$(file -b "$out")"
    if [[ "$info" != *"statically linked"* ]]; then
      echo "build.sh: $out is not statically linked: $info" >&2
      exit 1
    fi
    how="file: statically linked"
  else
    # The build settings recorded in the binary must say cgo was off.
    if ! go version -m "$out" | grep -q 'CGO_ENABLED=0'; then
      echo "build.sh: $out was not built with CGO_ENABLED=0" >&2
      exit 1
    fi
    how="go version -m: CGO_ENABLED=0"
    if command -v readelf >/dev/null; then
      # A dynamically linked ELF has a PT_INTERP program header.
      if readelf -l "$out" | grep -q INTERP; then
        echo "build.sh: $out has an ELF interpreter (dynamically linked)" >&2
        exit 1
      fi
      how="$how; readelf: no INTERP"
    fi
  fi

  size="$(wc -c <"$out" | tr -d ' ')"
  echo "$out: $size bytes ($how)"
done
