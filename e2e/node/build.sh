#!/usr/bin/env bash
# Builds the node binaries (kubelet, kube-proxy, kube-scheduler) of the same
# Kubernetes version as the control plane, in the module e2e/cluster/build-k8s.sh
# prepared, into ${RUNNEL_K8S_CACHE:-~/.cache/runnel/k8s}/<version>/node-bin/.
# Skips what is built already. Prints the bin dir on stdout.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
DIR="${RUNNEL_K8S_CACHE:-$HOME/.cache/runnel/k8s}/$K8S_VERSION"
BIN="$DIR/node-bin"
TOOLS=(kubelet kube-proxy kube-scheduler)
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
for t in "${TOOLS[@]}"; do
  [[ -x "$BIN/$t" ]] && continue
  echo "node/build.sh: building $t $K8S_VERSION" >&2
  go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/$t.tmp" "k8s.io/kubernetes/cmd/$t" >&2
  mv "$BIN/$t.tmp" "$BIN/$t"
done
echo "$BIN"
