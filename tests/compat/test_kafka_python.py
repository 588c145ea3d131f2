"""kafka-python 3.x: KafkaAdminClient, KafkaProducer (idempotent by default in 3.x),
KafkaConsumer with assign()/seek() and no group."""

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

import compat_util as cu

TIMEOUT = 30


@pytest.fixture
def kadmin(bootstrap):
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT * 1000)
    yield a
    a.close()


def kp_records(n, partitions):
    recs = cu.make_records(n, partitions=partitions, null_header_values=False)
    for r in recs:  # kafka-python refuses a record with neither key nor value
        if r["key"] is None and r["value"] is None:
            r["key"] = b"k-for-null-value"
    return recs


def read_back(bootstrap, topic, partitions, count, start=0, timeout=TIMEOUT):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="none", consumer_timeout_ms=1000,
                      request_timeout_ms=TIMEOUT * 1000 + 5000)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, start)
        got = []
        deadline = time.time() + timeout
        while len(got) < count and time.time() < deadline:
            for batch in c.poll(timeout_ms=500).values():
                got.extend(batch)
        assert len(got) == count, f"read {len(got)} of {count} records: {[(r.partition, r.offset) for r in got]}"
        # nothing beyond
        extra = c.poll(timeout_ms=500)
        assert not any(extra.values()), f"unexpected extra records: {extra}"
        return got
    finally:
        c.close()


def test_admin_topics(bootstrap, kadmin, broker_id, topic_name):
    res = kadmin.create_topics([NewTopic(topic_name, 3, 1, topic_configs={"retention.ms": "3600000",
                                                                          "cleanup.policy": "compact"})],
                               timeout_ms=TIMEOUT * 1000)
    t = res["topics"][0]
    assert (t["name"], t["error_code"]) == (topic_name, 0), res
    cu.wait_topic_ready(bootstrap, topic_name, 3)
    assert topic_name in kadmin.list_topics()

    desc = kadmin.describe_topics([topic_name])
    assert len(desc) == 1 and desc[0]["error_code"] == 0, desc
    parts = sorted(desc[0]["partitions"], key=lambda p: p["partition_index"])
    assert [p["partition_index"] for p in parts] == [0, 1, 2], desc
    for p in parts:
        assert (p["leader_id"], p["replica_nodes"], p["isr_nodes"]) == (broker_id, [broker_id], [broker_id]), p

    cfg = kadmin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name)])
    entries = cfg["topic"][topic_name]
    assert entries["retention.ms"]["value"] == "3600000", entries
    assert entries["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG", entries
    assert entries["cleanup.policy"]["value"] == "compact", entries

    with pytest.raises(TopicAlreadyExistsError):
        kadmin.create_topics([NewTopic(topic_name, 1, 1)], timeout_ms=TIMEOUT * 1000)

    kadmin.create_partitions({topic_name: NewPartitions(4)})
    cu.wait_topic_ready(bootstrap, topic_name, 4)

    res = kadmin.delete_topics([topic_name], timeout_ms=TIMEOUT * 1000)
    assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(topic_name, 0)], res
    deadline = time.time() + 15
    while topic_name in kadmin.list_topics():
        assert time.time() < deadline, "deleted topic still listed after 15s"
        time.sleep(0.2)
    with pytest.raises(UnknownTopicOrPartitionError):
        kadmin.delete_topics([topic_name + "-missing"], timeout_ms=TIMEOUT * 1000)


@pytest.mark.parametrize("codec,idempotent,acks", [
    (None, True, "all"), ("gzip", True, "all"), ("snappy", True, "all"), ("lz4", True, "all"),
    ("zstd", True, "all"), (None, False, "all"), ("zstd", False, 1),
])
def test_produce_consume(bootstrap, topic_name, codec, idempotent, acks):
    cu.create_topic(bootstrap, topic_name, partitions=2)
    records = kp_records(50, 2)
    p = KafkaProducer(bootstrap_servers=bootstrap, acks=acks, compression_type=codec,
                      enable_idempotence=idempotent, linger_ms=20, request_timeout_ms=TIMEOUT * 1000)
    try:
        futs = [p.send(topic_name, key=r["key"], value=r["value"], headers=r["headers"],
                       timestamp_ms=r["timestamp"], partition=r["partition"]) for r in records]
        p.flush(timeout=TIMEOUT)
        metas = [f.get(timeout=TIMEOUT) for f in futs]
    finally:
        p.close(timeout=10)
    for part in range(2):
        offs = [m.offset for m, r in zip(metas, records) if r["partition"] == part]
        assert offs == list(range(25)), f"partition {part}: offsets {offs}"
    for m, r in zip(metas, records):
        assert (m.partition, m.timestamp) == (r["partition"], r["timestamp"]), (m, r["timestamp"])

    got = read_back(bootstrap, topic_name, 2, len(records))
    by_part = {part: sorted([g for g in got if g.partition == part], key=lambda g: g.offset)
               for part in range(2)}
    for part in range(2):
        want = [r for r in records if r["partition"] == part]
        for off, (g, r) in enumerate(zip(by_part[part], want)):
            ctx = f"partition {part} offset {g.offset}"
            assert g.offset == off, ctx
            assert g.key == r["key"], f"{ctx}: key {cu.short(g.key)!r} != {cu.short(r['key'])!r}"
            assert g.value == r["value"], f"{ctx}: value {cu.short(g.value)!r} != {cu.short(r['value'])!r}"
            assert list(g.headers) == r["headers"], f"{ctx}: headers {g.headers!r} != {r['headers']!r}"
            assert (g.timestamp, g.timestamp_type) == (r["timestamp"], 0), f"{ctx}: {g.timestamp}/{g.timestamp_type}"

    # seek into the middle
    mid = read_back(bootstrap, topic_name, 2, 2 * 5, start=20)
    assert sorted((g.partition, g.offset) for g in mid) == [(pp, o) for pp in range(2) for o in range(20, 25)]


def test_offsets_lookup(bootstrap, topic_name):
    cu.create_topic(bootstrap, topic_name, partitions=1)
    base = cu.now_ms() - 50_000
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip", linger_ms=50)
    try:
        for i in range(8):
            p.send(topic_name, key=b"k%d" % i, value=b"v%d" % i, timestamp_ms=base + i * 1000, partition=0)
        p.flush(timeout=TIMEOUT)
    finally:
        p.close(timeout=10)
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic_name, 0)
        assert c.beginning_offsets([tp]) == {tp: 0}
        assert c.end_offsets([tp]) == {tp: 8}
        res = c.offsets_for_times({tp: base + 2500})
        assert (res[tp].offset, res[tp].timestamp) == (3, base + 3000), res
        res = c.offsets_for_times({tp: base + 3000})
        assert (res[tp].offset, res[tp].timestamp) == (3, base + 3000), res
        assert c.offsets_for_times({tp: base + 10_000_000}) == {tp: None}
    finally:
        c.close()
