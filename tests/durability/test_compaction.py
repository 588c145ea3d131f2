"""Log compaction (cleanup.policy=compact), checked record by record.

Every test writes keys with many updates and tombstones to a compacted topic
with small segments and a low `min.cleanable.dirty.ratio`, then waits > segment.ms
and writes one sentinel record: it rolls the active segment, so that every test
record lies in segments the cleaner may clean (Kafka never cleans the active
segment). Once cleaned, what a consumer reads from offset 0 is deterministic:
the latest record of every key at its original offset (tombstones included:
`delete.retention.ms` keeps them a day), then the sentinel. The model is built
from the producer's acknowledged offsets; Apache Kafka 4.1.1 gives exactly the
same (offset, key, value) list (DURABILITY_APACHE_KAFKA=1), so the comparison is
record by record with Kafka.

The crash tests stop a cleaning at each step of its swap. On Runnel the
test-only environment variable RUNNEL_TEST_CLEANER_FAILPOINT makes the broker
abort at that step (`cleaned`: cleaned segment written; `swap`: renamed `.swap`;
`deleted`: old segments removed, `.swap` not yet renamed; `swapped`: done, the
cleaner checkpoint not yet written). Kafka has no failpoints: it is killed -9 at
several delays after the sentinel instead. After the restart the log must be
whole (every record read is one produced at that offset, every key's latest
record is there, offsets ascend) and the cleaner must then finish the job.
"""

from __future__ import annotations

import os
import re
import time

import pytest

import compat_util as cu
import dur_util as du

SEGMENT_MS = 1000
CLEAN_TIMEOUT = 90
BROKER = {"log_cleaner_backoff_ms": 200}
TOPIC = {"cleanup.policy": "compact", "segment.ms": str(SEGMENT_MS),
         "internal.segment.bytes": "8192", "min.cleanable.dirty.ratio": "0.01"}
APACHE = os.environ.get("DURABILITY_APACHE_KAFKA") == "1"


def produce_rounds(b, topic, rounds):
    """Produce each round ([(key, value|None)]), then the sentinel after
    segment.ms; returns (all records [(offset, key, value)], expected)."""
    produced = []
    for r, items in enumerate(rounds):
        if r:
            time.sleep(SEGMENT_MS / 1000 + 0.3)
        acks = du.produce_sync(b.bootstrap, topic, [(0, k, v) for k, v in items],
                               **{"batch.num.messages": 20})
        produced += [(o, k, v) for (_, o, _), (k, v) in zip(acks, items)]
    time.sleep(SEGMENT_MS / 1000 + 0.3)
    (_, o, _), = du.produce_sync(b.bootstrap, topic, [(0, b"zz-sentinel", b"end")])
    produced.append((o, b"zz-sentinel", b"end"))
    offsets = [p[0] for p in produced]
    assert offsets == list(range(len(produced))), "offsets assigned in order"
    latest = {}
    for o, k, v in produced:
        latest[k] = (o, k, v)
    return produced, sorted(latest.values())


def read_all(b, topic, end):
    return du.read_partitions(b.bootstrap, topic, {0: end})[0]


def wait_cleaned(b, topic, end, expected, timeout=CLEAN_TIMEOUT):
    def cond():
        got = read_all(b, topic, end)
        return got == expected, (len(got), got[:5])
    du.wait_for(cond, timeout, f"log of {topic} compacted to {len(expected)} records")
    return read_all(b, topic, end)


def check_whole(got, produced, expected):
    """Every record read was produced at that offset; every key's latest is there."""
    at = {o: (o, k, v) for o, k, v in produced}
    offsets = [g[0] for g in got]
    assert offsets == sorted(set(offsets)), "offsets ascend without duplicates"
    strays = [g for g in got if at.get(g[0]) != g]
    assert not strays, f"records never produced at those offsets: {strays[:5]}"
    missing = [e for e in expected if e not in got]
    assert not missing, f"latest records lost: {missing[:5]}"


def updates(n, keys, tag, tombstones=()):
    items = [(b"k%03d" % (i % keys), b"%s-%05d" % (tag, i) + b"v" * 80) for i in range(n)]
    items += [(b"k%03d" % k, None) for k in tombstones]
    return items


def test_compaction_keeps_the_latest_record_of_every_key(make_broker, topic_name):
    b = make_broker(**BROKER)
    cu.create_topic(b.bootstrap, topic_name, 1, config=TOPIC)
    rounds = [
        updates(400, 40, b"a"),
        updates(400, 40, b"b", tombstones=range(0, 5)),
        # k000 comes back after its tombstone; k005..k009 get tombstones last
        [(b"k000", b"back")] + updates(200, 20, b"c", tombstones=range(5, 10)),
    ]
    produced, expected = produce_rounds(b, topic_name, rounds)
    end = len(produced)
    assert len(expected) == 41 and end == 1012
    got = wait_cleaned(b, topic_name, end, expected)
    assert [v for _, k, v in got if k == b"k007"] == [None], "tombstone kept (delete.retention.ms)"
    # the cleaned log reads the same after a restart
    b.sigterm()
    b.start()
    cu.wait_topic_ready(b.bootstrap, topic_name, 1)
    assert du.watermarks(b.bootstrap, topic_name, [0]) == {0: (0, end)}
    assert read_all(b, topic_name, end) == expected
    # a consumer starting inside a removed range gets the next surviving record
    gap = next(o for o in range(end) if o not in {e[0] for e in expected})
    after = [e for e in expected if e[0] > gap]
    assert du.read_partitions(b.bootstrap, topic_name, {0: end}, start=gap)[0] == after


# seconds after the sentinel (the cleaner may start about 4.5 s after it)
KAFKA_KILL_DELAYS = {"cleaned": 4.0, "swap": 4.7, "deleted": 5.5, "swapped": None}


