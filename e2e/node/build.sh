#!/usr/bin/env bash
# Builds the node-side binaries into ${RUNNEL_K8S_CACHE:-~/.cache/runnel/k8s}/<version>/node-bin/
# (once; prints the dir), all in the module e2e/cluster/build-k8s.sh prepared,
# so they share its dependency versions and Go build cache:
#   kubelet, kube-proxy, kube-scheduler   the control plane's Kubernetes version
#   coredns                               CoreDNS $COREDNS_VERSION with only the plugins the
#                                         e2e's Corefile uses (e2e/node/coredns/main.go)
#   local-path-provisioner                Rancher's dynamic provisioner $LOCAL_PATH_VERSION
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.12.4}"
LOCAL_PATH_VERSION="${LOCAL_PATH_VERSION:-v0.0.30}"
DIR="${RUNNEL_K8S_CACHE:-$HOME/.cache/runnel/k8s}/$K8S_VERSION"
BIN="$DIR/node-bin"
TOOLS=(kubelet kube-proxy kube-scheduler coredns local-path-provisioner)
have_all() { for t in "${TOOLS[@]}"; do [[ -x "$BIN/$t" ]] || return 1; done; }
if have_all; then echo "$BIN"; exit 0; fi
"$HERE/../cluster/build-k8s.sh" >/dev/null   # the module and its go.sum
mkdir -p "$BIN"
exec 9>"$DIR/.node-lock"
flock 9
if have_all; then echo "$BIN"; exit 0; fi
cd "$DIR/src"
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off
LDFLAGS="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
  LDFLAGS+=" -X $p.gitTreeState=clean"
done
build() { # name package
  [[ -x "$BIN/$1" ]] && return
  local t0=$SECONDS
  echo "node/build.sh: building $1" >&2
  go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/$1.tmp" "$2" >&2
  mv "$BIN/$1.tmp" "$BIN/$1"
  echo "node/build.sh: built $1 in $((SECONDS - t0))s" >&2
}
for t in kubelet kube-proxy kube-scheduler; do build "$t" "k8s.io/kubernetes/cmd/$t"; done
if [[ ! -x $BIN/coredns ]]; then
  go get "github.com/coredns/coredns@$COREDNS_VERSION" >&2
  mkdir -p e2e-coredns
  cp "$HERE/coredns/main.go" e2e-coredns/main.go
  build coredns ./e2e-coredns
fi
if [[ ! -x $BIN/local-path-provisioner ]]; then
  go get "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION" >&2
  build local-path-provisioner github.com/rancher/local-path-provisioner
fi
echo "$BIN"
