"""Split roles (issue 9): three controller-only nodes (the metadata quorum's
voters, no client listener) and three broker-only nodes (observers of the
metadata log that register as brokers and serve clients), driven by
confluent-kafka and Kafka's `kafka-metadata-quorum`. Passes on Apache Kafka
4.1.1 with the same layout (CLUSTER_APACHE_KAFKA=1).

Before roles were acted on, every node was a combined voter: a
`process.roles=broker` node was refused at start-up ("node 4 is not among
the controller quorum voters") and a controller-only node registered as a
broker."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import compat_util as cu
from conftest import APACHE, REPO, managed
from split_roles import SplitCluster, SplitNode


@pytest.fixture(scope="module")
def split(request):
    yield from managed(request, lambda: SplitCluster(3, 3))


def _admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 30000})


def _status(bootstrap):
    p = cu.kafka_tool("metadata-quorum", "--bootstrap-server", bootstrap, "describe", "--status",
                      timeout=90, check=False)
    fields = dict(line.split(":", 1) for line in p.stdout_text.splitlines() if ":" in line)
    return fields, p.stdout_text


def _ids(field):
    return sorted(e["id"] for e in json.loads(field))


def _wait_quorum(bootstrap, ok, what, timeout=90):
    deadline = time.time() + timeout
    fields, out = {}, ""
    while time.time() < deadline:
        try:
            fields, out = _status(bootstrap)
            if "LeaderId" in fields and ok(fields):
                return fields
        except (ValueError, KeyError):
            pass
        time.sleep(1)
    raise AssertionError(f"{what}: {out}")


def _produce_consume(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    errs = []
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode(),
                  on_delivery=lambda e, m: e and errs.append(e))
    assert p.flush(60) == 0 and not errs, errs
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = set()
    deadline = time.time() + 60
    while len(got) < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and not m.error():
            got.add(m.value().decode())
    c.close()
    assert got == {f"v{i}" for i in range(n)}, f"read {len(got)} of {n}"


def _create(bootstrap, topic, partitions=3, rf=3):
    adm = _admin(bootstrap)
    adm.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=rf)],
                      request_timeout=60)[topic].result(timeout=90)
    deadline = time.time() + 60
    while time.time() < deadline:
        md = adm.list_topics(topic, timeout=10).topics[topic]
        if md.error is None and len(md.partitions) == partitions and all(
                p.leader >= 0 and len(p.isrs) == rf for p in md.partitions.values()):
            return md
        time.sleep(0.5)
    raise AssertionError(f"{topic} never got leaders and full ISRs")


def test_only_broker_nodes_are_brokers(split):
    """Metadata and DescribeCluster list the broker-only nodes and never a
    controller-only one; the 'controller' clients are told is a broker."""
    md = _admin(split.bootstrap).list_topics(timeout=10)
    assert sorted(md.brokers) == [4, 5, 6]
    assert md.controller_id in (4, 5, 6)
    adm = _admin(split.bootstrap)   # a destroyed client fails its futures
    d = adm.describe_cluster(request_timeout=30).result(timeout=40)
    assert sorted(n.id for n in d.nodes) == [4, 5, 6]


def test_metadata_quorum_shows_voters_and_observers(split):
    """`kafka-metadata-quorum describe` through a broker: the three
    controllers vote, the three brokers observe."""
    fields = _wait_quorum(split.bootstrap, lambda f: _ids(f["CurrentObservers"]) == [4, 5, 6],
                          "the brokers never showed as observers")
    assert int(fields["LeaderId"]) in (1, 2, 3)
    assert _ids(fields["CurrentVoters"]) == [1, 2, 3]
    p = cu.kafka_tool("metadata-quorum", "--bootstrap-server", split.bootstrap, "describe", "--replication",
                      timeout=90)
    rows = {int(r[0]): r[-1] for r in (line.split() for line in p.stdout_text.splitlines()[1:] if line.strip())}
    assert sorted(rows) == [1, 2, 3, 4, 5, 6], p.stdout_text
    assert sorted(rows[i] for i in (1, 2, 3)) == ["Follower", "Follower", "Leader"], p.stdout_text
    assert {rows[i] for i in (4, 5, 6)} == {"Observer"}, p.stdout_text


def test_a_static_quorum_refuses_voter_changes(split):
    """Static `controller.quorum.voters` (Kafka's kraft.version 0): add and
    remove-controller get UNSUPPORTED_VERSION, and the voters stay."""
    n1 = split.controllers[0]
    meta = dict(line.split("=", 1) for line in (n1.data_dir / "meta.properties").read_text().splitlines()
                if "=" in line and not line.startswith("#"))
    p = cu.kafka_tool("metadata-quorum", "--bootstrap-server", split.bootstrap, "remove-controller",
                      "--controller-id", "1", "--controller-directory-id", meta["directory.id"].strip(),
                      timeout=90, check=False)
    assert p.returncode != 0 and "UnsupportedVersionException" in p.stderr_text, p.stderr_text
    assert "kraft.version feature is 0" in p.stderr_text, p.stderr_text
    fields = _wait_quorum(split.bootstrap, lambda f: True, "no quorum status")
    assert _ids(fields["CurrentVoters"]) == [1, 2, 3]


def test_rf3_survives_kill9_of_the_active_controller(split):
    """RF=3 produce/consume on the brokers; kill -9 the active controller:
    another controller takes over, the brokers keep serving, and requests
    that need the controller (CreateTopics) work again."""
    t1 = cu.unique_topic("split")
    _create(split.bootstrap, t1)
    _produce_consume(split.bootstrap, t1, 300)
    fields, out = _status(split.bootstrap)
    leader = int(fields["LeaderId"])
    assert leader in (1, 2, 3), out
    split.node(leader).kill9()
    _wait_quorum(split.bootstrap, lambda f: int(f["LeaderId"]) in {1, 2, 3} - {leader},
                 f"no new active controller after killing {leader}")
    t2 = cu.unique_topic("split-after")
    _create(split.bootstrap, t2)
    _produce_consume(split.bootstrap, t2, 300)
    assert sorted(_admin(split.bootstrap).list_topics(timeout=10).brokers) == [4, 5, 6]
    # The killed controller comes back as a voter and catches up.
    split.node(leader).start()
    _wait_quorum(split.bootstrap, lambda f: _ids(f["CurrentVoters"]) == [1, 2, 3]
                 and int(f["MaxFollowerLag"]) == 0, "the restarted controller never caught up", timeout=120)


def test_a_broker_that_reaches_no_controller_waits_and_does_not_serve(tmp_path):
    """A broker-only node whose voters are all unreachable stays up, retrying,
    and serves no client request; it does not crash."""
    port, dead = cu.free_port(), cu.free_port()
    n = SplitNode(9, "broker", port, 0, f"1@127.0.0.1:{dead}", "uI0DGk2ZTNa0wi9LSw7tJQ", tmp_path)
    if APACHE:
        cu.load_env_sh()
    try:
        n.start()
        deadline = time.time() + 30   # Kafka's launcher formats storage first
        while n.pid() is None and time.time() < deadline:
            time.sleep(0.5)
        for _ in range(10):
            time.sleep(1)
            assert n.alive(), n.tail()
        with pytest.raises(Exception):
            AdminClient({"bootstrap.servers": n.bootstrap, "socket.timeout.ms": 3000}) \
                .list_topics(timeout=4)
        if not APACHE:
            log = n.log.read_text(errors="replace")
            assert "cannot reach the active controller of the metadata quorum" in log, log[-3000:]
            assert "broker started" not in log and "unfenced: serving" not in log
    finally:
        n.stop()


def test_a_broker_formatted_for_another_cluster_is_refused(split, tmp_path):
    """A broker whose storage (meta.properties) belongs to another cluster id
    is refused by the quorum (INCONSISTENT_CLUSTER_ID): it never registers,
    and the cluster goes on serving unharmed."""
    other = "cZrWo5hUQVm0L3pGoJGJ8g"
    n = SplitNode(7, "broker", cu.free_port(), 0, split.voters, other, tmp_path)
    try:
        n.start()
        time.sleep(15)
        adm = _admin(split.bootstrap)
        assert sorted(adm.list_topics(timeout=10).brokers) == [4, 5, 6]
        t = cu.unique_topic("split-other")
        _create(split.bootstrap, t)
        _produce_consume(split.bootstrap, t, 50)
        if not APACHE:
            log = n.log.read_text(errors="replace")
            assert "INCONSISTENT_CLUSTER_ID" in log, log[-3000:]
            assert "registered with the controller" not in log
    finally:
        n.stop()


def test_voter_lists_that_disagree_are_reported_and_the_log_decides():
    """Node 3 is started with controller.quorum.voters naming a fourth voter
    the others do not have. The quorum the metadata log holds (1, 2, 3)
    decides; the cluster forms and serves, and Runnel's node 3 says at once,
    in an error line, that its config disagrees."""
    from conftest import Cluster
    c = Cluster(3)
    c.nodes[2].voters = c.nodes[2].voters + f",4@127.0.0.1:{cu.free_port()}"
    try:
        c.start()
        t = cu.unique_topic("disagree")
        _create(c.bootstrap, t)
        _produce_consume(c.bootstrap, t, 50)
        if not APACHE:
            log = c.nodes[2].log.read_text(errors="replace")
            assert "controller.quorum.voters on this node disagrees" in log, log[-3000:]
    finally:
        c.close()


def test_a_duplicate_broker_node_id_does_not_displace_the_live_broker(split, tmp_path):
    """A second process with a live broker's node.id (4) is not let in: the
    brokers stay 4, 5, 6, the live broker 4 keeps following the metadata
    (a topic created meanwhile gets full ISRs on 4, 5, 6) and serving."""
    dup = SplitNode(4, "broker", cu.free_port(), 0, split.voters, split.brokers[0].cluster_id, tmp_path)
    try:
        dup.start()
        time.sleep(10)
        t = cu.unique_topic("split-dup")
        md = _create(split.bootstrap, t)
        assert all(sorted(p.isrs) == [4, 5, 6] for p in md.partitions.values())
        _produce_consume(split.bootstrap, t, 100)
        adm = _admin(split.bootstrap)
        md = adm.list_topics(timeout=10)
        assert sorted(md.brokers) == [4, 5, 6]
        assert md.brokers[4].port == split.brokers[0].port, "the duplicate took broker 4's place"
        if not APACHE:
            log = dup.log.read_text(errors="replace")
            assert "unfenced: serving" not in log, log[-3000:]
    finally:
        dup.stop()
    t = cu.unique_topic("split-dup-after")
    _create(split.bootstrap, t)
    _produce_consume(split.bootstrap, t, 100)


@pytest.fixture
def fast_heartbeats(request):
    """A split cluster whose brokers heartbeat every 300 ms, so that one
    heartbeat is surely on its way to the active controller when it is
    paused (with Kafka's 2 s, whether one is depends on the moment)."""
    yield from managed(request, lambda: SplitCluster(3, 3, broker_props={"broker.heartbeat.interval.ms": "300"}))


def test_a_paused_active_controller_fences_no_broker(fast_heartbeats):
    """The active controller is paused (SIGSTOP: a long GC pause, a frozen VM,
    or a pod whose process hangs while its port still accepts connections)
    for twice `broker.session.timeout.ms`. Another controller takes over and
    the brokers must move their heartbeats to it within their session: no
    broker is fenced, no partition loses its leader, and acks=all produce
    keeps being acknowledged throughout.

    Before the controller channel bounded a forwarded request by the
    caller's deadline, a heartbeat sent to the paused node waited 30 s, the
    new controller fenced every broker after 9 s, and every partition went
    offline (the fencing seen in the day-2 roll bench)."""
    t = cu.unique_topic("split-pause")
    _create(fast_heartbeats.bootstrap, t)
    fields, out = _status(fast_heartbeats.bootstrap)
    leader = int(fields["LeaderId"])
    assert leader in (1, 2, 3), out
    paused = fast_heartbeats.node(leader)
    p = Producer({"bootstrap.servers": fast_heartbeats.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 60000})
    errs, acked = [], []

    def done(e, m):
        if e is not None:
            errs.append(e)
        else:
            acked.append(m.value())

    adm = _admin(fast_heartbeats.bootstrap)
    bad = []
    os.kill(paused.pid(), signal.SIGSTOP)
    try:
        t0 = time.time()
        i = 0
        while time.time() - t0 < 20:
            for _ in range(20):
                p.produce(t, value=f"v{i}".encode(), on_delivery=done)
                i += 1
            p.poll(0.2)
            try:
                md = adm.list_topics(timeout=5)
            except Exception as e:  # noqa: BLE001 - a missed sample is not a failure
                print(f"metadata sample failed: {e!r}")
                continue
            brokers = sorted(md.brokers)
            leaderless = [q.id for q in md.topics[t].partitions.values() if q.leader < 0] \
                if t in md.topics else ["topic missing"]
            if brokers != [4, 5, 6] or leaderless:
                bad.append((round(time.time() - t0, 1), brokers, leaderless))
        assert p.flush(90) == 0
    finally:
        os.kill(paused.pid(), signal.SIGCONT)
    assert not bad, f"brokers fenced or partitions leaderless while controller {leader} was paused: {bad[:10]}"
    assert not errs, errs[:5]
    assert len(acked) == i
    new = _wait_quorum(fast_heartbeats.bootstrap, lambda f: _ids(f["CurrentVoters"]) == [1, 2, 3]
                       and int(f["MaxFollowerLag"]) == 0, "the resumed controller never caught up", timeout=120)
    assert int(new["LeaderId"]) in (1, 2, 3)
