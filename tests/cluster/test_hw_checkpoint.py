"""The high-watermark checkpoint (issue 9): every broker writes each hosted
replica's high watermark to `replication-offset-checkpoint` in its log
directory, in Kafka's checkpoint format (a version line 0, a count, then
`topic partition offset` per line), every
`replica.high.watermark.checkpoint.interval.ms` (5 s) and at shutdown; a
restarted replica starts from it (bounded by its log end) rather than from
its log start. Passes on three Apache Kafka 4.1.1 nodes too
(CLUSTER_APACHE_KAFKA=1).

What a restart does with the file is checked in Rust
(`replication::replica_manager::tests::a_restarted_replica_starts_at_the_checkpointed_high_watermark`):
through clients it cannot be seen on Kafka, since a restarted broker comes
back as a follower and takes the leader's high watermark with its first
fetch.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import compat_util as cu

CHECKPOINT = "replication-offset-checkpoint"


def read_checkpoint(path):
    """{(topic, partition): offset} of a Kafka checkpoint file, or None when
    it is absent or empty (Kafka creates it empty at start-up); AssertionError
    when it is malformed."""
    if not path.exists():
        return None
    lines = path.read_text().splitlines()
    if not lines:
        return None
    assert lines[:1] == ["0"], f"{path}: version line {lines[:1]}"
    count = int(lines[1])
    assert len(lines) >= 2 + count, f"{path}: {count} entries announced, {len(lines) - 2} present"
    out = {}
    for line in lines[2:2 + count]:
        topic, part, off = line.split(" ")
        out[(topic, int(part))] = int(off)
    return out


def _wait(cond, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = cond()
        if last is True:
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def _produce(bootstrap, topic, counts, tag):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "message.timeout.ms": 60000})
    errs = []
    for part, n in counts.items():
        for i in range(n):
            p.produce(topic, f"{tag}-{part}-{i}".encode(), partition=part,
                      on_delivery=lambda e, m: errs.append(e) if e else None)
    assert p.flush(90) == 0
    assert not errs, errs[:3]


def _high_watermarks(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw-checkpoint-probe"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15, cached=False)[1]
                for p in range(partitions)}
    finally:
        c.close()


def _checkpoints_hold(cluster, topic, hws, nodes=None):
    def cond():
        seen = {}
        for n in nodes or cluster.nodes:
            cp = read_checkpoint(n.data_dir / CHECKPOINT) or {}
            got = {p: cp.get((topic, p)) for p in hws}
            if got != hws:
                seen[n.node_id] = got
        return True if not seen else seen
    return cond


def _topic(cluster, name, partitions):
    adm = AdminClient({"bootstrap.servers": cluster.bootstrap})
    adm.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=3,
                                config={"min.insync.replicas": "2"})],
                      operation_timeout=30, request_timeout=30)[name].result(timeout=60)
    cu.wait_topic_ready(cluster.bootstrap, name, partitions)


def test_every_replica_checkpoints_its_high_watermark(cluster):
    topic = cu.unique_topic("hw-checkpoint")
    _topic(cluster, topic, 2)
    _produce(cluster.bootstrap, topic, {0: 30, 1: 12}, "a")
    hws = _high_watermarks(cluster.bootstrap, topic, 2)
    assert hws == {0: 30, 1: 12}, hws
    # Leaders and followers alike, within the 5 s interval (plus a fetch round).
    _wait(_checkpoints_hold(cluster, topic, hws), 20, f"every node's {CHECKPOINT} to hold {hws}")


def test_a_stopped_node_checkpoints_at_shutdown_and_catches_up_after_restart(cluster):
    topic = cu.unique_topic("hw-checkpoint-restart")
    _topic(cluster, topic, 1)
    _produce(cluster.bootstrap, topic, {0: 20}, "a")
    hws = _high_watermarks(cluster.bootstrap, topic, 1)
    _wait(_checkpoints_hold(cluster, topic, hws), 20, f"every node's {CHECKPOINT} to hold {hws}")
    victim = cluster.nodes[-1]
    victim.stop()   # SIGTERM: a clean shutdown
    assert (read_checkpoint(victim.data_dir / CHECKPOINT) or {}).get((topic, 0)) == 20
    others = [n for n in cluster.nodes if n is not victim]
    bs = ",".join(n.bootstrap for n in others)
    _produce(bs, topic, {0: 10}, "b")
    assert _high_watermarks(bs, topic, 1) == {0: 30}
    # The stopped node's file still holds what it had; after the restart it
    # catches up and checkpoints the new high watermark.
    assert (read_checkpoint(victim.data_dir / CHECKPOINT) or {}).get((topic, 0)) == 20
    victim.start()
    cluster.wait_brokers(3, via=victim)
    _wait(_checkpoints_hold(cluster, topic, {0: 30}), 60, f"every node's {CHECKPOINT} to hold 30")
