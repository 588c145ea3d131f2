#!/usr/bin/env bash
# Cross-check the __consumer_offsets codec (broker/src/group/records.rs)
# against a real Apache Kafka:
#   1. start Kafka (scripts/run-apache-kafka.sh) in a temp dir;
#   2. crosscheck.py makes groups commit offsets / join (classic and KIP-848);
#   3. stop Kafka gracefully and run the ignored Rust test
#      real_kafka_crosscheck, which decodes every record of every
#      __consumer_offsets segment and checks it against what the clients did.
#
#   broker/src/group/testdata/crosscheck.sh [--write-fixture] [--keep]
#
# --write-fixture rewrites kafka-4.1.1-consumer-offsets.hex from this run.
# --keep leaves the Kafka directory behind (its path is printed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
write_fixture=0 keep=0
for a in "$@"; do
    case "$a" in
        --write-fixture) write_fixture=1 ;;
        --keep) keep=1 ;;
        *) echo "usage: $0 [--write-fixture] [--keep]" >&2; exit 2 ;;
    esac
done
dir="$(mktemp -d /tmp/runnel-group-xcheck.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cleanup() {
    "$root/scripts/run-apache-kafka.sh" stop "$dir" 2>/dev/null || true
    if [ "$keep" = 1 ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
# 50 offsets partitions (Kafka's default) so partition_for is checked too.
"$root/scripts/run-apache-kafka.sh" "$dir" "$port" offsets.topic.num.partitions=50
python3 "$here/crosscheck.py" "127.0.0.1:$port" "$dir/expect.json"
"$root/scripts/run-apache-kafka.sh" stop "$dir"
export RUNNEL_XCHECK_DATA="$dir/data" RUNNEL_XCHECK_EXPECT="$dir/expect.json"
if [ "$write_fixture" = 1 ]; then
    export RUNNEL_XCHECK_FIXTURE="$here/kafka-4.1.1-consumer-offsets.hex"
fi
cd "$root"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}" cargo test -p runnel-broker --lib \
    group::records::tests::real_kafka_crosscheck -- --include-ignored --exact --nocapture
