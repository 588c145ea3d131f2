"""Three combined broker+controller nodes as one cluster (issue 9, first step).

Before the controller channel, nodes 2 and 3 exited at start-up with
`broker registration failed: NotController (41)`: a broker could only reach
a controller on its own node. These tests drive the cluster with real
clients and Kafka's CLI, and pass on three Apache Kafka 4.1.1 nodes too
(CLUSTER_APACHE_KAFKA=1). The last test replicates (RF=3) through the
loss of a partition leader.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import compat_util as cu
from conftest import APACHE


def _admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 30000})


def _controller(bootstrap):
    adm = _admin(bootstrap)
    d = adm.describe_cluster(request_timeout=30).result(timeout=40)
    return d.controller.id if d.controller else -1, sorted(n.id for n in d.nodes)


def _create(bootstrap, name, partitions):
    adm = _admin(bootstrap)
    f = adm.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                          operation_timeout=30, request_timeout=30)
    f[name].result(timeout=60)


def _produce_all(bootstrap, topic, partitions, per_partition, tag):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": 60000})
    acked, errs = {}, []

    def cb(e, m):
        if e:
            errs.append(e)
        else:
            acked[(m.partition(), m.offset())] = m.value()

    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, f"{tag}-{part}-{i}".encode(), partition=part, on_delivery=cb)
    assert p.flush(90) == 0
    assert not errs, errs[:3]
    return acked


def _read_all(bootstrap, topic, partitions, want, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen = {}
    deadline = time.time() + timeout
    while len(seen) < want and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        seen[(m.partition(), m.offset())] = m.value()
    c.close()
    return seen


def test_every_node_registers_and_one_is_the_controller(cluster):
    for n in cluster.nodes:
        ctrl, nodes = _controller(n.bootstrap)
        assert nodes == [1, 2, 3], f"via node {n.node_id}: brokers {nodes}"
        assert ctrl in (1, 2, 3), f"via node {n.node_id}: controller {ctrl}"


def test_topics_created_through_any_node_spread_and_serve_clients(cluster):
    topic = cu.unique_topic("spread")
    # Through a node that is (most likely) not the active controller.
    ctrl, _ = _controller(cluster.nodes[0].bootstrap)
    via = next(n for n in cluster.nodes if n.node_id != ctrl)
    _create(via.bootstrap, topic, 6)
    md = cu.wait_topic_ready(cluster.bootstrap, topic, 6, timeout=60)
    leaders = {p.leader for p in md.topics[topic].partitions.values()}
    assert len(leaders) >= 2, f"all six partitions led by {leaders}"
    acked = _produce_all(via.bootstrap, topic, 6, 20, "a")
    other = next(n for n in cluster.nodes if n is not via)
    seen = _read_all(other.bootstrap, topic, 6, len(acked))
    assert seen == acked


def test_consumer_group_offsets_across_nodes(cluster):
    topic = cu.unique_topic("grp")
    _create(cluster.nodes[1].bootstrap, topic, 3)
    cu.wait_topic_ready(cluster.bootstrap, topic, 3, timeout=60)
    acked = _produce_all(cluster.bootstrap, topic, 3, 10, "g")
    group = f"g-{uuid.uuid4().hex[:6]}"
    c = Consumer({"bootstrap.servers": cluster.nodes[2].bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    n = 0
    deadline = time.time() + 60
    while n < len(acked) and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            n += 1
    assert n == len(acked)
    c.commit(asynchronous=False)
    c.close()
    c2 = Consumer({"bootstrap.servers": cluster.nodes[0].bootstrap, "group.id": group})
    committed = c2.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)
    c2.close()
    assert [tp.offset for tp in committed] == [10, 10, 10]


def test_the_active_controller_is_killed_and_another_takes_over(cluster):
    topic = cu.unique_topic("before")
    _create(cluster.bootstrap, topic, 3)
    cu.wait_topic_ready(cluster.bootstrap, topic, 3, timeout=60)
    acked = _produce_all(cluster.bootstrap, topic, 3, 10, "k")
    ctrl, _ = _controller(cluster.bootstrap)
    victim = next(n for n in cluster.nodes if n.node_id == ctrl)
    victim.kill9()
    survivors = [n for n in cluster.nodes if n is not victim]
    survivor_bootstrap = ",".join(n.bootstrap for n in survivors)
    deadline = time.time() + 60
    new = -1
    while time.time() < deadline:
        try:
            new, _ = _controller(survivor_bootstrap)
            if new not in (-1, ctrl):
                break
        except Exception:  # noqa: BLE001 - the cluster is electing
            pass
        time.sleep(0.5)
    assert new not in (-1, ctrl), f"no new controller after killing {ctrl}"
    # Metadata changes work through the survivors.
    after = cu.unique_topic("after")
    _create(survivor_bootstrap, after, 2)
    # The killed node comes back on its data and its acked records are there.
    victim.start()
    cluster.wait_brokers(3, via=victim)
    cu.wait_topic_ready(cluster.bootstrap, topic, 3, timeout=90)
    seen = _read_all(cluster.bootstrap, topic, 3, len(acked), timeout=90)
    assert seen == acked


def _partitions(bootstrap, topic):
    md = _admin(bootstrap).list_topics(topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return {}
    return {p: (pm.leader, sorted(pm.isrs)) for p, pm in t.partitions.items()}


def _wait_partitions(bootstrap, topic, ok, what, timeout=90):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = _partitions(bootstrap, topic)
            if last and ok(last):
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(0.5)
    raise AssertionError(f"{what}: {last!r}")


def _segments(node, topic, partition):
    d = node.work / "data" / f"{topic}-{partition}"
    return b"".join(f.read_bytes() for f in sorted(d.glob("*.log")))


def test_replicated_topic_survives_its_leader_being_killed(cluster):
    """RF=3, min.insync.replicas=2, acks=all: every record acknowledged
    before and after the leader of a partition is killed with SIGKILL is
    read back, and all three replicas' logs end up byte-identical."""
    topic = cu.unique_topic("rf3")
    adm = _admin(cluster.bootstrap)
    f = adm.create_topics(
        [NewTopic(topic, num_partitions=3, replication_factor=3, config={"min.insync.replicas": "2"})],
        request_timeout=30)
    f[topic].result(timeout=60)
    full = lambda ps: len(ps) == 3 and all(isr == [1, 2, 3] and l >= 0 for l, isr in ps.values())  # noqa: E731
    parts = _wait_partitions(cluster.bootstrap, topic, full, "ISR never reached all three replicas")
    acked = _produce_all(cluster.bootstrap, topic, 3, 50, "before")
    leader = parts[0][0]
    victim = next(n for n in cluster.nodes if n.node_id == leader)
    victim.kill9()
    survivors = ",".join(n.bootstrap for n in cluster.nodes if n is not victim)
    moved = lambda ps: all(l not in (-1, leader) for l, _ in ps.values())  # noqa: E731
    _wait_partitions(survivors, topic, moved, f"leadership never left the killed broker {leader}")
    acked.update(_produce_all(survivors, topic, 3, 50, "after"))
    victim.start()
    cluster.wait_brokers(3, via=victim)
    _wait_partitions(cluster.bootstrap, topic, full, "the restarted broker never rejoined the ISR", timeout=120)
    seen = _read_all(cluster.bootstrap, topic, 3, len(acked), timeout=90)
    missing = {k: v for k, v in acked.items() if seen.get(k) != v}
    assert not missing, f"{len(missing)} acknowledged records not read back at their offsets, e.g. {list(missing.items())[:5]}"
    # Replicas converge byte for byte (followers fetch until they hold the
    # leader's whole log; give them a moment).
    deadline = time.time() + 30
    while True:
        diff = [p for p in range(3) if len({_segments(n, topic, p) for n in cluster.nodes}) != 1]
        if not diff or time.time() > deadline:
            break
        time.sleep(0.5)
    assert not diff, f"replicas of partitions {diff} differ"


