#!/usr/bin/env bash
# Builds Helm from the Go module proxy (no prebuilt binary download exists in
# this environment) and prints the path of the binary on stdout.
#
#   scripts/install-helm.sh            # -> ~/.cache/runnel/helm/v3.22.0/helm
#   HELM_VERSION=v3.21.4 scripts/install-helm.sh
#
# Idempotent: when $RUNNEL_CACHE/helm/$HELM_VERSION/helm exists and runs, it
# is printed and nothing is built.  A build takes a few minutes on 2 cores; it
# runs under `nice` so it does not starve a concurrent cargo build.
#
# The version string and the Kubernetes version Helm assumes for
# `helm template`/`helm lint` (.Capabilities.KubeVersion and the deprecated-API
# lint rule) are normally injected by Helm's Makefile with -ldflags; we do the
# same here, deriving the Kubernetes minor from the k8s.io/client-go version in
# Helm's own go.mod exactly as that Makefile does.
set -euo pipefail

: "${HELM_VERSION:=v3.22.0}"
: "${RUNNEL_CACHE:=${HOME:-/root}/.cache/runnel}"
dest_dir="$RUNNEL_CACHE/helm/$HELM_VERSION"
dest="$dest_dir/helm"

log() { printf '[install-helm] %s\n' "$*" >&2; }

if [ -x "$dest" ] && "$dest" version --short >/dev/null 2>&1; then
    log "present: $("$dest" version --short)"
    echo "$dest"
    exit 0
fi

command -v go >/dev/null 2>&1 || { log "go is not installed"; exit 1; }

module="helm.sh/helm/v3"
log "downloading $module@$HELM_VERSION"
moddir="$(go mod download -json "$module@$HELM_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"

# k8s.io/client-go v0.N.x  ->  Kubernetes 1.N (Helm's Makefile: major+1, minor)
k8s_minor="$(awk '$1=="k8s.io/client-go" {print $2}' "$moddir/go.mod" | cut -d. -f2)"
ldflags="-s -w -X $module/internal/version.version=$HELM_VERSION"
ldflags="$ldflags -X $module/internal/version.metadata="
ldflags="$ldflags -X $module/internal/version.gitTreeState=clean"
if [ -n "$k8s_minor" ]; then
    # Only set variables that exist in this Helm version (they moved between releases).
    for pkg in pkg/lint/rules pkg/chartutil pkg/chart/common internal/version; do
        if grep -qs 'k8sVersionMinor' "$moddir/$pkg"/*.go; then
            ldflags="$ldflags -X $module/$pkg.k8sVersionMajor=1 -X $module/$pkg.k8sVersionMinor=$k8s_minor"
        fi
    done
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log "building $module/cmd/helm@$HELM_VERSION (k8s 1.${k8s_minor:-?}); this takes a few minutes"
start=$(date +%s)
CGO_ENABLED=0 GOBIN="$tmp" nice -n 10 \
    go install -trimpath -ldflags "$ldflags" "$module/cmd/helm@$HELM_VERSION"
log "built in $(( $(date +%s) - start ))s"

mkdir -p "$dest_dir"
mv "$tmp/helm" "$dest.tmp.$$"
mv "$dest.tmp.$$" "$dest"
log "installed: $("$dest" version --short)"
echo "$dest"
