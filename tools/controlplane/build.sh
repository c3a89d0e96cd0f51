#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok), the real node's kubelet and crane (images for the local registry) from their
# published Go modules into a cache outside the work tree, keyed by the
# component versions, the Go version and the wrapper modules' go.sum files. A cache hit does nothing.
#
# Why wrapper modules: k8s.io/kubernetes requires its staging modules at v0.0.0 with replace
# directives that only apply in the main module, and etcd's server module carries monorepo-relative
# replaces, so `go install …@version` fails for both (kubernetes/kubernetes#79384, etcd-io/etcd#18501).
# See ../../docs/local-cluster.md.
#
# Prints the binary directory on stdout (last line); progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${KUBE_PREPULL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-prepull}

mod_version() { # module path, go.mod dir → version required there
  sed -n "s|^[[:space:]]*\(require \)\{0,1\}$1 \(v[^ ]*\).*|\2|p" "$2/go.mod" | head -n 1
}
k8s_version=$(mod_version k8s.io/kubernetes "$here/k8s")
etcd_version=$(mod_version go.etcd.io/etcd/server/v3 "$here/etcd")
kwok_version=$(mod_version sigs.k8s.io/kwok "$here/kwok")
crane_version=$(mod_version github.com/google/go-containerregistry "$here/crane")
go_version=$(go env GOVERSION)
sums=$(cat "$here"/{k8s,etcd,kwok,crane}/go.{mod,sum} "$here/etcd/main.go" | sha256sum | cut -c1-12)
key="k8s-${k8s_version}_etcd-${etcd_version}_kwok-${kwok_version}_crane-${crane_version}_${go_version}_${sums}"
bin_dir="$cache_root/bin/$key"

if [[ -x $bin_dir/kube-apiserver && -f $bin_dir/.complete ]]; then
  echo "$bin_dir"
  exit 0
fi

log() { printf '[control-plane build] %s\n' "$*" >&2; }
log "building $key"
log "into $bin_dir (a cold build takes about 16 min on 2 cores, docs/local-cluster.md; later runs reuse it)"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
# Two cores: a full -p 2 link of kube-apiserver peaks at a few GiB; that fits in 24 GiB.
tmp_dir="$bin_dir.partial.$$"
rm -rf "$tmp_dir"
mkdir -p "$tmp_dir"
trap 'rm -rf "$tmp_dir"' EXIT

started=$SECONDS
# build_with_progress <label> <dir> <ldflags> <output> <package…>: runs `go build -v`, which prints
# each package as it compiles it, and turns that into "n/N packages" lines against `go list -deps`.
build_with_progress() {
  local label=$1 dir=$2 ldflags=$3 out=$4
  shift 4
  log "$label: downloading modules"
  (cd "$dir" && go mod download)
  local total
  total=$(cd "$dir" && go list -deps "$@" | wc -l)
  log "$label: compiling $total packages"
  local n=0 last=-1 pct
  (cd "$dir" && go build -v -trimpath -buildvcs=false -ldflags "$ldflags" -o "$out" "$@" 2>&1) | while IFS= read -r line; do
    case $line in
      *" "*) printf '%s\n' "$line" >&2 ;;  # compiler diagnostics (package paths have no spaces)
      *) n=$((n + 1)) ;;
    esac
    pct=$(( total > 0 ? n * 100 / total : 0 ))
    if (( pct / 10 != last )); then
      last=$(( pct / 10 ))
      log "$label: $n/$total packages ($pct%), $((SECONDS - started))s elapsed"
    fi
  done
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { log "$label: build failed"; return 1; }
}

# Version stamping as upstream's hack/lib/version.sh does it; kwok and kubectl read it, and
# without it /version reports v0.0.0-master.
minor=${k8s_version#v1.}; minor=${minor%%.*}
x=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  x+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  x+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
done

build_with_progress "etcd $etcd_version" "$here/etcd" "-s -w" "$tmp_dir/etcd" .
build_with_progress "kwok $kwok_version" "$here/kwok" "-s -w" "$tmp_dir/kwok" sigs.k8s.io/kwok/cmd/kwok
build_with_progress "kubernetes $k8s_version" "$here/k8s" "-s -w$x" "$tmp_dir/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet
build_with_progress "crane $crane_version" "$here/crane" "-s -w" "$tmp_dir/crane" \
  github.com/google/go-containerregistry/cmd/crane

touch "$tmp_dir/.complete"
rm -rf "$bin_dir"
mv "$tmp_dir" "$bin_dir"
trap - EXIT
log "done in $((SECONDS - started))s"
echo "$bin_dir"
