"""Dynamic KRaft voters (KIP-853, issue 9): a controller formatted
`--standalone` forms a quorum of one; two more controllers, formatted
`--no-initial-controllers`, start as observers of the metadata log and become
voters through `kafka-metadata-quorum add-controller`; `remove-controller`
takes one out again. The quorum serves through a kill -9 of its leader, the
voter set survives a kill -9 of every node, and bad requests get Kafka's
errors (DUPLICATE_VOTER, VOTER_NOT_FOUND). All through Kafka's own
`kafka-metadata-quorum` (via a broker, `--bootstrap-server`) and
confluent-kafka. Passes on Apache Kafka 4.1.1 with the same layout
(CLUSTER_APACHE_KAFKA=1).

Before this, a controller with `controller.quorum.bootstrap.servers` and no
`controller.quorum.voters` was refused at start-up, and brokers did not
serve AddRaftVoter/RemoveRaftVoter."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import compat_util as cu
from conftest import APACHE, Cluster, _cluster_id, managed
from split_roles import SplitCluster, SplitNode


def _dynamic_cluster():
    """Controllers 1-3 and brokers 4-5, all with
    `controller.quorum.bootstrap.servers` and no `controller.quorum.voters`.
    Controller 1 is formatted `--standalone`, 2 and 3
    `--no-initial-controllers`."""
    c = SplitCluster(3, 2)
    _dynamic(c.nodes, c.controllers, c.controllers)
    return c


def _dynamic(nodes, contacts, controllers):
    """`nodes` with `controller.quorum.bootstrap.servers` (the controller ports of
    `contacts`) and no voters; the first of `controllers` formatted
    `--standalone`, the rest `--no-initial-controllers` (changed in place)."""
    bootstrap = ",".join(f"127.0.0.1:{n.cport}" for n in contacts)
    for n in nodes:
        n.voters = ""
        # Empty overrides the launcher's default voters for Apache Kafka.
        n.extra_props.update({"controller.quorum.voters": "", "controller.quorum.bootstrap.servers": bootstrap})
    controllers[0].format_args = ["--standalone"]
    for n in controllers[1:]:
        n.format_args = ["--no-initial-controllers"]


def _start(c):
    """Controller 1 and the brokers only; 2 and 3 are started by the test."""
    c.controllers[0].start()
    for b in c.brokers:
        b.start()
    c.wait_brokers(len(c.brokers))


@pytest.fixture(scope="module")
def dyn(request):
    yield from managed(request, _dynamic_cluster, start=_start)


def _controllers(c):
    return ",".join(f"127.0.0.1:{n.cport}" for n in c.controllers if n.alive())


def _quorum(c, *args, check=True, timeout=90, controllers=False):
    """kafka-metadata-quorum through a broker, or straight to the
    controllers (`--bootstrap-controller`, KIP-919)."""
    via = ["--bootstrap-controller", _controllers(c)] if controllers else ["--bootstrap-server", c.bootstrap]
    return cu.kafka_tool("metadata-quorum", *via, *args, timeout=timeout, check=check)


def _status(c, controllers=False):
    p = _quorum(c, "describe", "--status", check=False, controllers=controllers)
    return dict(line.split(":", 1) for line in p.stdout_text.splitlines() if ":" in line), p


def _voters(fields):
    return {e["id"]: e for e in json.loads(fields["CurrentVoters"])}


def _wait_status(c, ok, what, timeout=90, controllers=False):
    deadline = time.time() + timeout
    fields, p = {}, None
    while time.time() < deadline:
        try:
            fields, p = _status(c, controllers)
            if "CurrentVoters" in fields and ok(fields):
                return fields
        except (ValueError, KeyError):
            pass
        time.sleep(1)
    raise AssertionError(f"{what}: {fields}\n{p.stdout_text if p else ''}{p.stderr_text if p else ''}")


def _replication(c, controllers=False):
    """`describe --replication` rows: node id -> (directory id, role)."""
    p = _quorum(c, "describe", "--replication", controllers=controllers)
    rows = {}
    for line in p.stdout_text.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 7:
            rows.setdefault(int(cols[0]), (cols[1], cols[-1]))
    return rows


def _dir_id(node):
    """`directory.id` of the node's meta.properties (Kafka's and Runnel's)."""
    text = (node.data_dir / "meta.properties").read_text()
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return props["directory.id"].strip()


