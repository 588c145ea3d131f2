#!/usr/bin/env bash
# Builds and installs the Tansu broker (crate `tansu`, binary `tansu`) into
# ${RUNNEL_CACHE:-$HOME/.cache/runnel}/tansu/bin/tansu, if not there yet.
#
# The crate's default features include NO storage engine, so we enable
#   dynostore  -> memory:// (and s3://)
#   libsql     -> sqlite://<file>   (local-file storage)
# The build is niced (the machine is shared) and takes ~10-20 min on 2 cores.
# TANSU_VERSION pins the version (default 0.6.0, the one the bench was validated with).
set -euo pipefail
cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}"
root="$cache/tansu"
ver="${TANSU_VERSION:-0.6.0}"
if [ -x "$root/bin/tansu" ] && [ "${1:-}" != "--force" ]; then
  echo "$root/bin/tansu"; exit 0
fi
command -v cargo >/dev/null || { echo "install-tansu.sh: cargo not found" >&2; exit 1; }
echo "install-tansu.sh: cargo install tansu $ver (features dynostore,libsql) -> $root" >&2
# a persistent target dir lets an interrupted build resume
CARGO_TARGET_DIR="$cache/tansu-build" nice -n 19 \
  cargo install tansu --version "$ver" --locked --features dynostore,libsql --root "$root" >&2
echo "$root/bin/tansu"
