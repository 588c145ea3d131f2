"""Kafka Java client (kafka-clients from $KAFKA_LIBS): tests/compat/java/JavaClientCompat.java
runs every scenario in one JVM (JVM starts are the cost); each scenario is its own test here."""

import os
from pathlib import Path

import pytest

import compat_util as cu

JAVA_SRC = Path(__file__).resolve().parent / "java" / "JavaClientCompat.java"
SCENARIOS = ["admin"] + [f"produce-{c}-idempotent" for c in cu.COMPRESSIONS] + \
    ["produce-none-plain", "list-offsets"]


@pytest.fixture(scope="module")
def java_run(bootstrap):
    libs = os.environ.get("KAFKA_LIBS", "")
    if not list(Path(libs).glob("kafka-clients-*.jar")):
        pytest.fail(f"no kafka-clients jar in KAFKA_LIBS={libs!r}; run scripts/install-test-deps.sh")
    java = os.environ.get("JAVA", "java")
    cmd = [java, "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Xmx512m",
           f"-Dlog4j2.configurationFile={os.environ.get('KAFKA_TOOL_LOG4J', '')}",
           "-cp", f"{libs}/*", str(JAVA_SRC), bootstrap, *SCENARIOS]
    p = cu.run(cmd, timeout=200, check=False)
    results = {}
    for line in p.stdout_text.splitlines():
        if line.startswith("RESULT "):
            _, name, verdict = line.split(" ", 2)
            results[name] = verdict
    return p, results


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_java_client(java_run, scenario):
    p, results = java_run
    verdict = results.get(scenario)
    detail = f"\n--- stdout ---\n{p.stdout_text}\n--- stderr (tail) ---\n{p.stderr_text[-4000:]}"
    assert verdict is not None, f"scenario {scenario} did not report (exit {p.returncode}){detail}"
    assert verdict.startswith("OK"), f"{scenario}: {verdict}{detail}"


def test_java_client_exit_code(java_run):
    p, results = java_run
    assert p.returncode == 0 and p.stdout_text.rstrip().endswith("OK"), \
        f"exit {p.returncode}\n{p.stdout_text}\n{p.stderr_text[-4000:]}"
