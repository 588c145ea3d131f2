#!/usr/bin/env bash
# Prints the directory holding the Apache Kafka 4.x jars (broker + tools +
# clients), fetching them from Maven Central into the cache when missing.
#
# Order of preference:
#   1. $KAFKA_LIBS, if it already holds kafka-tools and kafka_2.13 jars;
#   2. whatever the repo's scripts/env.sh exports as KAFKA_LIBS (if that
#      script exists);
#   3. ${RUNNEL_CACHE:-$HOME/.cache/runnel}/kafka-${KAFKA_VERSION}/libs,
#      fetched with `mvn dependency:copy-dependencies` when absent.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

has_jars() {
  [ -n "${1:-}" ] && [ -d "$1" ] &&
    compgen -G "$1/kafka-tools-*.jar" >/dev/null &&
    compgen -G "$1/kafka_2.13-*.jar" >/dev/null
}

if has_jars "${KAFKA_LIBS:-}"; then echo "$KAFKA_LIBS"; exit 0; fi

if [ -f "$repo/scripts/env.sh" ]; then
  libs="$(set +eu; . "$repo/scripts/env.sh" >/dev/null 2>&1; echo "${KAFKA_LIBS:-}")"
  if has_jars "$libs"; then echo "$libs"; exit 0; fi
fi

cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}"
ver="${KAFKA_VERSION:-4.1.1}"
dest="$cache/kafka-$ver/libs"
if has_jars "$dest"; then echo "$dest"; exit 0; fi

command -v mvn >/dev/null || { echo "kafka-libs.sh: mvn not found and no Kafka jars cached in $dest" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>runnel.bench</groupId><artifactId>kafka-libs</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$ver</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$ver</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
echo "kafka-libs.sh: fetching Apache Kafka $ver jars into $dest" >&2
(cd "$work" && nice -n 19 mvn -q -B dependency:copy-dependencies \
   -DoutputDirectory="$work/libs" -DincludeScope=runtime >&2)
mkdir -p "$(dirname "$dest")"
if has_jars "$dest"; then :; else rm -rf "$dest.tmp.$$"; mv "$work/libs" "$dest.tmp.$$" && mv -T "$dest.tmp.$$" "$dest"; fi
echo "$dest"
