"""Kafka Java client (kafka-clients from $KAFKA_LIBS): tests/compat/java/JavaClientCompat.java
runs every scenario in one JVM (JVM starts are the cost); each scenario is its own test here."""

from pathlib import Path

import pytest

import compat_util as cu

JAVA_SRC = Path(__file__).resolve().parent / "java" / "JavaClientCompat.java"
SCENARIOS = ["admin"] + [f"produce-{c}-idempotent" for c in cu.COMPRESSIONS] + \
    ["produce-none-plain", "list-offsets"]


@pytest.fixture(scope="module")
def java_run(bootstrap):
    p = cu.run_java_source(JAVA_SRC, bootstrap, *SCENARIOS, heap="512m", timeout=200)
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