@pytest.mark.parametrize("step", ["cleaned", "swap", "deleted", "swapped"])
def test_kill9_at_each_step_of_a_cleaning_leaves_a_whole_log(make_broker, topic_name, step,
                                                             monkeypatch):
    if not APACHE:
        monkeypatch.setenv("RUNNEL_TEST_CLEANER_FAILPOINT", step)
    b = make_broker(**BROKER)
    # min.compaction.lag.ms holds the cleaner off until everything, sentinel
    # included, is written (the failpoint must not hit a producer).
    cu.create_topic(b.bootstrap, topic_name, 1, config={**TOPIC, "min.compaction.lag.ms": "6000"})
    t0 = time.time()
    produced, expected = produce_rounds(b, topic_name, [updates(600, 30, b"a", tombstones=(1, 2))])
    assert time.time() - t0 < 5, "written within min.compaction.lag.ms"
    end = len(produced)
    if APACHE:
        delay = KAFKA_KILL_DELAYS[step]
        if delay is None:
            wait_cleaned(b, topic_name, end, expected)
        else:
            time.sleep(delay)
        b.kill9()
    else:
        du.wait_for(lambda: (not b.running(), b.running()), CLEAN_TIMEOUT,
                    f"broker aborted at failpoint {step}")
        monkeypatch.delenv("RUNNEL_TEST_CLEANER_FAILPOINT")
    pdir = du.partition_dir(b.data, topic_name, 0)
    left = sorted(p.name for p in pdir.iterdir() if p.name.endswith((".cleaned", ".swap")))
    print(f"after the kill at {step}: {left}")
    if not APACHE and step in ("cleaned", "swap", "deleted"):
        assert left, f"the failpoint {step} left no cleaning in progress"
    b.start()
    cu.wait_topic_ready(b.bootstrap, topic_name, 1)
    assert du.watermarks(b.bootstrap, topic_name, [0])[0][1] == end
    check_whole(read_all(b, topic_name, end), produced, expected)
    wait_cleaned(b, topic_name, end, expected)
    left = [p.name for p in pdir.iterdir() if p.name.endswith((".cleaned", ".swap"))]
    assert not left, left


def offsets_topic_records(b, end):
    """(offset, key, value) of __consumer_offsets-0 from its start up to `end`."""
    start = du.watermarks(b.bootstrap, "__consumer_offsets", [0])[0][0]
    return du.read_partitions(b.bootstrap, "__consumer_offsets", {0: end}, start=start)[0]


def test_consumer_offsets_is_compacted_and_reloads_live_offsets_only(make_broker, topic_name):
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    b = make_broker(offsets_topic_num_partitions=1, offsets_topic_replication_factor=1, **BROKER)
    cu.create_topic(b.bootstrap, topic_name, 1)
    groups = [f"{topic_name}-g{i}" for i in range(3)]
    consumers = {g: du.new_consumer(b.bootstrap, **{"group.id": g}) for g in groups}

    last = {}

    def commit(g, offset):
        consumers[g].commit(offsets=[TopicPartition(topic_name, 0, offset)], asynchronous=False)
        last[g] = offset

    commit(groups[0], 0)  # creates __consumer_offsets
    adm = cu.admin_client(b.bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, "__consumer_offsets",
                         incremental_configs=[
                             ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                             for k, v in {"segment.ms": str(SEGMENT_MS),
                                          "internal.segment.bytes": "16384",
                                          "min.cleanable.dirty.ratio": "0.01"}.items()])
    for f in adm.incremental_alter_configs([res]).values():
        f.result(timeout=30)
    # No client may retry against the port while the broker is down (a
    # reconnecting client on the ephemeral range can connect to itself and
    # hold the port the restart needs).
    del adm, f
    n = 1500
    for i in range(1, n + 1):
        commit(groups[i % len(groups)], i)
    time.sleep(SEGMENT_MS / 1000 + 0.3)
    commit(groups[0], n + 1)  # rolls: everything before it is cleanable
    for c in consumers.values():
        c.close()
    end = du.watermarks(b.bootstrap, "__consumer_offsets", [0])[0][1]
    assert end > n, end

    def compacted():
        recs = offsets_topic_records(b, end)
        return len(recs) <= 2 * len(groups) + 2, len(recs)
    du.wait_for(compacted, CLEAN_TIMEOUT, "__consumer_offsets compacted to the live offsets")
    print(f"__consumer_offsets: {end} offsets, {len(offsets_topic_records(b, end))} records after cleaning")
    b.kill9()
    t0 = time.time()
    b.start()
    for g, want in last.items():
        c = du.new_consumer(b.bootstrap, **{"group.id": g})
        try:
            deadline = time.time() + 30
            while True:
                try:
                    got = c.committed([TopicPartition(topic_name, 0)], timeout=10)[0].offset
                    break
                except Exception as e:  # noqa: BLE001 - coordinator loading: retried
                    if time.time() > deadline:
                        raise
                    print(f"committed({g}): {e}, retrying")
                    time.sleep(0.2)
            assert got == want, (g, got, want)
        finally:
            c.close()
    print(f"restart to committed offsets served: {time.time() - t0:.2f}s")
    if b.kind == "runnel":
        text = re.sub(r"\x1b\[[0-9;]*m", "",
                      "\n".join(p.read_text(errors="replace") for p in b.logs if p.exists()))
        loads = [ln for ln in text.splitlines() if "loaded __consumer_offsets partition" in ln]
        assert loads, "no load of __consumer_offsets logged"
        replayed = int(loads[-1].split("records=")[1].split()[0])
        assert replayed <= 2 * len(groups) + 2, loads[-1]
