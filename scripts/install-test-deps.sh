#!/usr/bin/env bash
# Installs everything the client compatibility suite (tests/compat) needs.
# Idempotent: each step checks first and does nothing when already satisfied.
#
#   - kcat, and containerd, runc, CNI plugins, iptables, conntrack, busybox-static
#     for the real-node e2e (Debian packages; apt-get update only if needed)
#   - confluent-kafka, kafka-python 3 (+ snappy/lz4/zstd codecs), pytest,
#     pytest-timeout           (pip; only the missing ones)
#   - an AppCDS archive that halves the Kafka CLI tools' JVM start-up
#     (scripts/build-tool-cds.sh; skip with RUNNEL_NO_CDS=1)
#   - Apache Kafka $KAFKA_VERSION jars with all runtime dependencies (broker,
#     server, storage, tools, clients) from Maven Central into
#     ${RUNNEL_CACHE:-$HOME/.cache/runnel}/kafka-$KAFKA_VERSION/libs
#   - Kafka's connect-file plugin jar (FileStreamSource/Sink) for the Connect
#     REST tests and the Connect image, into .../connect-plugins/connect-file
#   - MirrorMaker 2's connect-mirror and connect-mirror-client jars for the
#     Connect image, into .../connect-mirror-$KAFKA_VERSION
#   - Kafka Streams $KAFKA_VERSION with its runtime dependencies (rocksdbjni,
#     ...) for the exactly-once Streams tests, into
#     ${RUNNEL_CACHE:-$HOME/.cache/runnel}/kafka-streams-$KAFKA_VERSION/libs
#   - the Go modules of tests/compat/go/franztxn (franz-go, from the Go
#     module proxy) into ${RUNNEL_CACHE:-$HOME/.cache/runnel}/go-mod, when a
#     Go toolchain is installed (tests/compat/test_franz_go.py builds the
#     program once per source version into .../franztxn/)
#
# Locations are defined in scripts/env.sh; source it to use them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"