def test_kafka_metadata_quorum_describes_the_quorum(cluster):
    """Kafka's own `kafka-metadata-quorum` tool (DescribeQuorum) against
    any node: the leader, its epoch, the high watermark and three voters
    that have all caught up."""
    p = cu.kafka_tool("metadata-quorum", "--bootstrap-server", cluster.nodes[1].bootstrap,
                      "describe", "--status", timeout=90)
    out = p.stdout_text
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    leader = int(fields["LeaderId"])
    assert leader in (1, 2, 3), out
    assert int(fields["LeaderEpoch"]) >= 1, out
    assert int(fields["HighWatermark"]) > 0, out
    for n in (1, 2, 3):
        assert f'"id": {n}' in fields["CurrentVoters"], out
    p = cu.kafka_tool("metadata-quorum", "--bootstrap-server", cluster.nodes[2].bootstrap,
                      "describe", "--replication", timeout=90)
    rows = [line.split() for line in p.stdout_text.splitlines()[1:] if line.strip()]
    assert sorted(int(r[0]) for r in rows) == [1, 2, 3], p.stdout_text
    assert {r[-1] for r in rows} <= {"Leader", "Follower"}, p.stdout_text
    assert sum(r[-1] == "Leader" for r in rows) == 1, p.stdout_text


