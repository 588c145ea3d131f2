"""KIP-951 leader discovery on three nodes.

A Produce (v10+) or Fetch (v12+) that reaches a broker which does not lead the
partition is answered NOT_LEADER_OR_FOLLOWER with the partition's current
leader and leader epoch (`CurrentLeader`), and the response lists that
leader's endpoint (`NodeEndpoints`: Produce v10+, Fetch v16+). Clients (the
Java client since 3.7, librdkafka since 2.4) then retry on the new leader at
once instead of refreshing their metadata first, which is what keeps produce
latency low while a rolling restart moves leaders.

Raw requests (kafka-python 3's message classes, framed by tests/groups/rawproto)
so the exact fields are seen. Passes on Apache Kafka 4.1.1 with the same
layout (CLUSTER_APACHE_KAFKA=1). Before, Runnel sent neither field.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from pathlib import Path

import faults_util as fu

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "groups"))
import rawproto as rp  # noqa: E402

from kafka.protocol.consumer import FetchRequest  # noqa: E402
from kafka.protocol.metadata import MetadataRequest  # noqa: E402
from kafka.protocol.producer import ProduceRequest  # noqa: E402
from kafka.record.default_records import DefaultRecordBatchBuilder  # noqa: E402

NOT_LEADER_OR_FOLLOWER = 6


def _batch():
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 16)
    b.append(0, timestamp=None, key=b"k", value=b"v", headers=[])
    return bytes(b.build())


def _metadata(bootstrap, topic):
    """(topic id, {partition: (leader, leader epoch, replicas)}, {node id: (host, port)})."""
    with rp.RawConn(bootstrap, client_id="leader-discovery") as c:
        r = c.send(MetadataRequest, 12, topics=[MetadataRequest[12].MetadataRequestTopic(
            topic_id=None, name=topic)], allow_auto_topic_creation=False,
            include_topic_authorized_operations=False)
    t = r.topics[0]
    assert t.error_code == 0, t
    parts = {p.partition_index: (p.leader_id, p.leader_epoch, list(p.replica_nodes)) for p in t.partitions}
    brokers = {b.node_id: (b.host, b.port) for b in r.brokers}
    return t.topic_id, parts, brokers


def _produce_on(c, topic, version):
    tpd = ProduceRequest[version].TopicProduceData
    return c.send(ProduceRequest, version, transactional_id=None, acks=1, timeout_ms=30000,
                  topic_data=[tpd(name=topic, partition_data=[
                      tpd.PartitionProduceData(index=0, records=_batch())])])


def _produce(address, topic, version):
    with rp.RawConn(address, client_id="leader-discovery") as c:
        return _produce_on(c, topic, version)


def _fetch(address, topic_id, version=16):
    req = FetchRequest[version]
    ft = req.FetchTopic
    with rp.RawConn(address, client_id="leader-discovery") as c:
        return c.send(FetchRequest, version, replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
                      isolation_level=0, session_id=0, session_epoch=-1,
                      topics=[ft(topic_id=topic_id, partitions=[ft.FetchPartition(
                          partition=0, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1,
                          log_start_offset=-1, partition_max_bytes=1 << 20)])],
                      forgotten_topics_data=[], rack_id="")


def _node_address(cluster, node_id):
    return fu.node(cluster, node_id).bootstrap


def test_produce_to_a_follower_names_the_leader_and_its_endpoint(cluster):
    topic = f"kip951-{uuid.uuid4().hex[:6]}"
    fu.create_replicated_topic(cluster, topic, 1, rf=3, min_isr=1)
    _, parts, brokers = _metadata(cluster.nodes[0].bootstrap, topic)
    leader, epoch, replicas = parts[0]
    follower = next(r for r in replicas if r != leader)
    r = _produce(_node_address(cluster, follower), topic, 11)
    p = r.responses[0].partition_responses[0]
    assert p.error_code == NOT_LEADER_OR_FOLLOWER, p
    assert (p.current_leader.leader_id, p.current_leader.leader_epoch) == (leader, epoch), p
    eps = {e.node_id: (e.host, e.port) for e in r.node_endpoints}
    assert eps == {leader: brokers[leader]}, (eps, brokers)
    # On the leader it is written.
    ok = _produce(_node_address(cluster, leader), topic, 11)
    assert ok.responses[0].partition_responses[0].error_code == 0, ok
    # Produce v9 has no such fields: the error alone.
    old = _produce(_node_address(cluster, follower), topic, 9)
    assert old.responses[0].partition_responses[0].error_code == NOT_LEADER_OR_FOLLOWER, old


def test_fetch_from_a_broker_without_the_partition_names_the_leader(cluster):
    topic = f"kip951f-{uuid.uuid4().hex[:6]}"
    fu.create_replicated_topic(cluster, topic, 1, rf=1, min_isr=1)
    topic_id, parts, brokers = _metadata(cluster.nodes[0].bootstrap, topic)
    leader, epoch, replicas = parts[0]
    other = next(n.node_id for n in cluster.nodes if n.node_id not in replicas)
    r = _fetch(_node_address(cluster, other), topic_id)
    p = r.responses[0].partitions[0]
    assert p.error_code == NOT_LEADER_OR_FOLLOWER, p
    assert (p.current_leader.leader_id, p.current_leader.leader_epoch) == (leader, epoch), p
    eps = {e.node_id: (e.host, e.port) for e in r.node_endpoints}
    assert eps == {leader: brokers[leader]}, (eps, brokers)
    ok = _fetch(_node_address(cluster, leader), topic_id)
    assert ok.responses[0].partitions[0].error_code == 0, ok
    assert not ok.node_endpoints, ok


def test_a_broker_in_controlled_shutdown_names_the_new_leader_before_it_leaves(cluster):
    """A leader that is stopped (SIGTERM: controlled shutdown) gives its
    leadership away and then keeps answering, NOT_LEADER_OR_FOLLOWER with the
    new leader, until every active broker has applied that change (Kafka's
    controlled-shutdown offset): clients that were producing to it move to
    the new leader on that answer. Before, the broker closed its connections
    a millisecond after the move, so producers only learned of the new leader
    from a later metadata refresh (hundreds of ms of stalled acks=all
    produce in a rolling restart, bench/roll.py)."""
    topic = f"kip951s-{uuid.uuid4().hex[:6]}"
    fu.create_replicated_topic(cluster, topic, 1, rf=3, min_isr=1)
    fu.wait_full_isr(cluster, topic, 1)
    _, parts, _ = _metadata(cluster.nodes[0].bootstrap, topic)
    leader, epoch, replicas = parts[0]
    victim = fu.node(cluster, leader)
    answers = []  # (error code, current leader id, current leader epoch)
    closed = threading.Event()

    def probe():
        try:
            with rp.RawConn(victim.bootstrap, client_id="shutdown-probe", timeout=10) as c:
                while True:
                    r = _produce_on(c, topic, 11)
                    p = r.responses[0].partition_responses[0]
                    cl = p.current_leader  # a tagged field: absent (None) on success
                    answers.append((p.error_code, cl.leader_id if cl else -1, cl.leader_epoch if cl else -1))
                    time.sleep(0.005)
        except (OSError, ConnectionError):
            closed.set()

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    fu.wait_for(lambda: answers, 30, "the probe's first produce")
    victim.stop()
    t.join(30)
    assert closed.is_set(), "the probe's connection outlived the broker"
    moved = [a for a in answers if a[0] == NOT_LEADER_OR_FOLLOWER]
    # Answered for a while (at least until every active broker heartbeats),
    # not once by chance in the instant of the move.
    assert len(moved) >= 3, f"the stopping leader answered NOT_LEADER_OR_FOLLOWER {len(moved)} times: {answers[-5:]}"
    new_leader, new_epoch = moved[-1][1], moved[-1][2]
    assert new_leader in replicas and new_leader != leader, moved[-3:]
    assert new_epoch > epoch, moved[-3:]
    # Bring the node back for the next tests.
    victim.start()
    cluster.wait_brokers(3, via=victim)
    fu.wait_full_isr(cluster, topic, 1)
