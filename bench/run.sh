#!/usr/bin/env bash
# Runnel benchmark: the same produce/consume workload against runnel-broker,
# Apache Kafka (single KRaft node from the Maven jars) and Tansu; with
# --workloads cluster, 3-node runnel and Kafka clusters (RF 3, acks=all).
#   bench/run.sh [--brokers runnel,kafka,tansu] [--quick] [--records N] ...
#   bench/run.sh --help
# See bench/README.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

case " $* " in *" -h "*|*" --help "*) exec python3 "$here/bench.py" --help ;; esac

# Java 17 + the Kafka jars (shared with the test scripts when they exist).
if [ -f "$here/../scripts/env.sh" ]; then
  # shellcheck source=/dev/null
  . "$here/../scripts/env.sh"
fi
KAFKA_LIBS="$("$here/lib/kafka-libs.sh")"
export KAFKA_LIBS

# Tansu is built on first use unless told not to (BENCH_NO_INSTALL=1).
# The cluster workload does not run Tansu, so it alone needs no install.
brokers="runnel,kafka,tansu"
workloads="produce,group"
prev=""
for a in "$@"; do
  case "$a" in --brokers=*) brokers="${a#--brokers=}" ;; --workloads=*) workloads="${a#--workloads=}" ;; esac
  [ "$prev" = "--brokers" ] && brokers="$a"
  [ "$prev" = "--workloads" ] && workloads="$a"
  prev="$a"
done
if [[ ",$brokers," == *",tansu,"* ]] && [[ ",$workloads," == *",produce,"* || ",$workloads," == *",group,"* ]] &&
   [ -z "${TANSU_BIN:-}" ] && [ -z "${BENCH_NO_INSTALL:-}" ]; then
  "$here/install-tansu.sh" >/dev/null || echo "run.sh: Tansu install failed; its rows will say failed" >&2
fi

exec python3 "$here/bench.py" "$@"
