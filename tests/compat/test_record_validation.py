"""Per-record validation of produced batches, as Kafka's LogValidator does it.

- A compacted topic (`cleanup.policy` with `compact`) refuses a record without
  a key: INVALID_RECORD (87), Kafka's message, and a record error naming the
  record's index in its batch; nothing of the batch is appended. The check
  reaches inside compressed batches.
- With `message.timestamp.type=CreateTime`, every record's timestamp must lie
  in [now - message.timestamp.before.max.ms, now +
  message.timestamp.after.max.ms]: INVALID_TIMESTAMP (32) otherwise, with a
  record error per refused record. Every record counts, not only the batch's
  largest timestamp.

Raw Produce v9 (kafka-python 3's message classes and record builder) shows
the exact response fields; confluent-kafka shows what a real client gets.
"""

import re
import sys
import time
from pathlib import Path

import pytest

import compat_util as cu

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "groups"))
import rawproto as rp  # noqa: E402  (tests/groups: frames kafka-python's messages)

from kafka.protocol.producer import ProduceRequest  # noqa: E402
from kafka.record.default_records import DefaultRecordBatchBuilder  # noqa: E402

GZIP = 1
INVALID_RECORD = 87
INVALID_TIMESTAMP = 32


def batch(records, compression=0):
    """records: [(key or None, value, timestamp ms)] -> one v2 batch."""
    b = DefaultRecordBatchBuilder(magic=2, compression_type=compression, is_transactional=False,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 20)
    for i, (k, v, ts) in enumerate(records):
        b.append(i, timestamp=ts, key=k, value=v, headers=[])
    return bytes(b.build())


def produce(bootstrap, topic, data):
    """One Produce v9 (acks=1) of `data` to partition 0: (error, message,
    [(batch index, message)], base offset)."""
    req = ProduceRequest[9]
    tpd = req.TopicProduceData
    topic_data = [tpd(name=topic, partition_data=[tpd.PartitionProduceData(index=0, records=data)])]
    with rp.RawConn(bootstrap, client_id="record-validation") as c:
        r = c.send(ProduceRequest, 9, transactional_id=None, acks=1, timeout_ms=30000,
                   topic_data=topic_data)
    p = r.responses[0].partition_responses[0]
    errs = [(e.batch_index, e.batch_index_error_message) for e in p.record_errors]
    return p.error_code, p.error_message, errs, p.base_offset


def end_offset(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "record-validation"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
    finally:
        c.close()


def now_ms():
    return int(time.time() * 1000)


@pytest.mark.parametrize("policy", ["compact", "compact,delete"])
@pytest.mark.parametrize("compression", [0, GZIP], ids=["plain", "gzip"])
def test_compacted_topic_refuses_a_record_without_key(bootstrap, topic_name, policy, compression):
    cu.create_topic(bootstrap, topic_name, 1, {"cleanup.policy": policy})
    t = now_ms()
    recs = [(b"k0", b"v0", t), (None, b"v1", t), (b"k2", b"v2", t), (None, b"v3", t)]
    code, msg, errs, base = produce(bootstrap, topic_name, batch(recs, compression))
    why = f"Compacted topic cannot accept message without key in topic partition {topic_name}-0"
    assert (code, base) == (INVALID_RECORD, -1), (code, msg)
    assert errs == [(1, why), (3, why)]
    assert msg == ("One or more records have been rejected due to 2 record errors in total, and only "
                   f"showing the first three errors at most: [RecordError(batchIndex=1, message='{why}'), "
                   f"RecordError(batchIndex=3, message='{why}')]")
    assert end_offset(bootstrap, topic_name) == 0, "a refused batch was appended"

    # with a key everywhere the same batch is taken
    code, msg, errs, base = produce(bootstrap, topic_name,
                                    batch([(b"k%d" % i, v, ts) for i, (_, v, ts) in enumerate(recs)],
                                          compression))
    assert (code, errs, base) == (0, [], 0), msg
    assert end_offset(bootstrap, topic_name) == 4


def test_a_topic_that_is_not_compacted_takes_records_without_key(bootstrap, topic_name):
    cu.create_topic(bootstrap, topic_name, 1, {"cleanup.policy": "delete"})
    code, msg, errs, base = produce(bootstrap, topic_name, batch([(None, b"v", now_ms())]))
    assert (code, errs, base) == (0, [], 0), msg


def test_a_real_client_sees_invalid_record_on_a_compacted_topic(bootstrap, topic_name):
    from confluent_kafka import KafkaError, Producer
    cu.create_topic(bootstrap, topic_name, 1, {"cleanup.policy": "compact"})
    got = []
    p = Producer({"bootstrap.servers": bootstrap, "retries": 0, "linger.ms": 0})
    p.produce(topic_name, value=b"no key", partition=0, on_delivery=lambda err, m: got.append(err))
    assert p.flush(30) == 0
    assert got[0] is not None and got[0].code() == KafkaError.INVALID_RECORD, got
    # (a batch fails as a whole: the keyed record goes in a batch of its own)
    p.produce(topic_name, key=b"k", value=b"keyed", partition=0, on_delivery=lambda err, m: got.append(err))
    assert p.flush(30) == 0
    assert got[1] is None, got


RANGE = re.compile(r"^Timestamp (-?\d+) of message with offset (\d+) is out of range\. "
                   r"The timestamp should be within \[(-?\d+), (-?\d+)\]$")


def test_record_timestamps_outside_the_topic_bounds_are_refused(bootstrap, topic_name):
    cu.create_topic(bootstrap, topic_name, 1, {"message.timestamp.after.max.ms": "60000",
                                               "message.timestamp.before.max.ms": "60000"})
    t = now_ms()
    future, past = t + 3_600_000, t - 3_600_000
    # The batch's largest timestamp is fine: only record 1 (an hour old) is not.
    code, msg, errs, base = produce(bootstrap, topic_name,
                                    batch([(b"a", b"0", t), (b"b", b"1", past), (b"c", b"2", t)]))
    assert (code, base, msg) == (INVALID_TIMESTAMP, -1,
                                 "One or more records have been rejected due to invalid timestamp")
    assert [i for i, _ in errs] == [1], errs
    m = RANGE.match(errs[0][1])
    assert m, errs
    ts, offset, lo, hi = map(int, m.groups())
    assert (ts, offset) == (past, 1) and hi - lo == 120_000 and abs(lo + 60_000 - t) < 30_000
    # one in the future, in a compressed batch
    code, msg, errs, base = produce(bootstrap, topic_name,
                                    batch([(b"a", b"0", t), (b"b", b"1", future)], GZIP))
    assert (code, [i for i, _ in errs]) == (INVALID_TIMESTAMP, [1]), (msg, errs)
    assert end_offset(bootstrap, topic_name) == 0
    # within the bounds, and LogAppendTime topics take any timestamp
    code, msg, errs, base = produce(bootstrap, topic_name, batch([(b"a", b"0", t), (b"b", b"1", t - 1000)]))
    assert (code, errs, base) == (0, [], 0), msg


def test_log_append_time_topics_do_not_check_record_timestamps(bootstrap, topic_name):
    cu.create_topic(bootstrap, topic_name, 1, {"message.timestamp.type": "LogAppendTime",
                                               "message.timestamp.before.max.ms": "60000"})
    code, msg, errs, base = produce(bootstrap, topic_name, batch([(b"a", b"0", now_ms() - 3_600_000)]))
    assert (code, errs, base) == (0, [], 0), msg
