"""Cluster-default dynamic broker configs (ConfigResource(BROKER, "")) act at
runtime on every broker, with no restart (issue 11: the operator applies these
keys through IncrementalAlterConfigs instead of rolling the brokers).

Each test sets one key with IncrementalAlterConfigs (kafka-configs.sh),
observes its effect on a topic without its own override of that key, and
DELETEs it again. The keys tested here are exactly the ones the operator
applies without a restart (operator/src/cluster/dynamic.rs, DYNAMIC_KEYS).
Passes on three Apache Kafka 4.1.1 nodes too (CLUSTER_APACHE_KAFKA=1).
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, Producer, TopicPartition, Consumer
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

import compat_util as cu
from conftest import Cluster, managed

CHECK_MS = 500


@pytest.fixture(scope="module")
def cluster(request):
    # Retention runs every CHECK_MS so a new retention default shows quickly
    # (Kafka's default is 5 minutes); everything else is a default.
    yield from managed(request, lambda: Cluster(3, {"log.retention.check.interval.ms": str(CHECK_MS)}))


def _admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 30000})


def _alter_default(bootstrap, key, value):
    """SET (value) or DELETE (None) `key` at the cluster-default level with
    kafka-configs.sh (IncrementalAlterConfigs on ConfigResource(BROKER, ""),
    which librdkafka cannot name)."""
    op = ["--delete-config", key] if value is None else ["--add-config", f"{key}={value}"]
    p = cu.kafka_tool("configs", "--bootstrap-server", bootstrap, "--alter", "--entity-type", "brokers",
                      "--entity-default", *op)
    assert p.stdout_text.strip() == "Completed updating default config for brokers in the cluster.", \
        p.stdout_text


def _broker_entry(bootstrap, broker_id, key):
    res = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
    adm = _admin(bootstrap)
    fs = adm.describe_configs([res], request_timeout=30)
    configs = list(fs.values())[0].result(timeout=40)
    return configs[key]


def _wait_default_everywhere(cluster, key, value, timeout=30):
    """Until every broker describes `key` = `value` from DYNAMIC_DEFAULT_BROKER_CONFIG."""
    deadline = time.time() + timeout
    while True:
        entries = {n.node_id: _broker_entry(n.bootstrap, n.node_id, key) for n in cluster.nodes}
        if all(e.value == value and e.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
               for e in entries.values()):
            return
        assert time.time() < deadline, {i: (e.value, e.source) for i, e in entries.items()}
        time.sleep(0.5)


def _create(bootstrap, name, partitions, config=None):
    adm = _admin(bootstrap)
    f = adm.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=30, request_timeout=30)
    f[name].result(timeout=60)


def _leaders(bootstrap, topic, partitions):
    md = cu.wait_topic_ready(bootstrap, topic, partitions, timeout=60)
    return {p: md.topics[topic].partitions[p].leader for p in range(partitions)}


def _produce_each(bootstrap, topic, partitions, size):
    """One record of `size` bytes to each partition: {partition: error code or None}."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                  "message.max.bytes": 10_000_000, "message.timeout.ms": 30000, "retries": 0})
    out = {}

    def cb(e, m):
        out[m.partition()] = e.code() if e else None

    for part in range(partitions):
        p.produce(topic, b"x" * size, partition=part, on_delivery=cb)
    assert p.flush(60) == 0
    return out


def _earliest(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[0]
                for p in range(partitions)}
    finally:
        c.close()


