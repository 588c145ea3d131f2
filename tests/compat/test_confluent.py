"""confluent-kafka (librdkafka 2.x): AdminClient, Producer and assign()-based Consumer."""

import time
import uuid

import pytest
from confluent_kafka import (TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic, OffsetSpec)

import compat_util as cu

TIMEOUT = 30


def admin(bootstrap):
    return cu.admin_client(bootstrap)


def describe_topic_configs(adm, topic):
    r = ConfigResource("topic", topic)
    return adm.describe_configs([r], request_timeout=TIMEOUT)[r].result(timeout=TIMEOUT)


def kafka_error(excinfo):
    err = excinfo.value.args[0]
    assert isinstance(err, KafkaError), excinfo.value
    return err


def new_consumer(bootstrap, **extra):
    # librdkafka insists on a group.id even for assign(); it is never used for
    # commits here (auto commit off, explicit offsets, no subscribe()).
    conf = {"bootstrap.servers": bootstrap, "group.id": f"compat-unused-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "enable.partition.eof": True, "auto.offset.reset": "error"}
    conf.update(extra)
    return Consumer(conf)


def consume_all(bootstrap, topic, partitions, expected_count, start=0, timeout=TIMEOUT, **extra):
    """assign() every partition at offset `start`, read until EOF on all of them."""
    c = new_consumer(bootstrap, **extra)
    try:
        c.assign([TopicPartition(topic, p, start) for p in range(partitions)])
        msgs, eof = [], set()
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    if len(eof) == partitions and len(msgs) >= expected_count:
                        break
                    continue
                raise AssertionError(f"consumer error: {m.error()}")
            msgs.append(m)
        else:
            raise AssertionError(f"timed out: got {len(msgs)} of {expected_count} messages, EOF on {sorted(eof)}")
        return msgs
    finally:
        c.close()


def produce(bootstrap, topic, records, *, with_timestamps=True, **conf):
    reports = []

    def cb(err, msg):
        reports.append((err, msg.partition(), msg.offset(), msg.timestamp(), msg.key()))

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, **conf})
    for r in records:
        kw = {"timestamp": r["timestamp"]} if with_timestamps else {}
        p.produce(topic, value=r["value"], key=r["key"], partition=r["partition"],
                  headers=r["headers"] or None, on_delivery=cb, **kw)
        p.poll(0)
    left = p.flush(TIMEOUT)
    assert left == 0, f"{left} messages not delivered within {TIMEOUT}s"
    return reports


def check_messages(msgs, records, partitions):
    """Every record comes back, per partition in order, byte-exact."""
    by_part = {p: [r for r in records if r["partition"] == p] for p in range(partitions)}
    got = {p: [m for m in msgs if m.partition() == p] for p in range(partitions)}
    for p in range(partitions):
        want = by_part[p]
        assert len(got[p]) == len(want), \
            f"partition {p}: got {len(got[p])} messages, want {len(want)}: offsets {[m.offset() for m in got[p]]}"
        for off, (m, r) in enumerate(zip(got[p], want)):
            ctx = f"partition {p} offset {m.offset()}"
            assert m.offset() == off, ctx
            assert m.key() == r["key"], f"{ctx}: key {cu.short(m.key())!r} != {cu.short(r['key'])!r}"
            assert m.value() == r["value"], f"{ctx}: value {cu.short(m.value())!r} != {cu.short(r['value'])!r}"
            assert (m.headers() or []) == r["headers"], f"{ctx}: headers {m.headers()!r} != {r['headers']!r}"
            assert m.timestamp() == (TIMESTAMP_CREATE_TIME, r["timestamp"]), f"{ctx}: timestamp {m.timestamp()}"


# ------------------------------------------------------------------- admin


