#!/usr/bin/env bash
# Builds the real helm CLI (tests: lint, template, install, upgrade, uninstall of charts/kube-prepull)
# from its published Go module, pinned in this wrapper module's go.mod, into a cache outside the
# work tree keyed by the helm version, the Go version and go.mod/go.sum. A cache hit does nothing.
# Its own cache key: a new helm never rebuilds the control plane (../controlplane/build.sh).
#
# Prints the binary's path on stdout (last line); progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${KUBE_PREPULL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-prepull}

helm_version=$(sed -n 's|^[[:space:]]*\(require \)\{0,1\}helm.sh/helm/v4 \(v[^ ]*\).*|\2|p' "$here/go.mod" | head -n 1)
go_version=$(go env GOVERSION)
sums=$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)
bin_dir="$cache_root/bin/helm-${helm_version}_${go_version}_${sums}"

if [[ -x $bin_dir/helm && -f $bin_dir/.complete ]]; then
  echo "$bin_dir/helm"
  exit 0
fi

log() { printf '[helm build] %s\n' "$*" >&2; }
log "building helm $helm_version into $bin_dir (a cold build takes a few minutes on 2 cores)"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
tmp_dir="$bin_dir.partial.$$"
rm -rf "$tmp_dir"
mkdir -p "$tmp_dir"
trap 'rm -rf "$tmp_dir"' EXIT

started=$SECONDS
(cd "$here" && go mod download)
# Version stamping as helm's Makefile does it (`helm version` reports it).
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
(cd "$here" && go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$tmp_dir/helm" helm.sh/helm/v4/cmd/helm)

touch "$tmp_dir/.complete"
rm -rf "$bin_dir"
mv "$tmp_dir" "$bin_dir"
trap - EXIT
log "done in $((SECONDS - started))s"
echo "$bin_dir/helm"