def test_message_max_bytes_default_changes_what_every_leader_accepts(cluster):
    topic = cu.unique_topic("dyn-mmb")
    parts = 3
    _create(cluster.bootstrap, topic, parts)
    leaders = _leaders(cluster.bootstrap, topic, parts)
    assert len(set(leaders.values())) > 1, leaders  # several brokers lead
    assert _produce_each(cluster.bootstrap, topic, parts, 4000) == {p: None for p in range(parts)}
    try:
        _alter_default(cluster.bootstrap, "message.max.bytes", "2000")
        _wait_default_everywhere(cluster, "message.max.bytes", "2000")
        deadline = time.time() + 30
        while True:
            got = _produce_each(cluster.bootstrap, topic, parts, 4000)
            if all(c == KafkaError.MSG_SIZE_TOO_LARGE for c in got.values()):
                break
            assert time.time() < deadline, got
            time.sleep(0.5)
        # small records still go through
        assert _produce_each(cluster.bootstrap, topic, parts, 100) == {p: None for p in range(parts)}
    finally:
        _alter_default(cluster.bootstrap, "message.max.bytes", None)
    deadline = time.time() + 30
    while True:
        got = _produce_each(cluster.bootstrap, topic, parts, 4000)
        if got == {p: None for p in range(parts)}:
            break
        assert time.time() < deadline, got
        time.sleep(0.5)
    e = _broker_entry(cluster.bootstrap, cluster.nodes[0].node_id, "message.max.bytes")
    assert e.source == ConfigSource.DEFAULT_CONFIG.value, (e.value, e.source)


@pytest.mark.parametrize("key,value", [("log.retention.ms", "1000"), ("log.retention.bytes", "100")])
def test_retention_default_deletes_segments_of_topics_without_override(cluster, key, value):
    topic = cu.unique_topic("dyn-ret")
    parts = 3
    # segment.ms rolls a segment per batch below; retention is not overridden
    _create(cluster.bootstrap, topic, parts, {"segment.ms": "100"})
    _leaders(cluster.bootstrap, topic, parts)
    for _ in range(3):
        assert _produce_each(cluster.bootstrap, topic, parts, 100) == {p: None for p in range(parts)}
        time.sleep(0.3)
    # the default retention (7 days, unlimited bytes) keeps everything
    time.sleep(4 * CHECK_MS / 1000)
    assert _earliest(cluster.bootstrap, topic, parts) == {p: 0 for p in range(parts)}
    try:
        _alter_default(cluster.bootstrap, key, value)
        _wait_default_everywhere(cluster, key, value)
        deadline = time.time() + 30
        while True:
            got = _earliest(cluster.bootstrap, topic, parts)
            if all(v > 0 for v in got.values()):
                break
            assert time.time() < deadline, got
            time.sleep(0.5)
    finally:
        _alter_default(cluster.bootstrap, key, None)


