#!/usr/bin/env bash
# Build a class-data-sharing (AppCDS) archive for the Kafka CLI tools so that
# each scripts/kafka-tool JVM starts in ~0.5 s instead of ~1 s.
#
#   scripts/build-tool-cds.sh BOOTSTRAP     train against a running broker
#   scripts/build-tool-cds.sh --apache      start a throwaway Apache Kafka to train against
#
# Output: $KAFKA_HOME/cds/tools.jsa plus a stamp of the jar set and Java it
# was built for; scripts/kafka-tool uses the archive only while both match.
# Optional: everything works without it, just slower.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"

[ $# -eq 1 ] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cds_dir="$KAFKA_HOME/cds"
mkdir -p "$cds_dir"
work="$(mktemp -d)"
kafka_dir=""
cleanup() {
    if [ -n "$kafka_dir" ]; then "$here/run-apache-kafka.sh" stop "$kafka_dir" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ "$1" = "--apache" ]; then
    kafka_dir="$work/kafka"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    KAFKA_HEAP_OPTS="-Xms256m -Xmx512m" "$here/run-apache-kafka.sh" "$kafka_dir" "$port" >/dev/null 2>&1
    bs="127.0.0.1:$port"
else
    bs="$1"
fi

n=0
train() { # tool args... ; stdin passed through
    n=$((n + 1))
    KAFKA_TOOL_NO_CDS=1 KAFKA_TOOL_EXTRA_OPTS="-XX:DumpLoadedClassList=$work/classes.$n.lst" \
        "$here/kafka-tool" "$@" >/dev/null 2>&1 || true
}
topic="cds-training-$$-$RANDOM"
train topics --bootstrap-server "$bs" --create --topic "$topic" --partitions 1
train topics --bootstrap-server "$bs" --describe --topic "$topic"
printf 'k:v\n' | train console-producer --bootstrap-server "$bs" --topic "$topic" \
    --property parse.key=true --property key.separator=: --compression-codec zstd
train console-consumer --bootstrap-server "$bs" --topic "$topic" --partition 0 --offset earliest \
    --max-messages 1 --timeout-ms 10000 --property print.key=true
train configs --bootstrap-server "$bs" --describe --entity-type topics --entity-name "$topic"
train configs --bootstrap-server "$bs" --alter --entity-type topics --entity-name "$topic" --add-config retention.ms=1000000
train get-offsets --bootstrap-server "$bs" --topic "$topic"
train topics --bootstrap-server "$bs" --delete --topic "$topic"

# merged class list, first occurrence wins (lambda-proxy / hidden-class lines are kept as they are)
cat "$work"/classes.*.lst 2>/dev/null | grep -v '^#' | awk '!seen[$0]++' >"$work/all.lst"
[ -s "$work/all.lst" ] || { echo "build-tool-cds: no classes recorded" >&2; exit 1; }
"$JAVA" -Xshare:dump -XX:SharedClassListFile="$work/all.lst" -XX:SharedArchiveFile="$cds_dir/tools.jsa.tmp" \
    -Xlog:disable -Xlog:all=error:stderr -cp "$KAFKA_LIBS/*" >"$work/dump.log" 2>&1 \
    || { tail -20 "$work/dump.log" >&2; exit 1; }
mv -f "$cds_dir/tools.jsa.tmp" "$cds_dir/tools.jsa"
"$here/kafka-tool" --cds-stamp >"$cds_dir/stamp"
echo "CDS archive for the Kafka tools: $cds_dir/tools.jsa ($(wc -l <"$work/all.lst") classes)" >&2
