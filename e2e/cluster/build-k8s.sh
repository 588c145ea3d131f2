#!/usr/bin/env bash
# Build a modern Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kubectl) and etcd from the Go module proxy, cached outside the repo at
#   ${RUNNEL_K8S_CACHE:-~/.cache/runnel/k8s}/<version>/bin/
# Skips the build when the binaries are already there. Prints the bin dir on stdout.
#
# How: k8s.io/kubernetes is a normal module on the proxy, but its go.mod maps
# every k8s.io/<staging> module to ./staging/src/... with `replace`. A throwaway
# module that requires k8s.io/kubernetes and replaces each staging module with
# its published v0.<minor>.<patch> tag builds the same code. etcd's server main
# package (go.etcd.io/etcd/server/v3) is built in the same module, at the
# version Kubernetes itself pins.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
CACHE_ROOT="${RUNNEL_K8S_CACHE:-$HOME/.cache/runnel/k8s}"
DIR="$CACHE_ROOT/$K8S_VERSION"
BIN="$DIR/bin"
TOOLS=(kube-apiserver kube-controller-manager kubectl etcd)

have_all() { for t in "${TOOLS[@]}"; do [[ -x "$BIN/$t" ]] || return 1; done; }
if have_all; then echo "$BIN"; exit 0; fi

log() { echo "build-k8s.sh: $*" >&2; }
command -v go >/dev/null || { log "go not found (need Go >= 1.24 to build Kubernetes $K8S_VERSION)"; exit 1; }

# one build at a time per version (concurrent runs wait, then find the binaries)
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
if have_all; then echo "$BIN"; exit 0; fi
log "building Kubernetes $K8S_VERSION into $BIN (a cold build takes 10-20 minutes on 2 cores)"

STAGING_VERSION="v0.${K8S_VERSION#v1.}"     # v1.34.4 -> v0.34.4
SRC="$DIR/src"
mkdir -p "$SRC" "$BIN"
cd "$SRC"
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off

log "resolving k8s.io/kubernetes@$K8S_VERSION"
KMOD=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[[ -f "$KMOD" ]] || { log "could not download k8s.io/kubernetes@$K8S_VERSION go.mod"; exit 1; }

{
  echo "module runnel.dev/e2e-k8s-build"
  echo
  echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  # every `k8s.io/x => ./staging/src/k8s.io/x` in kubernetes' go.mod
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$STAGING_VERSION"'#p' "$KMOD"
  echo ")"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubectl/pkg/cmd"
	_ "go.etcd.io/etcd/server/v3/etcdmain"
)
GO

log "resolving dependencies (go mod tidy)"
go mod tidy -e >&2 || true
# etcd's server module is only an indirect dependency of kubernetes; pin it there.
ETCD_VERSION=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
log "etcd server version: $ETCD_VERSION"

LDFLAGS="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
  LDFLAGS+=" -X $p.gitTreeState=clean -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done

build() { # name pkg
  local t0=$SECONDS
  log "building $1 ($2)"
  go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/$1.tmp" "$2" >&2
  mv "$BIN/$1.tmp" "$BIN/$1"
  log "built $1 in $((SECONDS - t0))s"
}
[[ -x "$BIN/etcd" ]] || build etcd go.etcd.io/etcd/server/v3
[[ -x "$BIN/kube-apiserver" ]] || build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
[[ -x "$BIN/kube-controller-manager" ]] || build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
[[ -x "$BIN/kubectl" ]] || build kubectl k8s.io/kubernetes/cmd/kubectl
echo "$K8S_VERSION" > "$DIR/VERSION"
echo "$ETCD_VERSION" > "$DIR/ETCD_VERSION"
echo "$BIN"