def _produce_all(bootstrap, topic, partitions, timestamp_ms=None):
    """One acks=all record to each partition: {partition: (error code or None, (ts type, ts))}."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                  "message.timeout.ms": 30000, "retries": 0, "enable.idempotence": False})
    out = {}

    def cb(e, m):
        out[m.partition()] = (e.code() if e else None, m.timestamp())

    for part in range(partitions):
        if timestamp_ms is None:
            p.produce(topic, b"v", partition=part, on_delivery=cb)
        else:
            p.produce(topic, b"v", partition=part, on_delivery=cb, timestamp=timestamp_ms)
    assert p.flush(60) == 0
    return out


def _until(what, fn, timeout=30):
    deadline = time.time() + timeout
    while True:
        got = fn()
        if got[0]:
            return got[1]
        assert time.time() < deadline, f"{what}: {got[1]}"
        time.sleep(0.5)


def test_message_timestamp_type_default_stamps_records_with_the_append_time(cluster):
    from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME
    topic = cu.unique_topic("dyn-tstype")
    parts = 3
    _create(cluster.bootstrap, topic, parts)
    _leaders(cluster.bootstrap, topic, parts)
    old = 1_500_000_000_000  # 2017: kept as CreateTime, replaced under LogAppendTime
    got = _produce_all(cluster.bootstrap, topic, parts, timestamp_ms=old)
    assert all(r == (None, (TIMESTAMP_CREATE_TIME, old)) for r in got.values()), got
    key = "log.message.timestamp.type"
    try:
        _alter_default(cluster.bootstrap, key, "LogAppendTime")
        _wait_default_everywhere(cluster, key, "LogAppendTime")

        def stamped():
            before = int(time.time() * 1000) - 60_000
            got = _produce_all(cluster.bootstrap, topic, parts, timestamp_ms=old)
            return all(r[0] is None and r[1][0] == TIMESTAMP_LOG_APPEND_TIME and r[1][1] > before
                       for r in got.values()), got
        _until("records stamped with the broker's append time on every leader", stamped)
    finally:
        _alter_default(cluster.bootstrap, key, None)


@pytest.mark.parametrize("key,shift_ms", [("log.message.timestamp.before.max.ms", -3_600_000),
                                          ("log.message.timestamp.after.max.ms", 3_600_000)])
def test_message_timestamp_bounds_default_refuses_records_an_hour_off(cluster, key, shift_ms):
    topic = cu.unique_topic("dyn-tsbound")
    parts = 3
    _create(cluster.bootstrap, topic, parts)
    _leaders(cluster.bootstrap, topic, parts)
    old = int(time.time() * 1000) + shift_ms  # an hour ago, or an hour ahead
    assert all(r[0] is None for r in _produce_all(cluster.bootstrap, topic, parts, timestamp_ms=old).values())
    try:
        _alter_default(cluster.bootstrap, key, "60000")
        _wait_default_everywhere(cluster, key, "60000")

        def refused():
            got = {p: r[0] for p, r in _produce_all(cluster.bootstrap, topic, parts, timestamp_ms=old).items()}
            return all(c == KafkaError.INVALID_TIMESTAMP for c in got.values()), got
        _until("records an hour off refused on every leader", refused)
        # a current record is still accepted
        assert all(r[0] is None for r in _produce_all(cluster.bootstrap, topic, parts).values())
    finally:
        _alter_default(cluster.bootstrap, key, None)


def test_a_restarted_broker_keeps_the_cluster_default(cluster):
    # The cluster default lives in the metadata log: a broker that restarts
    # (or a new one) reads it from there, not from server.properties.
    key = "log.retention.ms"
    try:
        _alter_default(cluster.bootstrap, key, "86400000")
        _wait_default_everywhere(cluster, key, "86400000")
        node = cluster.nodes[1]
        node.stop()
        node.start()
        cluster.wait_brokers(3)
        deadline = time.time() + 60
        while True:
            try:
                e = _broker_entry(node.bootstrap, node.node_id, key)
                if e.value == "86400000":
                    break
            except Exception as ex:  # noqa: BLE001 - the node may still be starting
                e = ex
            assert time.time() < deadline, e
            time.sleep(0.5)
        assert e.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value, e.source
    finally:
        _alter_default(cluster.bootstrap, key, None)


def _segments(cluster, topic, partition):
    """The most `.log` segment files any node has of `topic`-`partition`."""
    return max(len(list((n.data_dir / f"{topic}-{partition}").glob("*.log"))) for n in cluster.nodes)


@pytest.mark.parametrize("key,value,rounds,size", [("log.roll.ms", "100", 4, 100),
                                                   ("log.segment.bytes", "1048576", 6, 400_000)])
def test_segment_roll_defaults_roll_segments_of_topics_without_override(cluster, key, value, rounds, size):
    """A new cluster-default `log.roll.ms` (or `log.segment.bytes`) rolls the segments
    of a topic that has no `segment.ms` (`segment.bytes`) of its own."""
    topic = cu.unique_topic("dyn-roll")
    _create(cluster.bootstrap, topic, 1)
    _leaders(cluster.bootstrap, topic, 1)
    assert _produce_each(cluster.bootstrap, topic, 1, 100) == {0: None}
    assert _segments(cluster, topic, 0) == 1
    try:
        _alter_default(cluster.bootstrap, key, value)
        _wait_default_everywhere(cluster, key, value)
        for _ in range(rounds):
            assert _produce_each(cluster.bootstrap, topic, 1, size) == {0: None}
            time.sleep(0.3)
        _until("a segment roll", lambda: (_segments(cluster, topic, 0) >= 2, _segments(cluster, topic, 0)))
    finally:
        _alter_default(cluster.bootstrap, key, None)
