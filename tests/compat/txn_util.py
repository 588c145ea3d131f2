"""Helpers of the transaction suites (tests/compat/test_transactions.py,
tests/cluster/test_txn_cluster.py): the Java scenario and confluent-kafka
transactional producers and read_committed readers."""

import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

import compat_util as cu

JAVA_SRC = Path(__file__).resolve().parent / "java" / "TxnScenario.java"
PER_TXN = 3


def java(bootstrap, *args, timeout=240):
    p = cu.run_java_source(JAVA_SRC, bootstrap, *args, heap="256m", timeout=timeout)
    detail = f"\n--- stdout ---\n{p.stdout_text}\n--- stderr (tail) ---\n{p.stderr_text[-3000:]}"
    return p.stdout_text, detail


def values(tag, partitions):
    return sorted(f"{tag}-{p}-{i}" for p in range(partitions) for i in range(PER_TXN))


def run_java_scenario(bootstrap, topic, partitions):
    """Runs TxnScenario.java and checks what each consumer saw."""
    stdout, detail = java(bootstrap, topic, partitions, f"txn-java-{uuid.uuid4().hex[:8]}")
    result = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert result, f"TxnScenario printed no result{detail}"
    assert result[-1] == "RESULT OK", f"{result[-1]}{detail}"
    seen = {}
    for line in stdout.splitlines():
        if line.startswith("SEEN "):
            parts = line.split(" ", 3)
            seen[(parts[1], parts[2])] = sorted(v for v in (parts[3] if len(parts) > 3 else "").split(",") if v)
    c1, a, c2, op = (values(t, partitions) for t in ("c1", "a", "c2", "open"))
    assert seen[("open", "read_committed")] == sorted(c1 + c2), \
        f"read_committed saw aborted or open records (or missed committed ones){detail}"
    assert seen[("open", "read_uncommitted")] == sorted(c1 + a + c2 + op), \
        f"read_uncommitted did not see every record{detail}"
    assert seen[("done", "read_committed")] == sorted(c1 + c2 + op), \
        f"read_committed after the last commit{detail}"


def read(bootstrap, topic, partitions, isolation, expect_at_least=0, tries=20):
    """Every record of `topic` a fresh consumer with `isolation` reads,
    sorted; read again (up to `tries` times) until there are
    `expect_at_least` (markers land after a commit is answered)."""
    seen = []
    for _ in range(tries):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                      "isolation.level": isolation, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest"})
        try:
            tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
            c.assign(tps)
            seen = []
            idle = 0
            while idle < 4:
                m = c.poll(0.5)
                if m is None:
                    idle += 1
                    continue
                if m.error():
                    continue
                seen.append(m.value().decode())
        finally:
            c.close()
        if len(seen) >= expect_at_least:
            break
    return sorted(seen)


def producer(bootstrap, tid, timeout_ms=None):
    conf = {"bootstrap.servers": bootstrap, "transactional.id": tid}
    if timeout_ms is not None:
        conf["transaction.timeout.ms"] = timeout_ms
    p = Producer(conf)
    p.init_transactions(30)
    return p


def send(p, topic, partitions, tag):
    for part in range(partitions):
        for i in range(PER_TXN):
            p.produce(topic, value=f"{tag}-{part}-{i}".encode(), key=b"k", partition=part)