def test_admin_create_describe_list_delete(bootstrap, broker_id, topic_name):
    adm = admin(bootstrap)
    fs = adm.create_topics([NewTopic(topic_name, num_partitions=3, replication_factor=1,
                                     config={"retention.ms": "3600000", "cleanup.policy": "compact"})],
                           operation_timeout=TIMEOUT)
    assert fs[topic_name].result(timeout=TIMEOUT) is None
    md = cu.wait_topic_ready(bootstrap, topic_name, 3)
    t = md.topics[topic_name]
    assert sorted(t.partitions) == [0, 1, 2]
    for p in t.partitions.values():
        assert p.leader == broker_id and p.replicas == [broker_id] and p.isrs == [broker_id], p

    assert topic_name in cu.topic_names(bootstrap)

    cfg = describe_topic_configs(adm, topic_name)
    assert cfg["retention.ms"].value == "3600000"
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not cfg["retention.ms"].is_default
    assert cfg["cleanup.policy"].value == "compact"
    assert cfg["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # defaults are reported too, with Kafka's default values
    for name, default in [("segment.bytes", "1073741824"), ("max.message.bytes", "1048588"),
                          ("message.timestamp.type", "CreateTime"), ("compression.type", "producer"),
                          ("segment.ms", "604800000")]:
        assert name in cfg, f"{name} missing from DescribeConfigs: {sorted(cfg)}"
        assert cfg[name].value == default, (name, cfg[name].value)
        assert cfg[name].source == ConfigSource.DEFAULT_CONFIG.value, (name, cfg[name].source)
        assert cfg[name].is_default, name

    # errors
    with pytest.raises(KafkaException) as ei:
        adm.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(timeout=TIMEOUT)
    assert kafka_error(ei).code() == KafkaError.TOPIC_ALREADY_EXISTS, kafka_error(ei)

    bad = topic_name + "-bad"
    with pytest.raises(KafkaException) as ei:
        adm.create_topics([NewTopic(bad, 1, 1, config={"retention.ms": "abc"})])[bad].result(timeout=TIMEOUT)
    assert kafka_error(ei).code() == KafkaError.INVALID_CONFIG, kafka_error(ei)
    with pytest.raises(KafkaException) as ei:
        adm.create_topics([NewTopic(bad, 1, 1, config={"no.such.config": "1"})])[bad].result(timeout=TIMEOUT)
    assert kafka_error(ei).code() == KafkaError.INVALID_CONFIG, kafka_error(ei)
    with pytest.raises(KafkaException) as ei:
        adm.create_topics([NewTopic(bad, 0, 1)])[bad].result(timeout=TIMEOUT)
    assert kafka_error(ei).code() == KafkaError.INVALID_PARTITIONS, kafka_error(ei)
    assert bad not in cu.topic_names(bootstrap)

    # create_partitions 3 -> 5; shrinking is refused
    assert adm.create_partitions([NewPartitions(topic_name, 5)])[topic_name].result(timeout=TIMEOUT) is None
    cu.wait_topic_ready(bootstrap, topic_name, 5)
    with pytest.raises(KafkaException) as ei:
        adm.create_partitions([NewPartitions(topic_name, 2)])[topic_name].result(timeout=TIMEOUT)
    assert kafka_error(ei).code() == KafkaError.INVALID_PARTITIONS, kafka_error(ei)

    # delete
    assert adm.delete_topics([topic_name], operation_timeout=TIMEOUT)[topic_name].result(timeout=TIMEOUT) is None
    deadline = time.time() + 15
    while topic_name in cu.topic_names(bootstrap):
        assert time.time() < deadline, "deleted topic still listed after 15s"
        time.sleep(0.2)
    missing = topic_name + "-missing"
    with pytest.raises(KafkaException) as ei:
        adm.delete_topics([missing])[missing].result(timeout=TIMEOUT)
    assert kafka_error(ei).code() == KafkaError.UNKNOWN_TOPIC_OR_PART, kafka_error(ei)


def test_admin_alter_configs(bootstrap, topic_name):
    adm = admin(bootstrap)
    cu.create_topic(bootstrap, topic_name, 1, {"retention.ms": "3600000", "cleanup.policy": "compact"})

    # legacy AlterConfigs replaces the whole set of dynamic topic configs
    r = ConfigResource("topic", topic_name, set_config={"retention.ms": "7200000"})
    assert adm.alter_configs([r])[r].result(timeout=TIMEOUT) is None
    cfg = describe_topic_configs(adm, topic_name)
    assert cfg["retention.ms"].value == "7200000"
    assert cfg["cleanup.policy"].value == "delete", "AlterConfigs must reset configs it does not name"
    assert cfg["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value

    # incremental: APPEND to a list config, DELETE (back to default), SET
    r = ConfigResource("topic", topic_name, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("segment.ms", "600000", incremental_operation=AlterConfigOpType.SET),
    ])
    assert adm.incremental_alter_configs([r])[r].result(timeout=TIMEOUT) is None
    cfg = describe_topic_configs(adm, topic_name)
    assert cfg["cleanup.policy"].value == "delete,compact"
    assert cfg["retention.ms"].value == "604800000"
    assert cfg["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert cfg["segment.ms"].value == "600000"
    assert cfg["segment.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    # SUBTRACT from the list
    r = ConfigResource("topic", topic_name, incremental_configs=[
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)])
    adm.incremental_alter_configs([r])[r].result(timeout=TIMEOUT)
    assert describe_topic_configs(adm, topic_name)["cleanup.policy"].value == "compact"

    # an invalid value is refused and changes nothing
    r = ConfigResource("topic", topic_name, incremental_configs=[
        ConfigEntry("segment.ms", "not-a-number", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as ei:
        adm.incremental_alter_configs([r])[r].result(timeout=TIMEOUT)
    assert kafka_error(ei).code() == KafkaError.INVALID_CONFIG, kafka_error(ei)
    assert describe_topic_configs(adm, topic_name)["segment.ms"].value == "600000"

    # validate_only does not apply
    r = ConfigResource("topic", topic_name, incremental_configs=[
        ConfigEntry("segment.ms", "700000", incremental_operation=AlterConfigOpType.SET)])
    adm.incremental_alter_configs([r], validate_only=True)[r].result(timeout=TIMEOUT)
    assert describe_topic_configs(adm, topic_name)["segment.ms"].value == "600000"


def test_admin_describe_broker_configs(bootstrap, broker_id):
    adm = admin(bootstrap)
    r = ConfigResource("broker", str(broker_id))
    cfg = adm.describe_configs([r], request_timeout=TIMEOUT)[r].result(timeout=TIMEOUT)
    assert cfg["node.id"].value == str(broker_id), cfg.get("node.id")
    assert cfg["advertised.listeners"].value == f"PLAINTEXT://{bootstrap}", cfg.get("advertised.listeners")
    for name, default in [("log.retention.hours", "168"), ("message.max.bytes", "1048588"),
                          ("log.segment.bytes", "1073741824")]:
        assert name in cfg, f"{name} missing; got {len(cfg)} entries"
        assert cfg[name].value == default, (name, cfg[name].value)


# ------------------------------------------------------------------- produce / consume


@pytest.mark.parametrize("acks", ["all", "1"])
@pytest.mark.parametrize("codec", cu.COMPRESSIONS)
def test_produce_consume(bootstrap, topic_name, acks, codec):
    cu.create_topic(bootstrap, topic_name, partitions=2)
    records = cu.make_records(60, partitions=2)
    reports = produce(bootstrap, topic_name, records, acks=acks, **{"compression.type": codec})
    errors = [r for r in reports if r[0] is not None]
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(reports) == len(records)
    for p in range(2):
        offs = [r[2] for r in reports if r[1] == p]
        assert offs == list(range(30)), f"partition {p} delivery offsets {offs}"
    # the delivery report carries the CreateTime we set
    assert sorted(r[3][1] for r in reports) == sorted(r["timestamp"] for r in records)

    msgs = consume_all(bootstrap, topic_name, 2, len(records))
    check_messages(msgs, records, 2)

    # fetching from the middle of the log
    mid = consume_all(bootstrap, topic_name, 2, 2 * 13, start=17)
    assert sorted((m.partition(), m.offset()) for m in mid) == \
        [(p, o) for p in range(2) for o in range(17, 30)]


def test_produce_without_timestamps_and_log_append_time(bootstrap, topic_name):
    """Producer-chosen CreateTime vs. a topic with message.timestamp.type=LogAppendTime."""
    cu.create_topic(bootstrap, topic_name, partitions=1,
                    config={"message.timestamp.type": "LogAppendTime"})
    old = cu.now_ms() - 3_000_000
    records = [{"key": b"k%d" % i, "value": b"v%d" % i, "headers": [], "timestamp": old + i,
                "partition": 0} for i in range(5)]
    t0 = cu.now_ms()
    reports = produce(bootstrap, topic_name, records, acks="all", **{"compression.type": "lz4"})
    t1 = cu.now_ms()
    assert all(r[0] is None for r in reports), reports
    msgs = consume_all(bootstrap, topic_name, 1, 5)
    assert [m.value() for m in msgs] == [r["value"] for r in records]
    for m in msgs:
        ttype, ts = m.timestamp()
        assert ttype == TIMESTAMP_LOG_APPEND_TIME, m.timestamp()
        assert t0 - 1000 <= ts <= t1 + 1000, (ts, t0, t1)
    # the delivery report also carries the broker's LogAppendTime
    for r in reports:
        assert r[3][0] == TIMESTAMP_LOG_APPEND_TIME and t0 - 1000 <= r[3][1] <= t1 + 1000, r


def test_message_too_large(bootstrap, topic_name):
    cu.create_topic(bootstrap, topic_name, partitions=1, config={"max.message.bytes": "200000"})
    conf = {"acks": "all", "message.max.bytes": 2_000_000, "batch.size": 1_000_000, "retries": 0}

    def one(size):
        rec = {"key": None, "value": b"x" * size, "headers": [], "timestamp": cu.now_ms(), "partition": 0}
        reports = produce(bootstrap, topic_name, [rec], **conf)
        assert len(reports) == 1, reports
        return reports[0]

    ok = one(150_000)
    assert ok[0] is None and ok[2] == 0, ok
    big = one(300_000)
    assert big[0] is not None and big[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, big
    ok = one(100)
    assert ok[0] is None and ok[2] == 1, ok


def test_list_offsets_and_offsets_for_times(bootstrap, topic_name):
    cu.create_topic(bootstrap, topic_name, partitions=1)
    base = cu.now_ms() - 100_000
    deltas = [0, 1000, 2000, 1500, 4000, 5000, 9999, 6000, 7000, 8000]  # out of order, max at offset 6
    records = [{"key": None, "value": b"v%d" % i, "headers": [], "timestamp": base + d, "partition": 0}
               for i, d in enumerate(deltas)]
    reports = produce(bootstrap, topic_name, records, acks="all", **{"compression.type": "zstd",
                                                                    "linger.ms": 100})
    assert all(r[0] is None for r in reports), reports
    tp = TopicPartition(topic_name, 0)
    adm = admin(bootstrap)

    def lo(spec):
        return adm.list_offsets({tp: spec}, request_timeout=TIMEOUT)[tp].result(timeout=TIMEOUT)

    assert lo(OffsetSpec.earliest()).offset == 0
    assert lo(OffsetSpec.latest()).offset == 10
    r = lo(OffsetSpec.max_timestamp())
    assert (r.offset, r.timestamp) == (6, base + 9999), (r.offset, r.timestamp)
    # first offset whose timestamp is >= the target
    for target, want_off, want_ts in [(base - 5, 0, base), (base + 1200, 2, base + 2000),
                                      (base + 1600, 2, base + 2000), (base + 8500, 6, base + 9999),
                                      (base + 2000, 2, base + 2000)]:
        r = lo(OffsetSpec.for_timestamp(target))
        assert (r.offset, r.timestamp) == (want_off, want_ts), (target - base, r.offset, r.timestamp)
    assert lo(OffsetSpec.for_timestamp(base + 100_000)).offset == -1

    c = new_consumer(bootstrap)
    try:
        assert c.get_watermark_offsets(tp, timeout=TIMEOUT) == (0, 10)
        res = c.offsets_for_times([TopicPartition(topic_name, 0, base + 1200)], timeout=TIMEOUT)
        assert [(x.partition, x.offset) for x in res] == [(0, 2)], res
        res = c.offsets_for_times([TopicPartition(topic_name, 0, base + 100_000)], timeout=TIMEOUT)
        assert [(x.partition, x.offset) for x in res] == [(0, -1)], res
    finally:
        c.close()
