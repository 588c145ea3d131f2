#!/usr/bin/env bash
# Builds CoreDNS from the Go module proxy into
# ${RUNNEL_CACHE:-~/.cache/runnel}/coredns/<version>/coredns (once). Prints the path.
set -euo pipefail
VERSION="${COREDNS_VERSION:-v1.12.4}"
DIR="${RUNNEL_CACHE:-$HOME/.cache/runnel}/coredns/$VERSION"
if [[ -x $DIR/coredns ]]; then echo "$DIR/coredns"; exit 0; fi
mkdir -p "$DIR/src"
exec 9>"$DIR/.lock"
flock 9
if [[ -x $DIR/coredns ]]; then echo "$DIR/coredns"; exit 0; fi
cd "$DIR/src"
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off
[[ -f go.mod ]] || go mod init runnel.dev/e2e-coredns-build >&2
echo "build-coredns.sh: building CoreDNS $VERSION (a few minutes the first time)" >&2
go get "github.com/coredns/coredns@$VERSION" >&2
go build -trimpath -ldflags "-s -w" -o "$DIR/coredns.tmp" github.com/coredns/coredns >&2
mv "$DIR/coredns.tmp" "$DIR/coredns"
echo "$DIR/coredns"
