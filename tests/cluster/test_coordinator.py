"""The group coordinator on a three-node cluster (issue 9): `__consumer_offsets`
gets `offsets.topic.replication.factor` replicas (3 here), the coordinator
follows the leadership of the group's offsets partition, and a commit is
acknowledged only once it is replicated.

- FindCoordinator while fewer brokers are registered than the offsets
  topic's replication factor: COORDINATOR_NOT_AVAILABLE and no topic
  (Kafka's controller refuses the creation); once the third broker registers
  the topic is created with three replicas and a coordinator is found.
- kill -9 of the coordinator while a consumer group member reads and commits:
  the group moves to another broker, every acknowledged commit is still
  there, the member carries on, and a new member resumes exactly at the
  committed offsets; `kafka-consumer-groups --describe` works before and
  after.

Passes on three Apache Kafka 4.1.1 nodes too (CLUSTER_APACHE_KAFKA=1).
"""

from __future__ import annotations

import re
import sys
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

import compat_util as cu
from conftest import HERE, Cluster, managed
from faults_util import create_replicated_topic, live_bootstrap, log, node, wait_for

sys.path.insert(0, str(HERE.parent / "groups"))
import rawproto as rp  # noqa: E402

OFFSETS_PARTITIONS = 3
PROPS = {
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": str(OFFSETS_PARTITIONS),
}
PARTITIONS = 3
PER_PARTITION = 100


@pytest.fixture(scope="module")
def ccluster(request):
    request.module._cluster_failed = False
    yield from managed(request, lambda: Cluster(3, props=PROPS), kill=True)


def _admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def _find_coordinator(address, group):
    """One FindCoordinator v4 through `address`: (error code, node id)."""
    with rp.RawConn(address, timeout=30) as c:
        r = c.send(rp.FindCoordinatorRequest, 4, key_type=0, coordinator_keys=[group])
    co = r.coordinators[0]
    return co.error_code, co.node_id


def _offsets_topic(bootstrap):
    md = _admin(bootstrap).list_topics(timeout=10)
    return md.topics.get("__consumer_offsets")


@pytest.fixture
def partial_cluster(request):
    """Three voters of which only nodes 1 and 2 are started: the third
    broker has never registered."""
    def start_two(c):
        for n in c.nodes[:2]:
            n.start()
        c.wait_brokers(2)

    request.module._cluster_failed = False
    yield from managed(request, lambda: Cluster(3, props=PROPS), start=start_two, kill=True)


def test_find_coordinator_waits_for_enough_brokers_for_the_offsets_topic(partial_cluster):
    """Kafka never caps the offsets topic's replication factor at the brokers
    present: with two of three brokers registered, FindCoordinator answers
    COORDINATOR_NOT_AVAILABLE (the controller refuses RF=3) and nothing is
    created; once the third registers, the topic gets three replicas.

    (Kafka counts registered brokers, fenced ones included: it places
    replicas on a fenced broker when the unfenced ones are too few. So the
    third broker here has never started, rather than been killed.)"""
    c = partial_cluster
    live = c.nodes[:2]
    assert _offsets_topic(live[0].bootstrap) is None, "the offsets topic exists before any group use"
    group = f"fc-{uuid.uuid4().hex[:8]}"
    codes = set()
    deadline = time.time() + 6
    while time.time() < deadline:
        for n in live:
            code, node_id = _find_coordinator(n.bootstrap, group)
            codes.add(code)
            assert node_id == -1 or code == 0
        time.sleep(0.5)
    assert codes == {rp.COORDINATOR_NOT_AVAILABLE}, [rp.err_name(c) for c in codes]
    assert _offsets_topic(live[0].bootstrap) is None, "offsets topic created with fewer replicas"

    c.nodes[2].start()
    c.wait_brokers(3)

    def found():
        code, node_id = _find_coordinator(live[0].bootstrap, group)
        return node_id if code == 0 else None

    coordinator = wait_for(found, 90, "a coordinator once three brokers are registered")
    assert coordinator in (1, 2, 3)
    t = _offsets_topic(c.bootstrap)
    assert t is not None and len(t.partitions) == OFFSETS_PARTITIONS
    for p in t.partitions.values():
        assert len(p.replicas) == 3, f"__consumer_offsets-{p.id} replicas {p.replicas}"


def _produce(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errs = []
    for part in range(PARTITIONS):
        for i in range(PER_PARTITION):
            p.produce(topic, f"{part}-{i}".encode(), partition=part,
                      on_delivery=lambda e, m: e and errs.append(e))
    assert p.flush(60) == 0
    assert not errs, errs[:3]


def _coordinator_of(adm, group):
    d = adm.describe_consumer_groups([group], request_timeout=15)[group].result(timeout=30)
    return d.coordinator.id, d


def _raw_coordinator(cluster, group):
    """The coordinator FindCoordinator names through any live node (raw
    protocol: no client state to go stale while a broker dies)."""
    for n in cluster.nodes:
        if not n.alive():
            continue
        try:
            code, node_id = _find_coordinator(n.bootstrap, group)
        except OSError:
            continue
        return node_id if code == 0 else None
    return None


def _committed(adm, group, topic):
    from confluent_kafka import ConsumerGroupTopicPartitions
    f = adm.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(PARTITIONS)])],
        request_timeout=15)
    res = f[group].result(timeout=30)
    out = {}
    for tp in res.topic_partitions:
        assert tp.error is None, tp.error
        if tp.offset >= 0:
            out[tp.partition] = tp.offset
    return out


