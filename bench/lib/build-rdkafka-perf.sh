#!/usr/bin/env bash
# Prints the path of librdkafka's own perf tool, `rdkafka_performance`,
# building it on first use into ${RUNNEL_CACHE:-~/.cache/runnel}/rdkafka-perf.
#
# No registry download: the C source comes from the rdkafka-sys crate already
# in the cargo registry (librdkafka's full source tree, examples included),
# its config.h from a configured rdkafka-sys build dir (any target/ under
# /work or the repo), and the library it links to is the librdkafka that the
# confluent-kafka wheel bundles (pip install confluent-kafka; 2.16 here, ABI
# compatible with the 2.12 headers). Exits 1 with a message when one is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${RUNNEL_CACHE:-$HOME/.cache/runnel}/rdkafka-perf"
if [ -x "$out/rdkafka_performance" ]; then echo "$out/rdkafka_performance"; exit 0; fi

src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-*/librdkafka 2>/dev/null | sort | tail -1 || true)"
[ -n "$src" ] && [ -f "$src/examples/rdkafka_performance.c" ] ||
  { echo "build-rdkafka-perf: no rdkafka-sys source in the cargo registry" >&2; exit 1; }
cfg="$(ls "$repo"/target/*/build/rdkafka-sys-*/out/config.h /work/*/target/*/build/rdkafka-sys-*/out/config.h 2>/dev/null | head -1 || true)"
[ -n "$cfg" ] || { echo "build-rdkafka-perf: no configured rdkafka-sys build (config.h)" >&2; exit 1; }
libdir="$(python3 -c 'import confluent_kafka, os; print(os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)), "confluent_kafka.libs"))' 2>/dev/null || true)"
lib="$(ls "$libdir"/librdkafka-*.so.1 2>/dev/null | head -1 || true)"
[ -n "$lib" ] || { echo "build-rdkafka-perf: no librdkafka from the confluent-kafka wheel" >&2; exit 1; }

mkdir -p "$out/build/src" "$out/build/examples"
cp -r "$src/src/." "$out/build/src/"
cp "$src/examples/rdkafka_performance.c" "$out/build/examples/"
cp "$cfg" "$out/build/config.h"
cp "$lib" "$out/"
soname="$(basename "$lib")"
ln -sf "$soname" "$out/librdkafka.so"
gcc -O2 -I"$out/build/src" -o "$out/rdkafka_performance" "$out/build/examples/rdkafka_performance.c" \
  -L"$out" -lrdkafka -Wl,-rpath,"$out" -lm -lpthread >&2
echo "$out/rdkafka_performance"