def _config_file(node):
    """The controller's own configuration, as add-controller reads it."""
    f = node.work / "add-controller.properties"
    props = dict(node._props(), **{"log.dirs": str(node.data_dir)})
    f.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return f


def _add_controller(c, node, timeout=90, controllers=False):
    """add-controller until the new controller has caught up as an observer
    (Kafka answers REQUEST_TIMED_OUT until then)."""
    deadline = time.time() + timeout
    while True:
        p = _quorum(c, "--command-config", _config_file(node), "add-controller", check=False,
                    controllers=controllers)
        if p.returncode == 0:
            return p
        if "TimeoutException" not in p.stderr_text + p.stdout_text or time.time() > deadline:
            raise AssertionError(f"add-controller {node.node_id} failed:\n{p.stdout_text}\n{p.stderr_text}")
        time.sleep(1)


def _produce_consume(c, topic, n=20):
    adm = AdminClient({"bootstrap.servers": c.bootstrap, "socket.timeout.ms": 30000})
    fut = adm.create_topics([NewTopic(topic, num_partitions=1, replication_factor=2,
                                      config={"min.insync.replicas": "2"})], operation_timeout=30, request_timeout=30)
    fut[topic].result(timeout=60)
    cu.wait_topic_ready(c.bootstrap, topic, 1, timeout=60)
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "message.timeout.ms": 60000})
    acked = []
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(),
                  on_delivery=lambda err, m: acked.append(m.value()) if err is None else None)
    assert p.flush(60) == 0
    assert len(acked) == n
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    cons.subscribe([topic])
    got = []
    deadline = time.time() + 60
    while len(got) < n and time.time() < deadline:
        m = cons.poll(1)
        if m is not None and m.error() is None:
            got.append(m.value())
    cons.close()
    assert sorted(got) == sorted(acked)


def test_standalone_controller_forms_a_quorum_of_one(dyn):
    fields = _wait_status(dyn, lambda f: f["LeaderId"].strip() == "1", "controller 1 leads")
    voters = _voters(fields)
    assert list(voters) == [1]
    assert voters[1]["directoryId"] == _dir_id(dyn.controllers[0]), fields
    # The last voter cannot be removed: VOTER_NOT_FOUND, as Kafka.
    p = _quorum(dyn, "remove-controller", "--controller-id", "1",
                "--controller-directory-id", _dir_id(dyn.controllers[0]), check=False)
    assert p.returncode != 0 and "VoterNotFoundException" in p.stderr_text, p.stderr_text


def _wait_up(node, timeout=120):
    """Until the node's storage is formatted and its controller port listens."""
    deadline = time.time() + timeout
    while not ((node.data_dir / "meta.properties").exists() and cu.port_open("127.0.0.1", node.cport)):
        assert time.time() < deadline, f"node {node.node_id} did not start:\n{node.tail()}"
        time.sleep(0.2)


def test_add_two_controllers(dyn):
    for n in dyn.controllers[1:]:
        n.start()
    for n in dyn.controllers[1:]:
        _wait_up(n)
    # Controller 2 through a broker, controller 3 straight to the controllers.
    for n, direct in zip(dyn.controllers[1:], (False, True)):
        out = _add_controller(dyn, n, controllers=direct).stdout_text
        assert f"controller {n.node_id} with directory id {_dir_id(n)}" in out, out
    fields = _wait_status(dyn, lambda f: len(_voters(f)) == 3, "three voters")
    assert _voters(_wait_status(dyn, lambda f: len(_voters(f)) == 3, "three voters (controllers)",
                                controllers=True)) == _voters(fields)
    voters = _voters(fields)
    for n in dyn.controllers:
        assert voters[n.node_id]["directoryId"] == _dir_id(n)
        assert f"CONTROLLER://127.0.0.1:{n.cport}" in voters[n.node_id]["endpoints"][0], voters
    for direct in (False, True):
        rows = _replication(dyn, controllers=direct)
        roles = sorted(r[1] for nid, r in rows.items() if nid in (1, 2, 3))
        assert roles == ["Follower", "Follower", "Leader"], rows
    _produce_consume(dyn, "after-add")


