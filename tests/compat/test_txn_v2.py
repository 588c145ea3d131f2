"""KIP-890 part 2: transaction.version 2 (issue 14).

- A new cluster finalizes `transaction.version` 2, advertised in
  ApiVersions (supported 0-2, finalized 2), so Kafka 4.1 clients use it.
- Raw: EndTxn v5 bumps the producer epoch at every end and answers it;
  Produce v12 adds a partition to the transaction itself (no
  AddPartitionsToTxn); a retried EndTxn with the old epoch is answered as
  done; the old epoch is fenced afterwards.
- The Java 4.1.1 producer (TxnScenario: commit, abort, commit, open then
  commit) uses it: `kafka-transactions describe` shows its epoch grown by
  one per ended transaction (it stays 0 with transaction.version 1).

Passes against Apache Kafka 4.1.1 too (COMPAT_APACHE_KAFKA=1).
"""

import time
import uuid

import compat_util as cu
import txn_raw
from txn_raw import CONCURRENT_TRANSACTIONS, RawTxnProducer, latest_offsets, rp
from txn_util import java
from test_txn_verification import wait_offsets

from kafka.protocol.metadata import ApiVersionsRequest


def test_transaction_version_2_is_finalized(broker):
    with rp.RawConn(broker.bootstrap) as c:
        r = c.send(ApiVersionsRequest, 4, client_software_name="txn-v2",
                   client_software_version="1")
    supported = {f.name: (f.min_version, f.max_version) for f in r.supported_features}
    finalized = {f.name: f.max_version_level for f in r.finalized_features}
    print(supported, finalized)
    assert supported.get("transaction.version") == (0, 2), supported
    assert finalized.get("transaction.version") == 2, finalized
    # v3 leaves out the supported ranges that start at 0 (older clients
    # cannot parse them); the finalized levels are all there.
    with rp.RawConn(broker.bootstrap) as c:
        r3 = c.send(ApiVersionsRequest, 3, client_software_name="txn-v2",
                    client_software_version="1")
    assert "transaction.version" not in {f.name for f in r3.supported_features}
    assert {f.name: f.max_version_level for f in r3.finalized_features}.get(
        "transaction.version") == 2
    keys = {k.api_key: k.max_version for k in r.api_keys}
    assert keys[26] >= 5 and keys[24] >= 5 and keys[28] >= 5, keys  # EndTxn, AddPartitionsToTxn, TxnOffsetCommit


def test_end_txn_v5_bumps_the_epoch_and_produce_v12_adds_partitions(broker):
    topic = cu.unique_topic("txn-v2")
    cu.create_topic(broker.bootstrap, topic, partitions=2)
    p = RawTxnProducer(broker.bootstrap, f"txn-v2-{uuid.uuid4().hex[:8]}")
    pid, e0 = p.pid, p.epoch
    # Produce v12: no AddPartitionsToTxn, the leader adds the partition.
    assert p.produce(topic, 0, [b"t1"], version=12, retries=50) == (0, None)
    r = p.end(commit=True, version=5)
    assert (r.producer_id, r.producer_epoch) == (pid, e0 + 1), r
    # A retry of that EndTxn (the epoch before the bump) is done.
    with rp.RawConn(p.coordinator) as c:
        again = c.send(txn_raw.EndTxnRequest, 5, transactional_id=p.tid, producer_id=pid,
                       producer_epoch=e0, committed=True)
    assert again.error_code in (0, CONCURRENT_TRANSACTIONS), again
    # The next transaction, at the bumped epoch, on the other partition too;
    # it is aborted.
    assert p.produce(topic, 1, [b"t2"], version=12, retries=50) == (0, None)
    assert p.produce(topic, 0, [b"t2"], version=12, retries=50) == (0, None)
    r = p.end(commit=False, version=5)
    assert (r.producer_id, r.producer_epoch) == (pid, e0 + 2), r
    # The first epoch is fenced now (once the abort's markers are out).
    for _ in range(100):
        with rp.RawConn(p.coordinator) as c:
            old = c.send(txn_raw.EndTxnRequest, 5, transactional_id=p.tid, producer_id=pid,
                         producer_epoch=e0, committed=True)
        if old.error_code != CONCURRENT_TRANSACTIONS:
            break
        time.sleep(0.1)
    assert old.error_code == txn_raw.PRODUCER_FENCED, old
    # Partition 0: t1, its commit marker, t2, its abort marker; 1: t2 and
    # its abort marker. read_committed is not held back by anything.
    wait_offsets(broker.bootstrap, topic, 1, {0: 4, 1: 2})
    assert latest_offsets(broker.bootstrap, topic, [0, 1], 0) == {0: 4, 1: 2}


def describe_epoch(bootstrap, tid):
    out = cu.kafka_tool("transactions", "--bootstrap-server", bootstrap,
                        "describe", "--transactional-id", tid).stdout_text
    lines = [ln.split() for ln in out.splitlines() if ln.strip()]
    header = lines[0]
    row = next(ln for ln in lines[1:] if tid in ln)
    return int(row[header.index("ProducerEpoch")]), out


def test_java_producer_uses_transaction_version_2(broker):
    topic = cu.unique_topic("txn-v2-java")
    cu.create_topic(broker.bootstrap, topic, partitions=2)
    tid = f"txn-v2-java-{uuid.uuid4().hex[:8]}"
    stdout, detail = java(broker.bootstrap, topic, 2, tid)
    assert "RESULT OK" in stdout, detail
    epoch, out = describe_epoch(broker.bootstrap, tid)
    print(out)
    # One InitProducerId (epoch 0), then one bump per ended transaction
    # (commit, abort, commit, commit).
    assert epoch >= 4, out


def finalized_tv(bootstrap):
    with rp.RawConn(bootstrap) as c:
        r = c.send(ApiVersionsRequest, 4, client_software_name="txn-v2",
                   client_software_version="1")
    return {f.name: f.max_version_level for f in r.finalized_features}.get(
        "transaction.version", 0)


def set_tv(bootstrap, verb, level):
    cu.kafka_tool("features", "--bootstrap-server", bootstrap, verb,
                  "--feature", f"transaction.version={level}")
    deadline = time.time() + 30
    while finalized_tv(bootstrap) != level and time.time() < deadline:
        time.sleep(0.2)
    assert finalized_tv(bootstrap) == level


def test_transaction_version_1_set_with_kafka_features_stops_the_bumps(broker):
    """`kafka-features downgrade --feature transaction.version=1`: the Java
    producer goes back to transaction.version 1 (one epoch for all its
    transactions); `upgrade` to 2 restores it."""
    topic = cu.unique_topic("txn-v1-java")
    cu.create_topic(broker.bootstrap, topic, partitions=2)
    tid = f"txn-v1-java-{uuid.uuid4().hex[:8]}"
    set_tv(broker.bootstrap, "downgrade", 1)
    try:
        stdout, detail = java(broker.bootstrap, topic, 2, tid)
        assert "RESULT OK" in stdout, detail
        epoch, out = describe_epoch(broker.bootstrap, tid)
        print(out)
        assert epoch == 0, out
    finally:
        set_tv(broker.bootstrap, "upgrade", 2)
