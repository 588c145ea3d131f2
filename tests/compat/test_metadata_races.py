"""Acknowledged records must survive metadata changes that race with requests.

Issue 8: a handler that kept the cluster image it took when its request
arrived (a Fetch long-polling a topic, a Produce, a ListOffsets, a group
request) used to re-sync the broker's partitions to that old image when a
partition was missing. A topic created after the image was taken was then
deleted from disk, with its acknowledged records, and topics deleted before
came back as empty directories. On Runnel before the fix the long-poll
scenario below lost the acked records in every iteration; Apache Kafka 4.1.1
loses none.

Every check here is what a client sees (ListOffsets, Fetch), so the same
tests run against Apache Kafka (COMPAT_APACHE_KAFKA=1).
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

import compat_util as cu

ITERATIONS = 6
LONG_POLLERS = 3
FETCH_WAIT_MS = 1500


def _create(adm, names, partitions):
    futs = adm.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names],
                             operation_timeout=30, request_timeout=30)
    for f in futs.values():
        f.result(timeout=30)


def _delete(adm, names):
    futs = adm.delete_topics(list(names), operation_timeout=30, request_timeout=30)
    for f in futs.values():
        f.result(timeout=30)


def _produce_acked(bootstrap, topic, partitions, tag):
    """Produce one record per partition with acks=all; return {partition: (offset, value)}."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
                  "linger.ms": 0, "message.timeout.ms": 30000})
    acked = {}
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[msg.partition()] = (msg.offset(), msg.value())

    for part in range(partitions):
        p.produce(topic, value=f"{tag}-{part}".encode(), partition=part, on_delivery=cb)
    assert p.flush(30) == 0, "records still in flight after 30 s"
    assert not errors, errors
    assert len(acked) == partitions
    return acked


def _read_back(bootstrap, topic, acked):
    """Every acked record is at its acked offset, and the end offsets say so."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        for part, (off, value) in acked.items():
            low, high = c.get_watermark_offsets(TopicPartition(topic, part), timeout=15, cached=False)
            assert high == off + 1, f"{topic}-{part}: end offset {high}, acked offset {off} (acked record lost)"
        c.assign([TopicPartition(topic, part, off) for part, (off, _) in acked.items()])
        got = {}
        deadline = time.time() + 20
        while len(got) < len(acked) and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, m.error()
            got.setdefault(m.partition(), (m.offset(), m.value()))
        assert got == acked, f"{topic}: read back {got}, acked {acked}"
    finally:
        c.close()


class _LongPoller:
    """A consumer whose fetches of an empty topic sit in the broker's long poll."""

    def __init__(self, bootstrap, topic):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lp-{uuid.uuid4().hex[:8]}",
                           "enable.auto.commit": False, "fetch.wait.max.ms": FETCH_WAIT_MS,
                           "topic.metadata.refresh.interval.ms": 60000,
                           "allow.auto.create.topics": False})
        self.c.assign([TopicPartition(topic, 0, 0)])
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.is_set():
            m = self.c.poll(0.2)
            if m is not None and m.error() is not None and m.error().code() != KafkaError._PARTITION_EOF:
                pass  # the topic disappears under it: expected

    def close(self):
        self.stop.set()
        self.t.join(10)
        self.c.close()


def test_records_acked_during_a_long_poll_survive_a_topic_deletion(bootstrap):
    """The issue's scenario: consumers long-poll topic D; meanwhile topic X is
    created, records are produced to X with acks=all, and D is deleted. The
    long polls then finish; X's acked records must still be there."""
    adm = cu.admin_client(bootstrap)
    for i in range(ITERATIONS):
        d = cu.unique_topic(f"race-d{i}")
        x = cu.unique_topic(f"race-x{i}")
        _create(adm, [d], 1)
        cu.wait_topic_ready(bootstrap, d, 1)
        pollers = [_LongPoller(bootstrap, d) for _ in range(LONG_POLLERS)]
        try:
            time.sleep(1.0)  # the pollers' fetches are now waiting in the broker
            _create(adm, [x], 3)
            cu.wait_topic_ready(bootstrap, x, 3)
            acked = _produce_acked(bootstrap, x, 3, f"it{i}")
            _delete(adm, [d])
            time.sleep(FETCH_WAIT_MS / 1000 + 1.0)  # the long polls end with their old view
            _read_back(bootstrap, x, acked)
        finally:
            for p in pollers:
                p.close()
        # And the deleted topic stays deleted.
        md = adm.list_topics(timeout=15)
        assert d not in md.topics, f"deleted topic {d} came back"


def test_churn_of_other_topics_never_loses_acked_records(bootstrap):
    """Requests that carry an old view (produce, ListOffsets, group offset
    commits) to topics being deleted and re-created, while new topics keep
    being created and take acked writes: every acked record stays readable
    at its offset."""
    adm = cu.admin_client(bootstrap)
    churn = [cu.unique_topic(f"churn{i}") for i in range(3)]
    stop = threading.Event()
    problems = []

    def churner():
        while not stop.is_set():
            try:
                _create(adm, churn, 2)
                _delete(adm, churn)
            except Exception as e:  # noqa: BLE001 - create/delete races with auto-creation are expected
                if not any(k in str(e) for k in ("already exists", "UNKNOWN_TOPIC", "marked for deletion")):
                    problems.append(f"churn: {e}")
                time.sleep(0.05)

    def old_view_traffic():
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                      "message.timeout.ms": 2000, "enable.idempotence": False})
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"churn-{uuid.uuid4().hex[:6]}",
                      "enable.auto.commit": False, "allow.auto.create.topics": False})
        while not stop.is_set():
            for t in churn:
                try:
                    p.produce(t, b"x", partition=0)
                    c.get_watermark_offsets(TopicPartition(t, 1), timeout=1, cached=False)
                    c.commit(offsets=[TopicPartition(t, 0, 1)], asynchronous=True)
                except Exception:  # noqa: BLE001 - the topics come and go
                    pass
            p.poll(0)
        p.flush(5)
        c.close()

    threads = [threading.Thread(target=churner, daemon=True)] + [
        threading.Thread(target=old_view_traffic, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    acked = {}
    try:
        deadline = time.time() + 12
        n = 0
        while time.time() < deadline:
            fresh = cu.unique_topic(f"fresh{n}")
            _create(adm, [fresh], 1)
            cu.wait_topic_ready(bootstrap, fresh, 1)
            acked[fresh] = _produce_acked(bootstrap, fresh, 1, fresh)
            n += 1
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not problems, problems[:5]
    lost = []
    for topic, recs in acked.items():
        try:
            _read_back(bootstrap, topic, recs)
        except AssertionError as e:
            lost.append(str(e))
    assert not lost, f"{len(lost)} of {len(acked)} topics lost acked records: {lost[:3]}"