log() { printf '[install-test-deps] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- Debian packages
# kcat for the client suites; containerd, runc, the CNI plugins, iptables,
# conntrack and busybox-static for the real-node e2e (e2e/node).
DEBS=(kcat containerd runc containernetworking-plugins iptables conntrack busybox-static)
install_debs() {
    local missing=() p
    for p in "${DEBS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "Debian packages: present (${DEBS[*]})"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when apt does not know a package yet.
    for p in "${missing[@]}"; do
        if [ -z "$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -v '(none)')" ]; then
            log "apt-get update ($p unknown)"
            as_root apt-get update -qq
            break
        fi
    done
    log "apt-get install ${missing[*]}"
    if ! as_root apt-get install -y -qq "${missing[@]}" >/dev/null; then
        # stale lists (404 on a .deb): refresh once and retry
        as_root apt-get update -qq
        as_root apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    log "installed ${missing[*]}"
}

# ---------------------------------------------------------------- python
PY="${PYTHON:-python3}"

py_has() { # module [min-major-version]
    "$PY" - "$@" <<'EOF' >/dev/null 2>&1
import importlib, sys
mod = importlib.import_module(sys.argv[1])
if len(sys.argv) > 2:
    from importlib.metadata import version
    dist = {"kafka": "kafka-python"}.get(sys.argv[1], sys.argv[1])
    assert version(dist).split(".")[0] == sys.argv[2], version(dist)
EOF
}

install_python() {
    local want=()
    py_has confluent_kafka || want+=("confluent-kafka")
    py_has kafka 3 || want+=("kafka-python==3.*")
    # codecs kafka-python needs for snappy / lz4 / zstd, and fast crc32c
    py_has snappy || want+=("python-snappy")
    py_has lz4 || want+=("lz4")
    py_has zstandard || want+=("zstandard")
    py_has crc32c || want+=("crc32c")
    py_has pytest || want+=("pytest")
    py_has pytest_timeout || want+=("pytest-timeout")
    if [ ${#want[@]} -eq 0 ]; then
        log "python: confluent-kafka, kafka-python 3, codecs, pytest present"
        return
    fi
    log "python: pip install ${want[*]}"
    "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore "${want[@]}"
}

# ---------------------------------------------------------------- kafka jars
install_kafka_jars() {
    local stamp="$KAFKA_HOME/.installed"
    local want_stamp="kafka=$KAFKA_VERSION log4j=$KAFKA_LOG4J_VERSION template=$(sha256sum "$here/kafka-jars.pom.in" | cut -c1-16)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] \
        && ls "$KAFKA_LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1; then
        log "kafka jars: present in $KAFKA_LIBS ($(ls "$KAFKA_LIBS" | wc -l) jars)"
        return
    fi
    command -v mvn >/dev/null 2>&1 || { log "mvn not found (install maven)"; exit 1; }
    local build="$KAFKA_HOME/maven"
    mkdir -p "$build"
    sed -e "s/@KAFKA_VERSION@/$KAFKA_VERSION/g" -e "s/@LOG4J_VERSION@/$KAFKA_LOG4J_VERSION/g" \
        "$here/kafka-jars.pom.in" >"$build/pom.xml"
    local tmp="$KAFKA_HOME/libs.tmp.$$"
    rm -rf "$tmp"
    log "kafka jars: mvn dependency:copy-dependencies (Kafka $KAFKA_VERSION) -> $KAFKA_LIBS"
    if ! (cd "$build" && mvn -q -B dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$tmp" >"$build/mvn.log" 2>&1); then
        tail -40 "$build/mvn.log" >&2
        log "kafka jars: maven failed (full log: $build/mvn.log)"
        exit 1
    fi
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    # sanity: the classes the scripts rely on
    for c in kafka/Kafka.class kafka/tools/StorageTool.class kafka/admin/ConfigCommand.class \
             org/apache/kafka/tools/TopicCommand.class org/apache/kafka/tools/GetOffsetShell.class \
             org/apache/kafka/tools/ConsoleProducer.class \
             org/apache/kafka/tools/consumer/ConsoleConsumer.class; do
        local found=""
        for j in "$KAFKA_LIBS"/kafka*.jar; do
            if unzip -l "$j" "$c" >/dev/null 2>&1; then found=1; break; fi
        done
        [ -n "$found" ] || { log "kafka jars: $c not found in $KAFKA_LIBS"; exit 1; }
    done
    echo "$want_stamp" >"$stamp"
    log "kafka jars: installed $(ls "$KAFKA_LIBS" | wc -l) jars"
}

# ---------------------------------------------------------------- connect-file, connect-mirror
# Not dependencies of connect-runtime: fetched on their own. connect-file (the
# FileStreamSource/Sink plugin) for tests/compat/test_connect_rest.py and
# e2e/image/build.py --connect; connect-mirror and connect-mirror-client
# (MirrorMaker 2's connectors, whose other runtime dependencies are all in
# $KAFKA_LIBS) for the Connect image's /opt/kafka/libs, where Apache Kafka's
# distribution has them.
install_kafka_jar() { # artifact dir
    local artifact=$1 dir=$2
    local jar="$dir/$artifact-$KAFKA_VERSION.jar"
    if [ -f "$jar" ]; then
        log "$artifact: present ($jar)"
        return
    fi
    local m2="$HOME/.m2/repository/org/apache/kafka/$artifact/$KAFKA_VERSION/$artifact-$KAFKA_VERSION.jar"
    if [ ! -f "$m2" ]; then
        log "$artifact: mvn dependency:get org.apache.kafka:$artifact:$KAFKA_VERSION"
        mvn -q -B dependency:get -Dtransitive=false \
            -Dartifact="org.apache.kafka:$artifact:$KAFKA_VERSION" >&2 \
            || { log "$artifact: maven failed"; exit 1; }
    fi
    mkdir -p "$dir"
    cp "$m2" "$jar.tmp" && mv "$jar.tmp" "$jar"
    log "$artifact: installed $jar"
}

install_connect_jars() {
    install_kafka_jar connect-file "$RUNNEL_CACHE/connect-plugins/connect-file"
    install_kafka_jar connect-mirror "$RUNNEL_CACHE/connect-mirror-$KAFKA_VERSION"
    install_kafka_jar connect-mirror-client "$RUNNEL_CACHE/connect-mirror-$KAFKA_VERSION"
}

# ---------------------------------------------------------------- kafka streams
# Apart from $KAFKA_LIBS (the broker's classpath stays as Kafka ships it):
# tests/cluster/test_streams_eos.py runs a Streams app with both on its
# classpath.
install_streams_jars() {
    local stamp="$KAFKA_STREAMS_HOME/.installed"
    local want_stamp="kafka=$KAFKA_VERSION template=$(sha256sum "$here/kafka-streams-jars.pom.in" | cut -c1-16)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] \
        && ls "$KAFKA_STREAMS_LIBS"/kafka-streams-"$KAFKA_VERSION".jar >/dev/null 2>&1; then
        log "kafka streams jars: present in $KAFKA_STREAMS_LIBS"
        return
    fi
    command -v mvn >/dev/null 2>&1 || { log "mvn not found (install maven)"; exit 1; }
    local build="$KAFKA_STREAMS_HOME/maven"
    mkdir -p "$build"
    sed -e "s/@KAFKA_VERSION@/$KAFKA_VERSION/g" "$here/kafka-streams-jars.pom.in" >"$build/pom.xml"
    local tmp="$KAFKA_STREAMS_HOME/libs.tmp.$$"
    rm -rf "$tmp"
    log "kafka streams jars: mvn dependency:copy-dependencies (Kafka Streams $KAFKA_VERSION) -> $KAFKA_STREAMS_LIBS"
    if ! (cd "$build" && mvn -q -B dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$tmp" >"$build/mvn.log" 2>&1); then
        tail -40 "$build/mvn.log" >&2
        log "kafka streams jars: maven failed (full log: $build/mvn.log)"
        exit 1
    fi
    rm -rf "$KAFKA_STREAMS_LIBS"
    mv "$tmp" "$KAFKA_STREAMS_LIBS"
    echo "$want_stamp" >"$stamp"
    log "kafka streams jars: installed $(ls "$KAFKA_STREAMS_LIBS" | wc -l) jars"
}

# ---------------------------------------------------------------- tool start-up speed
install_tool_cds() {
    if [ -n "${RUNNEL_NO_CDS:-}" ]; then
        log "tool CDS archive: skipped (RUNNEL_NO_CDS set)"
        return
    fi
    local cds="$KAFKA_HOME/cds"
    if [ -f "$cds/tools.jsa" ] && [ -f "$cds/stamp" ] \
        && [ "$(cat "$cds/stamp")" = "$("$here/kafka-tool" --cds-stamp)" ]; then
        log "tool CDS archive: present ($cds/tools.jsa)"
        return
    fi
    log "tool CDS archive: training the Kafka tools against a throwaway Apache Kafka (~30 s)"
    if ! "$here/build-tool-cds.sh" --apache; then
        log "tool CDS archive: build failed; the tools still work, they just start slower"
    fi
}

# ---------------------------------------------------------------- Go modules
# franz-go for tests/compat/test_franz_go.py, cached outside the repo.
install_go_modules() {
    local src="$here/../tests/compat/go/franztxn" go
    go="$(command -v go || echo /usr/local/go/bin/go)"
    if [ ! -x "$go" ]; then
        log "go modules: no Go toolchain; tests/compat/test_franz_go.py will skip"
        return
    fi
    log "go modules: franz-go into $RUNNEL_CACHE/go-mod"
    (cd "$src" && GOMODCACHE="$RUNNEL_CACHE/go-mod" GOFLAGS=-mod=readonly "$go" mod download)
}

install_debs
install_python
install_kafka_jars
install_connect_jars
install_streams_jars
install_tool_cds
install_go_modules

cat <<EOF
Test dependencies are in place:
  kcat            $(command -v kcat) ($(kcat -V 2>/dev/null | grep -m1 -o 'Version [0-9.]*'), $(kcat -V 2>/dev/null | grep -m1 -o 'librdkafka [0-9.]*'))
  python          $("$PY" -c 'import sys; print(sys.executable)')
  confluent-kafka $("$PY" -c 'import confluent_kafka as c; print(c.__version__, "(librdkafka", c.libversion()[0] + ")")')
  kafka-python    $("$PY" -c 'import kafka; print(kafka.__version__)')
  pytest          $("$PY" -c 'import pytest; print(pytest.__version__)')
  java            $JAVA ($("$JAVA" -version 2>&1 | head -1))
  Kafka jars      $KAFKA_LIBS (Kafka $KAFKA_VERSION)
  Streams jars    $KAFKA_STREAMS_LIBS
  tool CDS        $( [ -f "$KAFKA_HOME/cds/tools.jsa" ] && echo "$KAFKA_HOME/cds/tools.jsa" || echo none)
Use them with:   . scripts/env.sh   (sets KAFKA_LIBS, KAFKA_VERSION, JAVA, ...)
EOF