def test_kafka_leader_election_moves_leadership_back_to_the_preferred_replica(cluster):
    """After its preferred leader restarts, a partition is led by another
    replica; `kafka-leader-election --election-type PREFERRED` (ElectLeaders)
    gives it back, and asking again is answered as not needed."""
    topic = cu.unique_topic("elect")
    adm = _admin(cluster.bootstrap)
    adm.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)],
                      request_timeout=30)[topic].result(timeout=60)
    full = lambda ps: len(ps) == 1 and ps[0][0] >= 0 and ps[0][1] == [1, 2, 3]  # noqa: E731
    _wait_partitions(cluster.bootstrap, topic, full, "ISR never reached all three replicas")
    md = adm.list_topics(topic, timeout=10)
    preferred = md.topics[topic].partitions[0].replicas[0]
    assert md.topics[topic].partitions[0].leader == preferred
    node = next(n for n in cluster.nodes if n.node_id == preferred)
    node.stop()
    others = ",".join(n.bootstrap for n in cluster.nodes if n is not node)
    _wait_partitions(others, topic, lambda ps: ps[0][0] not in (-1, preferred), "leadership never moved")
    node.start()
    cluster.wait_brokers(3, via=node)
    _wait_partitions(cluster.bootstrap, topic, full, "the preferred replica never rejoined the ISR", timeout=120)
    assert _partitions(cluster.bootstrap, topic)[0][0] != preferred
    p = cu.kafka_tool("leader-election", "--bootstrap-server", cluster.bootstrap, "--election-type",
                      "PREFERRED", "--topic", topic, "--partition", "0", timeout=90)
    assert "Successfully completed leader election" in p.stdout_text, p.stdout_text
    _wait_partitions(cluster.bootstrap, topic, lambda ps: ps[0][0] == preferred,
                     "the preferred replica does not lead after the election")
    p = cu.kafka_tool("leader-election", "--bootstrap-server", cluster.bootstrap, "--election-type",
                      "PREFERRED", "--topic", topic, "--partition", "0", timeout=90, check=False)
    assert "Valid replica already elected" in p.stdout_text + p.stderr_text, p.stdout_text + p.stderr_text


def test_kafka_reassign_partitions_moves_a_replica(cluster, tmp_path):
    """`kafka-reassign-partitions --execute` moves one replica of each
    partition to the broker that had none (AlterPartitionReassignments);
    `--verify` (ListPartitionReassignments) reports completion; the new
    replica set serves every acknowledged record and the moved-away broker
    keeps no live copy."""
    import json
    topic = cu.unique_topic("move")
    adm = _admin(cluster.bootstrap)
    adm.create_topics([NewTopic(topic, num_partitions=2, replication_factor=2)],
                      request_timeout=30)[topic].result(timeout=60)
    two = lambda ps: len(ps) == 2 and all(l >= 0 and len(isr) == 2 for l, isr in ps.values())  # noqa: E731
    _wait_partitions(cluster.bootstrap, topic, two, "ISR never reached both replicas")
    acked = _produce_all(cluster.bootstrap, topic, 2, 50, "m")
    md = adm.list_topics(topic, timeout=10)
    plan, want = [], {}
    for p, pm in md.topics[topic].partitions.items():
        spare = next(b for b in (1, 2, 3) if b not in pm.replicas)
        target = [pm.replicas[1], spare]
        plan.append({"topic": topic, "partition": p, "replicas": target})
        want[p] = sorted(target)
    f = tmp_path / "plan.json"
    f.write_text(json.dumps({"version": 1, "partitions": plan}))
    p = cu.kafka_tool("reassign-partitions", "--bootstrap-server", cluster.bootstrap,
                      "--reassignment-json-file", str(f), "--execute", timeout=90)
    assert "Successfully started partition reassignment" in p.stdout_text, p.stdout_text
    deadline = time.time() + 120
    while True:
        p = cu.kafka_tool("reassign-partitions", "--bootstrap-server", cluster.bootstrap,
                          "--reassignment-json-file", str(f), "--verify", timeout=90, check=False)
        if p.stdout_text.count("is completed") == 2 or time.time() > deadline:
            break
        time.sleep(1)
    assert p.stdout_text.count("is completed") == 2, p.stdout_text + p.stderr_text
    md = adm.list_topics(topic, timeout=10)
    got = {p: sorted(pm.replicas) for p, pm in md.topics[topic].partitions.items()}
    assert got == want, (got, want)
    moved = lambda ps: all(l in want[p] and sorted(isr) == want[p] for p, (l, isr) in ps.items())  # noqa: E731
    _wait_partitions(cluster.bootstrap, topic, moved, "the new replicas did not both get in sync")
    seen = _read_all(cluster.bootstrap, topic, 2, len(acked), timeout=60)
    assert seen == acked


