"""KIP-890 part 1: transaction partition verification (issue 14).

A transactional write to a partition that was never added to the
producer's transaction is refused by the partition leader, which asks the
transaction coordinator first (AddPartitionsToTxn v4 VerifyOnly on Kafka
and Runnel alike). Without it, such a write opens a transaction no marker
will ever end ("hanging transaction"): that partition's last stable offset
stays stuck below it, and read_committed consumers stop there.

- Produce v9 (before TRANSACTION_ABORTABLE): INVALID_TXN_STATE, "Partition
  was not added to the transaction", nothing appended, the LSO equals the
  high watermark; the partitions that were added take their records and the
  commit makes them visible.
- Produce v11: TRANSACTION_ABORTABLE (the coordinator's own answer).
- A write with a stale producer epoch is refused as well.

Raw requests (tests/compat/txn_raw.py), since real clients always add a
partition before writing to it. Passes against Apache Kafka 4.1.1 too
(COMPAT_APACHE_KAFKA=1).
"""

import time
import uuid

import pytest

import compat_util as cu
from txn_raw import (INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, TRANSACTION_ABORTABLE,
                     RawTxnProducer, latest_offsets)


def wait_offsets(bootstrap, topic, isolation, want, timeout=20.0):
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got = latest_offsets(bootstrap, topic, sorted(want), isolation)
        if got == want:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{topic} isolation {isolation}: {got}, wanted {want}")


@pytest.mark.parametrize("version,code", [(9, INVALID_TXN_STATE), (11, TRANSACTION_ABORTABLE)])
def test_a_write_outside_the_transaction_is_refused(broker, version, code):
    topic = cu.unique_topic("txn-verify")
    cu.create_topic(broker.bootstrap, topic, partitions=2)
    p = RawTxnProducer(broker.bootstrap, f"txn-verify-{uuid.uuid4().hex[:8]}")
    p.add_partitions(topic, [0])
    assert p.produce(topic, 0, [b"in-1", b"in-2"], version) == (0, None)
    err, msg = p.produce(topic, 1, [b"outside"], version)
    print(f"Produce v{version} outside the transaction: {err} {msg!r}")
    assert err == code, (err, msg)
    if code == INVALID_TXN_STATE:
        assert msg == "Partition was not added to the transaction", msg
    # Nothing reached partition 1, so nothing can hang there.
    assert latest_offsets(broker.bootstrap, topic, [0, 1], 0)[1] == 0
    assert latest_offsets(broker.bootstrap, topic, [0, 1], 1)[1] == 0
    # The transaction goes on with its own partition: the LSO of partition
    # 0 waits for the commit, then passes its records and the marker.
    assert latest_offsets(broker.bootstrap, topic, [0], 1) == {0: 0}
    p.end(commit=True)
    wait_offsets(broker.bootstrap, topic, 1, {0: 3, 1: 0})


def test_a_write_before_any_transaction_is_refused_and_the_lso_moves_on(broker):
    """Right after InitProducerId (no transaction at all) the write is
    refused too; a later non-transactional write is not held back by it."""
    topic = cu.unique_topic("txn-verify-empty")
    cu.create_topic(broker.bootstrap, topic, partitions=1)
    p = RawTxnProducer(broker.bootstrap, f"txn-verify-e-{uuid.uuid4().hex[:8]}")
    err, msg = p.produce(topic, 0, [b"hanging?"], 9)
    assert err == INVALID_TXN_STATE, (err, msg)
    from confluent_kafka import Producer
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce(topic, value=b"plain", partition=0)
    assert plain.flush(30) == 0
    # The last stable offset follows the high watermark: nothing hangs.
    wait_offsets(broker.bootstrap, topic, 1, {0: 1})
    wait_offsets(broker.bootstrap, topic, 0, {0: 1})


def test_a_fenced_epoch_is_refused_on_a_new_partition(broker):
    """A zombie (an older epoch of the same transactional id) writing to a
    partition new to the transaction: the coordinator says PRODUCER_FENCED,
    which the leader answers as INVALID_PRODUCER_EPOCH."""
    topic = cu.unique_topic("txn-verify-fence")
    cu.create_topic(broker.bootstrap, topic, partitions=2)
    tid = f"txn-verify-f-{uuid.uuid4().hex[:8]}"
    zombie = RawTxnProducer(broker.bootstrap, tid)
    fresh = RawTxnProducer(broker.bootstrap, tid)
    assert fresh.epoch > zombie.epoch
    fresh.add_partitions(topic, [0, 1])
    err, msg = zombie.produce(topic, 1, [b"zombie"], 9)
    assert err == INVALID_PRODUCER_EPOCH, (err, msg)
    assert fresh.produce(topic, 1, [b"fresh"], 9) == (0, None)
    fresh.end(commit=True)
    wait_offsets(broker.bootstrap, topic, 1, {0: 1, 1: 2})
