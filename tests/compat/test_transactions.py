"""Transactions end to end with real clients (issue 14).

- The Java KafkaProducer commits, aborts and leaves a transaction open; a
  read_committed Java consumer sees the committed records only, never the
  aborted or open ones (a read_uncommitted one sees them all), and the open
  one once it commits.
- confluent-kafka (librdkafka): commit and abort, read back with a
  read_committed consumer; a second producer with the same transactional.id
  fences the first, whose running transaction is aborted.

Every scenario passes against Apache Kafka 4.1.1 too (COMPAT_APACHE_KAFKA=1).
"""

import os
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import compat_util as cu

JAVA_SRC = Path(__file__).resolve().parent / "java" / "TxnScenario.java"
PER_TXN = 3


def _java(broker, *args, timeout=240):
    libs = os.environ.get("KAFKA_LIBS", "")
    if not list(Path(libs).glob("kafka-clients-*.jar")):
        pytest.fail(f"no kafka-clients jar in KAFKA_LIBS={libs!r}; run scripts/install-test-deps.sh")
    java = os.environ.get("JAVA", "java")
    cmd = [java, "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Xmx256m",
           f"-Dlog4j2.configurationFile={os.environ.get('KAFKA_TOOL_LOG4J', '')}",
           "-cp", f"{libs}/*", str(JAVA_SRC), broker.bootstrap, *map(str, args)]
    p = cu.run(cmd, timeout=timeout, check=False)
    detail = f"\n--- stdout ---\n{p.stdout_text}\n--- stderr (tail) ---\n{p.stderr_text[-3000:]}"
    return p.stdout_text, detail


def _values(tag, partitions):
    return sorted(f"{tag}-{p}-{i}" for p in range(partitions) for i in range(PER_TXN))


def run_java_scenario(broker, bootstrap_topic_partitions):
    """Runs TxnScenario.java and checks what each consumer saw."""
    topic, partitions = bootstrap_topic_partitions
    stdout, detail = _java(broker, topic, partitions, f"txn-java-{uuid.uuid4().hex[:8]}")
    result = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert result, f"TxnScenario printed no result{detail}"
    assert result[-1] == "RESULT OK", f"{result[-1]}{detail}"
    seen = {}
    for line in stdout.splitlines():
        if line.startswith("SEEN "):
            parts = line.split(" ", 3)
            seen[(parts[1], parts[2])] = sorted(v for v in (parts[3] if len(parts) > 3 else "").split(",") if v)
    c1, a, c2, op = (_values(t, partitions) for t in ("c1", "a", "c2", "open"))
    assert seen[("open", "read_committed")] == sorted(c1 + c2), \
        f"read_committed saw aborted or open records (or missed committed ones){detail}"
    assert seen[("open", "read_uncommitted")] == sorted(c1 + a + c2 + op), \
        f"read_uncommitted did not see every record{detail}"
    assert seen[("done", "read_committed")] == sorted(c1 + c2 + op), \
        f"read_committed after the last commit{detail}"


def test_java_producer_commit_abort_and_read_committed(broker):
    topic = cu.unique_topic("txn-java")
    cu.create_topic(broker.bootstrap, topic, partitions=3)
    run_java_scenario(broker, (topic, 3))


def _read(bootstrap, topic, partitions, isolation, expect_at_least=0, tries=20):
    seen = []
    for _ in range(tries):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                      "isolation.level": isolation, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest"})
        try:
            tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
            c.assign(tps)
            ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in range(partitions)}
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
            del ends
        finally:
            c.close()
        if len(seen) >= expect_at_least:
            break
    return sorted(seen)


def _producer(bootstrap, tid):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    p.init_transactions(30)
    return p


def _send(p, topic, partitions, tag):
    for part in range(partitions):
        for i in range(PER_TXN):
            p.produce(topic, value=f"{tag}-{part}-{i}".encode(), key=b"k", partition=part)


def test_confluent_producer_commit_and_abort(broker):
    topic = cu.unique_topic("txn-rdkafka")
    cu.create_topic(broker.bootstrap, topic, partitions=2)
    p = _producer(broker.bootstrap, f"txn-rd-{uuid.uuid4().hex[:8]}")
    p.begin_transaction()
    _send(p, topic, 2, "c1")
    p.commit_transaction(30)
    p.begin_transaction()
    _send(p, topic, 2, "a")
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    _send(p, topic, 2, "c2")
    p.commit_transaction(30)
    want = sorted(_values("c1", 2) + _values("c2", 2))
    assert _read(broker.bootstrap, topic, 2, "read_committed", len(want)) == want
    assert _read(broker.bootstrap, topic, 2, "read_uncommitted", 3 * len(want) // 2) == \
        sorted(want + _values("a", 2))


def test_confluent_zombie_is_fenced(broker):
    topic = cu.unique_topic("txn-fence")
    cu.create_topic(broker.bootstrap, topic, partitions=1)
    tid = f"txn-zombie-{uuid.uuid4().hex[:8]}"
    zombie = _producer(broker.bootstrap, tid)
    zombie.begin_transaction()
    _send(zombie, topic, 1, "zombie")
    zombie.flush(30)
    # A second instance with the same transactional.id: its
    # init_transactions aborts the zombie's open transaction.
    fresh = _producer(broker.bootstrap, tid)
    fresh.begin_transaction()
    _send(fresh, topic, 1, "fresh")
    fresh.commit_transaction(30)
    # The zombie can no longer commit: fenced (fatal).
    with pytest.raises(KafkaException) as e:
        _send(zombie, topic, 1, "late")
        zombie.commit_transaction(30)
    err = e.value.args[0]
    print(f"zombie commit: {err}")
    assert err.fatal() or "fenced" in str(err).lower() or "epoch" in str(err).lower(), str(err)
    assert _read(broker.bootstrap, topic, 1, "read_committed", PER_TXN) == _values("fresh", 1)