def _describe_cli(bootstrap, group):
    """`kafka-consumer-groups --describe`: {partition: CURRENT-OFFSET}."""
    p = cu.kafka_tool("consumer-groups", "--bootstrap-server", bootstrap, "--describe", "--group", group,
                      timeout=120)
    offsets = {}
    for line in p.stdout_text.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[0] == group and re.fullmatch(r"\d+", cols[2]):
            if cols[3].isdigit():
                offsets[int(cols[2])] = int(cols[3])
    assert offsets, p.stdout_text + p.stderr_text
    return offsets


class Member:
    """A consumer group member that reads and commits explicit offsets,
    remembering the last commit each partition had acknowledged."""

    def __init__(self, bootstrap, group, topic):
        self.topic = topic
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                           "auto.offset.reset": "earliest", "session.timeout.ms": 45000,
                           "heartbeat.interval.ms": 1000, "topic.metadata.refresh.interval.ms": 2000})
        self.c.subscribe([topic])
        self.next = {}
        self.acked = {}
        self.firsts = {}
        self.seen = 0

    def read(self, n, timeout=90):
        """Reads `n` more records."""
        deadline = time.time() + timeout
        got = 0
        while got < n:
            assert time.time() < deadline, f"read {got} of {n} records"
            m = self.c.poll(0.5)
            if m is None or m.error():
                continue
            self.firsts.setdefault(m.partition(), m.offset())
            self.next[m.partition()] = max(self.next.get(m.partition(), 0), m.offset() + 1)
            got += 1
            self.seen += 1

    def commit(self, timeout=90):
        """Commits what was read, retrying until the coordinator acknowledges."""
        want = dict(self.next)
        tps = [TopicPartition(self.topic, p, o) for p, o in sorted(want.items())]
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                res = self.c.commit(offsets=tps, asynchronous=False)
                bad = [tp for tp in res if tp.error]
                if not bad:
                    self.acked.update(want)
                    return
                last = bad
            except KafkaException as e:
                last = e
            time.sleep(0.5)
        raise AssertionError(f"commit not acknowledged within {timeout}s: {last}")

    def close(self):
        self.c.close()


def test_group_moves_to_a_new_coordinator_when_the_coordinator_is_killed(ccluster):
    topic = f"coord-{uuid.uuid4().hex[:8]}"
    group = f"coord-g-{uuid.uuid4().hex[:8]}"
    create_replicated_topic(ccluster, topic, PARTITIONS)
    _produce(ccluster.bootstrap, topic)

    a = Member(ccluster.bootstrap, group, topic)
    for _ in range(12):
        a.read(10)
        a.commit()
    before_kill = dict(a.acked)
    coordinator = wait_for(lambda: _raw_coordinator(ccluster, group), 30, "the group's coordinator")
    # One admin client per phase, each kept until its futures complete.
    adm = _admin(ccluster.bootstrap)
    assert _coordinator_of(adm, group)[0] == coordinator
    assert _committed(adm, group, topic) == before_kill
    assert _describe_cli(ccluster.bootstrap, group) == before_kill
    t = _offsets_topic(ccluster.bootstrap)
    assert all(len(p.replicas) == 3 for p in t.partitions.values())

    log(f"kill -9 coordinator {coordinator}")
    node(ccluster, coordinator).kill9()
    bs = live_bootstrap(ccluster)

    # Every commit acknowledged before the kill is on the new coordinator.
    def moved():
        c = _raw_coordinator(ccluster, group)
        return c if c not in (None, -1, coordinator) else None

    new = wait_for(moved, 90, "the group on a new coordinator", interval=1)
    adm = _admin(bs)
    assert wait_for(lambda: _committed(adm, group, topic), 60, "committed offsets from the new coordinator") \
        == before_kill
    log(f"group on coordinator {new}")

    # The member carries on: it reads and its commits are acknowledged.
    for _ in range(9):
        a.read(10)
        a.commit()
    assert _committed(adm, group, topic) == a.acked
    coord_after, d = _coordinator_of(adm, group)
    assert coord_after == new
    assert len(d.members) == 1
    assert _describe_cli(bs, group) == a.acked
    a.close()

    # A new member resumes exactly at the committed offsets.
    b = Member(bs, group, topic)
    b.read(sum(PER_PARTITION - a.acked.get(p, 0) for p in range(PARTITIONS)))
    b.close()
    for p in range(PARTITIONS):
        if a.acked.get(p, 0) < PER_PARTITION:
            assert b.firsts.get(p) == a.acked.get(p, 0), (p, b.firsts, a.acked)
