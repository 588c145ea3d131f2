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

import uuid

import pytest
from confluent_kafka import KafkaException

import compat_util as cu
from txn_util import PER_TXN, producer, read, run_java_scenario, send, values


def test_java_producer_commit_abort_and_read_committed(broker):
    topic = cu.unique_topic("txn-java")
    cu.create_topic(broker.bootstrap, topic, partitions=3)
    run_java_scenario(broker.bootstrap, topic, 3)


def test_confluent_producer_commit_and_abort(broker):
    topic = cu.unique_topic("txn-rdkafka")
    cu.create_topic(broker.bootstrap, topic, partitions=2)
    p = producer(broker.bootstrap, f"txn-rd-{uuid.uuid4().hex[:8]}")
    p.begin_transaction()
    send(p, topic, 2, "c1")
    p.commit_transaction(30)
    p.begin_transaction()
    send(p, topic, 2, "a")
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    send(p, topic, 2, "c2")
    p.commit_transaction(30)
    want = sorted(values("c1", 2) + values("c2", 2))
    assert read(broker.bootstrap, topic, 2, "read_committed", len(want)) == want
    assert read(broker.bootstrap, topic, 2, "read_uncommitted", 3 * len(want) // 2) == \
        sorted(want + values("a", 2))


def test_confluent_zombie_is_fenced(broker):
    topic = cu.unique_topic("txn-fence")
    cu.create_topic(broker.bootstrap, topic, partitions=1)
    tid = f"txn-zombie-{uuid.uuid4().hex[:8]}"
    zombie = producer(broker.bootstrap, tid)
    zombie.begin_transaction()
    send(zombie, topic, 1, "zombie")
    zombie.flush(30)
    # A second instance with the same transactional.id: its
    # init_transactions aborts the zombie's open transaction.
    fresh = producer(broker.bootstrap, tid)
    fresh.begin_transaction()
    send(fresh, topic, 1, "fresh")
    fresh.commit_transaction(30)
    # The zombie can no longer commit: fenced (fatal).
    with pytest.raises(KafkaException) as e:
        send(zombie, topic, 1, "late")
        zombie.commit_transaction(30)
    err = e.value.args[0]
    print(f"zombie commit: {err}")
    assert err.fatal() or "fenced" in str(err).lower() or "epoch" in str(err).lower(), str(err)
    assert read(broker.bootstrap, topic, 1, "read_committed", PER_TXN) == values("fresh", 1)


def test_kafka_transactions_cli_lists_and_describes(broker):
    """`kafka-transactions list` and `describe` (DescribeTransactions,
    ListTransactions) show a running transaction with its partitions, and
    its end."""
    topic = cu.unique_topic("txn-cli")
    cu.create_topic(broker.bootstrap, topic, partitions=2)
    tid = f"txn-cli-{uuid.uuid4().hex[:8]}"
    p = producer(broker.bootstrap, tid)
    p.begin_transaction()
    send(p, topic, 2, "open")
    p.flush(30)
    out = cu.kafka_tool("transactions", "--bootstrap-server", broker.bootstrap, "list").stdout_text
    print(out)
    line = next((ln for ln in out.splitlines() if ln.split() and ln.split()[0] == tid), None)
    assert line is not None, f"{tid} not listed:\n{out}"
    assert "Ongoing" in line, line
    out = cu.kafka_tool("transactions", "--bootstrap-server", broker.bootstrap,
                        "describe", "--transactional-id", tid).stdout_text
    print(out)
    assert "Ongoing" in out, out
    assert f"{topic}-0" in out and f"{topic}-1" in out, out
    p.commit_transaction(30)
    out = cu.kafka_tool("transactions", "--bootstrap-server", broker.bootstrap,
                        "describe", "--transactional-id", tid).stdout_text
    assert "Ongoing" not in out, out
