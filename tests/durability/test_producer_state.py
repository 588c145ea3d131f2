"""Producer state on disk (issue 14): Kafka's `.snapshot` and `.txnindex` files.

- A producer whose batches were all deleted (DeleteRecords) keeps its state
  (KIP-360): a later roll snapshots it, and after kill -9 a retry of its last
  batch is still answered as a duplicate at the original offset instead of
  being written again.
- A read_committed consumer still skips an aborted transaction after kill -9
  when the abort lies below the newest snapshot (the aborted transactions
  then come from the `.txnindex` files, not from a replay).
- The files are Kafka's own formats: Kafka's DumpLogSegments reads the
  broker's `.snapshot` and `.txnindex` files.
- Idle producers expire after `producer.id.expiration.ms`
  (DescribeProducers, `producer.id.expiration.check.interval.ms`).

Raw InitProducerId / Produce v9 / DescribeProducers (kafka-python's message
classes, framed by tests/groups/rawproto.py) control the producer id and
sequence numbers exactly. Every test also runs against Apache Kafka 4.1.1
(DURABILITY_APACHE_KAFKA=1).
"""

import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

import compat_util as cu

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "groups"))
import rawproto as rp  # noqa: E402

from kafka.protocol.producer import InitProducerIdRequest, ProduceRequest  # noqa: E402
from txn_raw import record_batch  # noqa: E402  (tests/compat)

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
SEGMENT_MS = 1000


def init_producer_id(bootstrap):
    deadline = time.time() + 30
    while True:
        with rp.RawConn(bootstrap, client_id="producer-state") as c:
            r = c.send(InitProducerIdRequest, 4, transactional_id=None, transaction_timeout_ms=60000,
                       producer_id=-1, producer_epoch=-1)
        if r.error_code == 0:
            return r.producer_id, r.producer_epoch
        assert time.time() < deadline, f"InitProducerId: {rp.err_name(r.error_code)}"
        time.sleep(0.3)


def batch(values, pid=-1, epoch=-1, seq=-1):
    return record_batch(values, pid, epoch, seq)


def produce(bootstrap, topic, data):
    """Produce v9, acks=all, to partition 0: (error code, base offset)."""
    tpd = ProduceRequest[9].TopicProduceData
    with rp.RawConn(bootstrap, client_id="producer-state") as c:
        r = c.send(ProduceRequest, 9, transactional_id=None, acks=-1, timeout_ms=30000,
                   topic_data=[tpd(name=topic, partition_data=[
                       tpd.PartitionProduceData(index=0, records=data)])])
    p = r.responses[0].partition_responses[0]
    return p.error_code, p.base_offset