def test_bad_voter_changes_get_kafka_errors(dyn):
    n2 = dyn.controllers[1]
    # A voter that is already one: DUPLICATE_VOTER.
    p = _quorum(dyn, "--command-config", _config_file(n2), "add-controller", check=False)
    assert p.returncode != 0 and "DuplicateVoterException" in p.stderr_text, p.stderr_text
    # A voter id with another directory id, and an unknown voter: VOTER_NOT_FOUND.
    for nid, d in ((2, "AAAAAAAAAAAAAAAAAAAAAQ"), (99, _dir_id(n2))):
        p = _quorum(dyn, "remove-controller", "--controller-id", str(nid),
                    "--controller-directory-id", d, check=False, controllers=nid == 99)
        assert p.returncode != 0 and "VoterNotFoundException" in p.stderr_text, p.stderr_text
    # A controller that does not follow the log (never started): Kafka's
    # REQUEST_TIMED_OUT ("not ready" / "lagging behind"), nothing changes.
    ghost = dyn.work / "ghost"
    (ghost / "data").mkdir(parents=True)
    (ghost / "data" / "meta.properties").write_text(
        f"version=1\ncluster.id={n2.cluster_id}\nnode.id=9\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAw\n")
    cfg = ghost / "ghost.properties"
    cfg.write_text(f"node.id=9\nprocess.roles=controller\ncontroller.listener.names=CONTROLLER\n"
                   f"listeners=CONTROLLER://127.0.0.1:{cu.free_port()}\nlog.dirs={ghost / 'data'}\n")
    p = _quorum(dyn, "--command-config", cfg, "add-controller", check=False)
    assert p.returncode != 0 and "TimeoutException" in p.stderr_text, p.stderr_text
    assert len(_voters(_wait_status(dyn, lambda f: True, "status"))) == 3


def test_quorum_serves_after_kill9_of_its_leader(dyn):
    leader = int(_wait_status(dyn, lambda f: int(f["LeaderId"]) > 0, "a leader")["LeaderId"])
    dyn.node(leader).kill9()
    _wait_status(dyn, lambda f: int(f["LeaderId"]) not in (-1, leader), "a new leader")
    _produce_consume(dyn, "after-leader-kill")
    dyn.node(leader).start()


def test_remove_controller_and_restart_everything(dyn):
    # A follower (removing the leader itself makes Kafka answer
    # NOT_LEADER_OR_FOLLOWER while it resigns).
    leader = int(_wait_status(dyn, lambda f: int(f["LeaderId"]) > 0, "a leader")["LeaderId"])
    victim = next(n for n in reversed(dyn.controllers) if n.node_id != leader)
    keep = sorted(n.node_id for n in dyn.controllers if n is not victim)
    deadline = time.time() + 90
    attempts = []
    while True:
        p = _quorum(dyn, "remove-controller", "--controller-id", str(victim.node_id),
                    "--controller-directory-id", _dir_id(victim), check=False)
        attempts.append(p.stdout_text + p.stderr_text.split("\n")[0])
        if p.returncode == 0:
            assert f"KRaft controller {victim.node_id} with directory id {_dir_id(victim)}" in p.stdout_text
            break
        # The restarted controller may still be catching up, or leadership
        # may move: Kafka answers REQUEST_TIMED_OUT / NOT_LEADER_OR_FOLLOWER
        # (both retriable). A retry after such an answer may find the voter
        # already removed (VOTER_NOT_FOUND); anything else is a failure.
        transient = "TimeoutException" in p.stderr_text or "NotLeaderOrFollowerException" in p.stderr_text
        if not transient and len(attempts) > 1 and "VoterNotFoundException" in p.stderr_text:
            break
        assert transient and time.time() < deadline, "\n".join(attempts)
        time.sleep(1)
    _wait_status(dyn, lambda f: sorted(_voters(f)) == keep, f"voters {keep}")
    for n in dyn.nodes:
        n.kill9()
    for n in dyn.nodes:
        n.start()
    dyn.wait_brokers(len(dyn.brokers))
    fields = _wait_status(dyn, lambda f: int(f["LeaderId"]) in keep, "a leader after the restart")
    assert sorted(_voters(fields)) == keep, fields
    _produce_consume(dyn, "after-restart")


