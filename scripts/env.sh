# shellcheck shell=bash
# Sourced (not executed) by the test and benchmark scripts to learn where the
# test dependencies live.  scripts/install-test-deps.sh fills these locations.
#
#   RUNNEL_CACHE     cache root outside the repo (default ~/.cache/runnel)
#   KAFKA_VERSION    Apache Kafka version used as the reference broker/tools
#   KAFKA_HOME       $RUNNEL_CACHE/kafka-$KAFKA_VERSION
#   KAFKA_LIBS       $KAFKA_HOME/libs (all runtime jars: broker, tools, clients)
#   KAFKA_STREAMS_LIBS  Kafka Streams and its runtime jars (rocksdbjni, ...),
#                    $RUNNEL_CACHE/kafka-streams-$KAFKA_VERSION/libs
#   JAVA_HOME/JAVA   the Java 17 used to run them
#   RUNNEL_SCRIPTS   this directory (absolute)
#
# Every variable may be preset by the caller; only unset ones get defaults.

RUNNEL_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUNNEL_ROOT="$(cd "$RUNNEL_SCRIPTS/.." && pwd)"
: "${RUNNEL_CACHE:=${HOME:-/root}/.cache/runnel}"
: "${KAFKA_VERSION:=4.1.1}"
# log4j2 version that kafka_2.13 $KAFKA_VERSION itself depends on (log4j-core);
# we add the slf4j-1.x binding of the same version, as the Kafka tarball does.
: "${KAFKA_LOG4J_VERSION:=2.24.3}"
: "${KAFKA_HOME:=$RUNNEL_CACHE/kafka-$KAFKA_VERSION}"
: "${KAFKA_LIBS:=$KAFKA_HOME/libs}"
: "${KAFKA_STREAMS_HOME:=$RUNNEL_CACHE/kafka-streams-$KAFKA_VERSION}"
: "${KAFKA_STREAMS_LIBS:=$KAFKA_STREAMS_HOME/libs}"
if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]; then
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
fi
if [ -n "${JAVA_HOME:-}" ]; then
    : "${JAVA:=$JAVA_HOME/bin/java}"
else
    : "${JAVA:=java}"
fi
# Lean JVM flags for the many short-lived CLI/tool JVMs the tests start.
: "${KAFKA_TOOL_JVM_OPTS:=-Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xms32m -Xmx256m -Xss512k}"
# log4j2 config for tools: warnings and errors to stderr only.
: "${KAFKA_TOOL_LOG4J:=$RUNNEL_SCRIPTS/tools-log4j2.properties}"

export RUNNEL_SCRIPTS RUNNEL_ROOT RUNNEL_CACHE KAFKA_VERSION KAFKA_LOG4J_VERSION \
    KAFKA_HOME KAFKA_LIBS KAFKA_STREAMS_HOME KAFKA_STREAMS_LIBS JAVA KAFKA_TOOL_JVM_OPTS KAFKA_TOOL_LOG4J
[ -n "${JAVA_HOME:-}" ] && export JAVA_HOME
true