def end_offset(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "producer-state"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
    finally:
        c.close()


def roll(bootstrap, topic, value=b"roll"):
    """Waits out segment.ms, then appends one plain record: the append rolls
    first. Returns its offset (the new segment's base)."""
    time.sleep(SEGMENT_MS / 1000 + 0.3)
    err, off = produce(bootstrap, topic, batch([value]))
    assert err == 0, rp.err_name(err)
    return off


def partition_dir(broker, topic):
    d = Path(broker.data) / f"{topic}-0"
    assert d.is_dir(), f"no partition directory {d}"
    return d


def read_all(bootstrap, topic, isolation):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ps-{isolation}-{time.time()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": isolation})
    c.assign([TopicPartition(topic, 0, 0)])
    out, deadline, idle = [], time.time() + 60, 0
    try:
        while time.time() < deadline and idle < 6:
            m = c.poll(0.5)
            if m is None:
                idle += 1
                continue
            idle = 0
            if m.error() is None:
                out.append(m.value())
    finally:
        c.close()
    return out


def test_a_producer_whose_batches_were_deleted_still_dedups_after_kill9(make_broker, topic_name):
    b = make_broker()
    cu.create_topic(b.bootstrap, topic_name, 1, config={"segment.ms": str(SEGMENT_MS)})
    pid, epoch = init_producer_id(b.bootstrap)
    first = batch([b"a0", b"a1", b"a2", b"a3", b"a4"], pid, epoch, 0)
    assert produce(b.bootstrap, topic_name, first) == (0, 0)
    assert roll(b.bootstrap, topic_name) == 5
    assert roll(b.bootstrap, topic_name) == 6
    # Every batch of the producer goes (its segment with it on Runnel; Kafka
    # deletes the segment at its next retention check).
    adm = cu.admin_client(b.bootstrap)
    fut = adm.delete_records([TopicPartition(topic_name, 0, 6)])
    low = list(fut.values())[0].result(timeout=30)
    assert low.low_watermark == 6
    # A later roll snapshots the producer from memory.
    assert roll(b.bootstrap, topic_name) == 7
    b.kill9()
    b.start()
    end = end_offset(b.bootstrap, topic_name)
    assert end == 8
    # The retry is a duplicate: answered with its original offset, not written.
    assert produce(b.bootstrap, topic_name, first) == (0, 0), "the retried batch was written again"
    assert end_offset(b.bootstrap, topic_name) == end
    # The sequence goes on from where it was; a gap is refused.
    err, _ = produce(b.bootstrap, topic_name, batch([b"gap"], pid, epoch, 7))
    assert err == OUT_OF_ORDER_SEQUENCE_NUMBER, rp.err_name(err)
    assert produce(b.bootstrap, topic_name, batch([b"a5"], pid, epoch, 5)) == (0, end)


def txn_producer(bootstrap, tid):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid,
                  "transaction.timeout.ms": 60000})
    p.init_transactions(60)
    return p


def test_an_aborted_transaction_below_the_snapshot_stays_aborted_after_kill9(make_broker, topic_name):
    b = make_broker()
    cu.create_topic(b.bootstrap, topic_name, 1, config={"segment.ms": str(SEGMENT_MS)})
    p = txn_producer(b.bootstrap, f"ps-{topic_name}")
    p.begin_transaction()
    for i in range(3):
        p.produce(topic_name, f"aborted-{i}".encode(), partition=0)
    p.flush(30)
    p.abort_transaction(60)
    p.begin_transaction()
    for i in range(2):
        p.produce(topic_name, f"committed-{i}".encode(), partition=0)
    p.commit_transaction(60)
    # Roll past the abort: the restart loads a snapshot above it.
    roll(b.bootstrap, topic_name, b"plain")
    b.kill9()
    b.start()
    committed = read_all(b.bootstrap, topic_name, "read_committed")
    assert committed == [b"committed-0", b"committed-1", b"plain"], committed
    everything = read_all(b.bootstrap, topic_name, "read_uncommitted")
    assert [v for v in everything if v.startswith(b"aborted")] == [b"aborted-0", b"aborted-1",
                                                                    b"aborted-2"]
    p2 = txn_producer(b.bootstrap, f"ps-{topic_name}")
    p2.begin_transaction()
    p2.produce(topic_name, b"after-restart", partition=0)
    p2.commit_transaction(60)
    assert read_all(b.bootstrap, topic_name, "read_committed")[-1] == b"after-restart"


def test_snapshot_and_transaction_index_files_are_read_by_kafkas_dump_tool(make_broker, topic_name):
    cu.load_env_sh()
    b = make_broker()
    cu.create_topic(b.bootstrap, topic_name, 1, config={"segment.ms": str(SEGMENT_MS)})
    pid, epoch = init_producer_id(b.bootstrap)
    assert produce(b.bootstrap, topic_name, batch([b"i0", b"i1", b"i2"], pid, epoch, 0)) == (0, 0)
    p = txn_producer(b.bootstrap, f"dump-{topic_name}")
    p.begin_transaction()
    p.produce(topic_name, b"aborted", partition=0)
    p.flush(30)
    p.abort_transaction(60)
    base = roll(b.bootstrap, topic_name)
    b.sigterm()
    d = partition_dir(b, topic_name)
    snaps = sorted(d.glob("*.snapshot"))
    assert d / f"{base:020d}.snapshot" in snaps, [s.name for s in snaps]
    txn_indexes = [f for f in d.glob("*.txnindex") if f.stat().st_size > 0]
    assert txn_indexes, sorted(f.name for f in d.iterdir())
    out = cu.kafka_tool("dump-log", "--files", str(d / f"{base:020d}.snapshot")).stdout.decode()
    assert f"producerId: {pid} producerEpoch: {epoch}" in out, out
    assert "lastSequence: 2" in out and "lastOffset: 2" in out, out
    out = cu.kafka_tool("dump-log", "--files", ",".join(map(str, txn_indexes))).stdout.decode()
    assert "firstOffset: 3" in out and "lastOffset: 4" in out, out
    b.start()
    assert read_all(b.bootstrap, topic_name, "read_committed") == [b"i0", b"i1", b"i2", b"roll"]


