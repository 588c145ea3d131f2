"""Transactional producers against a broker without transactions.

Runnel has no transaction coordinator. It must say so with a non-retriable error,
so that a transactional client fails fast with a readable reason instead of
retrying COORDINATOR_NOT_AVAILABLE forever (a Kafka Streams exactly_once_v2 app
sat in REBALANCING for ever).

The oracle is inverse here: Apache Kafka has transactions, so against it
(COMPAT_APACHE_KAFKA=1) initTransactions() must succeed. Against an external
broker (KAFKA_BOOTSTRAP) either outcome passes, as long as it is a fast one.
"""

import logging
import os
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, Producer

import compat_util as cu

JAVA_SRC = Path(__file__).resolve().parent / "java" / "TxnInit.java"
REASON = "Transactions are not supported by this broker"
MAX_BLOCK_MS = 30000  # the Java producer's own limit: a hang ends as a TimeoutException here
FAST_S = 10.0


def has_transactions(broker):
    """True for Apache Kafka, False for Runnel, None when unknown (external broker)."""
    if broker.kind.startswith("apache"):
        return True
    if broker.kind.startswith("runnel"):
        return False
    return None


def test_java_init_transactions_fails_fast_with_reason(broker):
    libs = os.environ.get("KAFKA_LIBS", "")
    if not list(Path(libs).glob("kafka-clients-*.jar")):
        pytest.fail(f"no kafka-clients jar in KAFKA_LIBS={libs!r}; run scripts/install-test-deps.sh")
    java = os.environ.get("JAVA", "java")
    tid = f"compat-txn-{uuid.uuid4().hex[:8]}"
    cmd = [java, "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Xmx256m",
           f"-Dlog4j2.configurationFile={os.environ.get('KAFKA_TOOL_LOG4J', '')}",
           "-cp", f"{libs}/*", str(JAVA_SRC), broker.bootstrap, tid, str(MAX_BLOCK_MS)]
    p = cu.run(cmd, timeout=120, check=False)
    lines = [line for line in p.stdout_text.splitlines() if line.startswith("RESULT ")]
    detail = f"\n--- stdout ---\n{p.stdout_text}\n--- stderr (tail) ---\n{p.stderr_text[-3000:]}"
    assert lines, f"TxnInit printed no result (exit {p.returncode}){detail}"
    verdict, ms, *why = lines[-1].split(" ", 3)[1:]
    ms = int(ms)
    why = why[0] if why else ""
    print(f"initTransactions: {verdict} after {ms} ms {why}")
    expect = has_transactions(broker)
    if expect is True:
        assert verdict == "OK", f"initTransactions failed on a broker with transactions: {why}{detail}"
        return
    if expect is None and verdict == "OK":
        return
    assert verdict == "FAIL", f"initTransactions succeeded on a broker without transactions{detail}"
    assert ms < FAST_S * 1000, \
        f"initTransactions took {ms} ms to fail (a retriable error makes it wait max.block.ms): {why}"
    assert "TimeoutException" not in why, f"initTransactions timed out instead of failing: {why}"
    assert REASON in why, f"the failure does not say why: {why}"


def test_librdkafka_init_transactions(broker):
    """librdkafka retries every FindCoordinator error but the authorization ones, so
    init_transactions() only ends at its timeout; its eos debug log must show the
    broker's non-retriable error and reason."""
    log = logging.getLogger(f"rdkafka-txn-{uuid.uuid4().hex[:6]}")
    log.setLevel(logging.DEBUG)
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    log.addHandler(Keep())
    p = Producer({"bootstrap.servers": broker.bootstrap,
                  "transactional.id": f"compat-txn-{uuid.uuid4().hex[:8]}",
                  "debug": "eos", "logger": log})
    expect = has_transactions(broker)
    timeout = 30 if expect else 5
    t0 = time.time()
    try:
        p.init_transactions(timeout)
        ok, err = True, None
    except KafkaException as e:
        ok, err = False, e.args[0]
    took = time.time() - t0
    p.poll(0)
    coord = [m for m in seen if "transaction coordinator" in m]
    print(f"init_transactions: {'OK' if ok else err} after {took:.1f}s; coordinator log: {coord[-3:]}")
    if expect is True:
        assert ok, f"init_transactions failed on a broker with transactions: {err}"
        return
    if expect is None and ok:
        return
    assert not ok, "init_transactions succeeded on a broker without transactions"
    assert took < timeout + 5, f"init_transactions took {took:.1f}s with a {timeout}s timeout"
    assert any("UNSUPPORTED_VERSION" in m and REASON in m for m in coord), \
        f"librdkafka's log does not show the broker's non-retriable error and reason: {coord[-5:]}"