def test_replicas_beyond_the_live_brokers_are_refused(cluster, tmp_path):
    """Bad input gets Kafka's answers: a replication factor above the live
    broker count is INVALID_REPLICATION_FACTOR and creates nothing; a
    reassignment naming a broker that does not exist is refused and moves
    nothing. (`kafka-reassign-partitions` itself refuses unknown broker ids
    before sending; the controller's own check, INVALID_REPLICA_ASSIGNMENT,
    is `controller::reassign::tests`.)"""
    import json
    from confluent_kafka import KafkaError
    adm = _admin(cluster.bootstrap)
    big = cu.unique_topic("rf4")
    f = adm.create_topics([NewTopic(big, num_partitions=1, replication_factor=4)], request_timeout=30)
    with pytest.raises(Exception) as e:
        f[big].result(timeout=60)
    assert e.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR, e.value
    assert big not in adm.list_topics(timeout=10).topics
    topic = cu.unique_topic("badmove")
    adm.create_topics([NewTopic(topic, num_partitions=1, replication_factor=2)],
                      request_timeout=30)[topic].result(timeout=60)
    _wait_partitions(cluster.bootstrap, topic, lambda ps: len(ps) == 1 and len(ps[0][1]) == 2,
                     "ISR never reached both replicas")
    before = sorted(adm.list_topics(topic, timeout=10).topics[topic].partitions[0].replicas)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [1, 42]}]}))
    p = cu.kafka_tool("reassign-partitions", "--bootstrap-server", cluster.bootstrap,
                      "--reassignment-json-file", str(plan), "--execute", timeout=90, check=False)
    assert p.returncode != 0, p.stdout_text + p.stderr_text
    time.sleep(2)
    after = sorted(adm.list_topics(topic, timeout=10).topics[topic].partitions[0].replicas)
    assert after == before


def _configs(bootstrap, rtype, name):
    from confluent_kafka.admin import ConfigResource
    adm = _admin(bootstrap)
    res = ConfigResource(rtype, name)
    got = adm.describe_configs([res], request_timeout=30)[res].result(timeout=40)
    return {k: v.value for k, v in got.items()}


def _set_configs(bootstrap, rtype, name, values):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    adm = _admin(bootstrap)
    res = ConfigResource(rtype, name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in values.items()])
    adm.incremental_alter_configs([res], request_timeout=30)[res].result(timeout=40)


# 2 MB at 200 kB/s: at least ~8 s throttled, well under a second unthrottled.
THROTTLE_RATE = 200_000
THROTTLE_DATA = 3_000_000