def describe_producers(bootstrap, topic):
    cu.load_env_sh()
    req = rp.extra_message("DescribeProducersRequest")
    rp.extra_message("DescribeProducersResponse")
    with rp.RawConn(bootstrap, client_id="producer-state") as c:
        r = c.send(req, 0, topics=[req[0].TopicRequest(name=topic, partition_indexes=[0])])
    part = r.topics[0].partitions[0]
    assert part.error_code == 0, rp.err_name(part.error_code)
    return {s.producer_id: s for s in part.active_producers}


def test_idle_producers_expire(make_broker, topic_name):
    b = make_broker(**{"producer.id.expiration.ms": "3000",
                       "producer.id.expiration.check.interval.ms": "500"})
    cu.create_topic(b.bootstrap, topic_name, 1)
    pid, epoch = init_producer_id(b.bootstrap)
    assert produce(b.bootstrap, topic_name, batch([b"x", b"y"], pid, epoch, 0)) == (0, 0)
    seen = describe_producers(b.bootstrap, topic_name)
    assert pid in seen, seen
    s = seen[pid]
    assert (s.producer_epoch, s.last_sequence, s.current_txn_start_offset) == (epoch, 1, -1)
    deadline = time.time() + 30
    while pid in describe_producers(b.bootstrap, topic_name):
        assert time.time() < deadline, "the idle producer never expired"
        time.sleep(0.5)
    # Forgotten: a batch that does not follow on is taken as a new producer's.
    err, _ = produce(b.bootstrap, topic_name, batch([b"z"], pid, epoch, 5))
    assert err == 0, rp.err_name(err)


def list_transactions(bootstrap):
    cu.load_env_sh()
    req = rp.extra_message("ListTransactionsRequest")
    rp.extra_message("ListTransactionsResponse")
    with rp.RawConn(bootstrap, client_id="producer-state") as c:
        r = c.send(req, 0, state_filters=[], producer_id_filters=[])
    assert r.error_code == 0, rp.err_name(r.error_code)
    return {t.transactional_id: (t.producer_id, t.transaction_state) for t in r.transaction_states}


def test_idle_transactional_ids_expire(make_broker, topic_name):
    b = make_broker(**{"transactional.id.expiration.ms": "2000",
                       "transaction.remove.expired.transaction.cleanup.interval.ms": "500"})
    cu.create_topic(b.bootstrap, topic_name, 1)
    tid = f"expire-{topic_name}"
    p = txn_producer(b.bootstrap, tid)
    p.begin_transaction()
    p.produce(topic_name, b"one", partition=0)
    p.commit_transaction(60)
    listed = list_transactions(b.bootstrap)
    assert listed.get(tid, (None, None))[1] == "CompleteCommit", listed
    first_pid = listed[tid][0]
    del p
    deadline = time.time() + 30
    while tid in list_transactions(b.bootstrap):
        assert time.time() < deadline, "the idle transactional id never expired"
        time.sleep(0.5)
    # Forgotten: the id starts afresh, with a new producer id.
    p = txn_producer(b.bootstrap, tid)
    p.begin_transaction()
    p.produce(topic_name, b"two", partition=0)
    p.commit_transaction(60)
    again = list_transactions(b.bootstrap)[tid]
    assert again[1] == "CompleteCommit" and again[0] != first_pid, (first_pid, again)
    assert read_all(b.bootstrap, topic_name, "read_committed") == [b"one", b"two"]