def test_a_dynamic_controller_must_be_formatted_standalone_or_without_initial_controllers(tmp_path):
    """A controller with controller.quorum.bootstrap.servers and neither
    --standalone nor --no-initial-controllers is not formatted: Kafka's
    kafka-storage message, and nothing starts."""
    port = cu.free_port()
    node = SplitNode(1, "controller", port, port, "", _cluster_id(), tmp_path,
                     {"controller.quorum.voters": "", "controller.quorum.bootstrap.servers": f"127.0.0.1:{port}"})
    node.start()
    try:
        assert node.proc.wait(120) != 0
    finally:
        node.stop()
    log = (tmp_path / ("launcher.log" if APACHE else "node.log")).read_text(errors="replace")
    assert ("Because controller.quorum.voters is not set on this controller, you must specify one of the "
            "following: --standalone, --initial-controllers, or --no-initial-controllers.") in log, log
    assert not cu.port_open("127.0.0.1", port)


def _combined_dynamic():
    """Three combined nodes (`broker,controller`) with
    `controller.quorum.bootstrap.servers` (node 1's controller listener)
    and no `controller.quorum.voters`: node 1 formatted `--standalone`, 2 and
    3 `--no-initial-controllers`, as the operator runs a combined cluster."""
    c = Cluster(3)
    _dynamic(c.nodes, c.nodes[:1], c.nodes)
    return c


def _start_combined(c):
    c.nodes[0].start()
    c.wait_brokers(1)
    for n in c.nodes[1:]:
        n.start()
    # As observers of the metadata log their brokers register too.
    c.wait_brokers(3)


@pytest.fixture(scope="module")
def combined(request):
    yield from managed(request, _combined_dynamic, start=_start_combined)


def test_combined_nodes_join_a_dynamic_quorum_as_observers_then_voters(combined):
    """What the operator does for a combined cluster: the observers show up
    in DescribeQuorum with their directory ids (the operator reads them
    there), become voters one at a time, and the quorum of three then
    serves through a kill -9 of its leader."""
    c = combined
    fields = _wait_status(c, lambda f: len(_voters(f)) == 1, "node 1 alone votes")
    assert list(_voters(fields)) == [1], fields

    def observers_with_dirs():
        rows = _replication(c)
        return all(rows.get(n.node_id) == (_dir_id(n), "Observer") for n in c.nodes[1:])
    deadline = time.time() + 60
    while not observers_with_dirs():
        assert time.time() < deadline, _replication(c)
        time.sleep(1)
    for n in c.nodes[1:]:
        _add_controller(c, n)
    voters = _voters(_wait_status(c, lambda f: len(_voters(f)) == 3, "three voters"))
    assert {i: v["directoryId"] for i, v in voters.items()} == {n.node_id: _dir_id(n) for n in c.nodes}
    _produce_consume(c, "combined-dynamic")
    leader = int(_wait_status(c, lambda f: int(f["LeaderId"]) > 0, "a leader")["LeaderId"])
    c.nodes[leader - 1].kill9()
    _wait_status(c, lambda f: int(f["LeaderId"]) not in (-1, leader), "a new leader")
    # The killed node comes back as the voter it was (its storage says so).
    c.nodes[leader - 1].start()
    c.wait_brokers(3)
    assert sorted(_voters(_wait_status(c, lambda f: len(_voters(f)) == 3, "three voters"))) == [1, 2, 3]
    _produce_consume(c, "combined-after-kill")