@pytest.mark.parametrize("side", ["tool", "leader", "follower"])
def test_replication_throttle_slows_a_reassignment(cluster, tmp_path, side):
    """Replication throttles (KIP-73) act: a new replica of a partition
    holding 3 MB catches up no faster than the throttle allows. `tool`:
    `kafka-reassign-partitions --throttle` sets both sides' rates and
    throttled-replica lists, and `--verify` clears them once done;
    `leader` / `follower`: only that side is configured (kafka-configs'
    keys set through IncrementalAlterConfigs), so each side is shown to
    throttle on its own. Without throttles the move takes well under the
    bound checked here."""
    import json
    from confluent_kafka.admin import ConfigResource
    topic = cu.unique_topic(f"throttle-{side}")
    adm = _admin(cluster.bootstrap)
    adm.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)],
                      request_timeout=30)[topic].result(timeout=60)
    md = _wait_partitions(cluster.bootstrap, topic, lambda ps: len(ps) == 1 and ps[0][0] >= 0,
                          "no leader")
    src = md[0][0]
    dst = next(b for b in (1, 2, 3) if b != src)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 20})
    value = b"x" * 1000
    for _ in range(THROTTLE_DATA // len(value)):
        p.produce(topic, value, partition=0)
        p.poll(0)
    assert p.flush(60) == 0
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": [src, dst]}]}))
    # Timed from before the throttle is set: the quota's windows may start
    # with the configs, before the tool's own start-up returns (timing from
    # after it undercounted by up to the JVM's exit time under load).
    t0 = time.time()
    extra = []
    if side == "tool":
        extra = ["--throttle", str(THROTTLE_RATE)]
    elif side == "leader":
        _set_configs(cluster.bootstrap, ConfigResource.Type.BROKER, str(src),
                     {"leader.replication.throttled.rate": str(THROTTLE_RATE)})
        _set_configs(cluster.bootstrap, ConfigResource.Type.TOPIC, topic,
                     {"leader.replication.throttled.replicas": f"0:{src}"})
    else:
        _set_configs(cluster.bootstrap, ConfigResource.Type.BROKER, str(dst),
                     {"follower.replication.throttled.rate": str(THROTTLE_RATE)})
        _set_configs(cluster.bootstrap, ConfigResource.Type.TOPIC, topic,
                     {"follower.replication.throttled.replicas": f"0:{dst}"})
    r = cu.kafka_tool("reassign-partitions", "--bootstrap-server", cluster.bootstrap,
                      "--reassignment-json-file", str(plan), "--execute", *extra, timeout=90)
    assert "Successfully started partition reassignment" in r.stdout_text, r.stdout_text
    if side == "tool":
        # the tool set the rates on both brokers, and the replica lists
        for b, key in ((src, "leader.replication.throttled.rate"),
                       (dst, "follower.replication.throttled.rate")):
            got = _configs(f"127.0.0.1:{cluster.nodes[b - 1].port}", ConfigResource.Type.BROKER, str(b))
            assert got.get(key) == str(THROTTLE_RATE), (b, key, got.get(key))
        tc = _configs(cluster.bootstrap, ConfigResource.Type.TOPIC, topic)
        assert tc["leader.replication.throttled.replicas"] == f"0:{src}", tc
        assert tc["follower.replication.throttled.replicas"] == f"0:{dst}", tc
    _wait_partitions(cluster.bootstrap, topic, lambda ps: sorted(ps[0][1]) == sorted([src, dst]),
                     "the new replica never joined the ISR", timeout=120)
    took = time.time() - t0
    print(f"{side}: {THROTTLE_DATA} bytes moved at {THROTTLE_RATE} B/s in {took:.1f}s")
    # The rate is measured over windows, so the first fetch (up to
    # replica.fetch.max.bytes, 1 MiB) goes through at once: the rest is paced,
    # so the floor is (data - 1 MiB) / rate (~10 s; unthrottled: the tool's
    # start-up and ~1 s, well under it).
    floor = 0.8 * (THROTTLE_DATA - 1_048_576) / THROTTLE_RATE
    assert took >= floor, f"caught up in {took:.1f}s (< {floor:.1f}s): not throttled"
    if side == "tool":
        r = cu.kafka_tool("reassign-partitions", "--bootstrap-server", cluster.bootstrap,
                          "--reassignment-json-file", str(plan), "--verify", timeout=90)
        assert "is completed" in r.stdout_text, r.stdout_text
        tc = _configs(cluster.bootstrap, ConfigResource.Type.TOPIC, topic)
        assert tc.get("leader.replication.throttled.replicas", "") == "", tc
        got = _configs(f"127.0.0.1:{cluster.nodes[src - 1].port}", ConfigResource.Type.BROKER, str(src))
        assert "leader.replication.throttled.rate" not in got, got
    else:
        key = f"{side}.replication.throttled.rate"
        b = src if side == "leader" else dst
        _set_configs(cluster.bootstrap, ConfigResource.Type.BROKER, str(b), {key: "9223372036854775807"})
