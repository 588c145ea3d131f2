"""Faults under load with nothing acknowledged lost (issue: replication).

Each test starts a fresh three-node cluster (combined broker+controller
nodes), creates a topic with replication factor 3 and
min.insync.replicas=2, and runs a workload: an idempotent acks=all producer
writing unique values, and a consumer group member reading and committing.
Every write's invocation and outcome goes into a Jepsen-style history
(tests/cluster/history.py). While the load runs, the test injects one kind
of fault, heals it, and then checks:

  - the history: every acknowledged write is in the log at its acknowledged
    offset, nothing that was never written, no definitely failed write
    visible, offsets increasing, what consumers read is still there, no
    write acknowledged while two of three nodes were down, and no value twice
    unless a message timed out (then librdkafka bumps its producer epoch and
    may re-send: see history.py);
  - the broker's idempotence on disk: no producer id, epoch and sequence
    appended twice;
  - the group: a new member resumes exactly at the committed offsets;
  - the replicas: every node's log batches below the high watermark are
    byte-identical (compared on disk, batch by batch);
  - liveness: writes are acknowledged, and the group member reads, again
    after the fault heals.

The history is saved as history.jsonl (and the checker's verdict as
report.txt) in the cluster's work dir, kept when a test fails
(CLUSTER_KEEP_DATA=1 keeps it always); analyse it offline with
`python3 tests/cluster/history.py <history.jsonl>`.

    CLUSTER_APACHE_KAFKA=1 python3 -m pytest tests/cluster/test_faults.py -q -x   # the oracle
    python3 -m pytest tests/cluster/test_faults.py -q                           # Runnel

Knobs: FAULTS_RATE (writes/s, default 200), FAULTS_PARTITIONS (default 3).
"""

from __future__ import annotations

import os
import random
import time

import pytest

import compat_util as cu
from conftest import APACHE, Cluster
from confluent_kafka.admin import NewTopic
from faults_util import (FAULT_PROPS, Workload, active_controller, admin, create_replicated_topic, final_read,
                         group_resume, idempotence_violations, leader_of, live_bootstrap, log, node, partition_state,
                         quorum_leader_via, wait_for, wait_full_isr, wait_new_leader, wait_replicas_identical)
from history import History, check

RATE = int(os.environ.get("FAULTS_RATE", "200"))
PARTITIONS = int(os.environ.get("FAULTS_PARTITIONS", "3"))


def _fresh_cluster(request, make):
    if APACHE:
        cu.load_env_sh()
    c = make()
    c.workloads = []
    request.module._cluster_failed = False
    t0 = time.time()
    try:
        c.start()
    except BaseException:
        c.close(keep=True)
        raise
    log(f"cluster up in {time.time() - t0:.1f}s: {c.work}")
    yield c
    failed = getattr(request.module, "_cluster_failed", False)
    keep = failed or os.environ.get("CLUSTER_KEEP_DATA") == "1"
    for wl in c.workloads:
        wl.abort()
    # kill -9: a graceful shutdown of the last nodes waits long for a
    # controlled shutdown nobody can grant, and the data is checked already.
    for n in c.nodes:
        n.kill9()
    c.close(keep=keep)
    if keep:
        log(f"kept {c.work}")


@pytest.fixture
def fcluster(request):
    """A fresh cluster per test, so one failure does not cascade."""
    yield from _fresh_cluster(request, lambda: Cluster(3, props=FAULT_PROPS))


@pytest.fixture
def ncluster(request):
    """A fresh cluster whose nodes run in their own network namespaces
    (tests/cluster/netns.py); `ncluster.net` partitions them. Its bridge,
    veths and namespaces go when the test ends, passed or not."""
    import netns
    why = netns.available()
    if why:
        pytest.skip(why)
    yield from _fresh_cluster(request, lambda: netns.NetnsCluster(3, props=FAULT_PROPS))


class Run:
    """One scenario: topic, history, workload; `heal_and_check` does the rest."""

    def __init__(self, cluster, name, msg_timeout_ms=30000, partitions=PARTITIONS, rate=RATE):
        self.cluster, self.name, self.partitions = cluster, name, partitions
        self.t0 = time.time()
        self.topic = cu.unique_topic(f"faults-{name}")
        create_replicated_topic(cluster, self.topic, partitions)
        self.hist = History(cluster.work / "history.jsonl")
        self.hist.add({"type": "meta", "scenario": name, "topic": self.topic, "partitions": partitions,
                       "broker": "apache-kafka" if APACHE else "runnel", "rate": rate,
                       "message.timeout.ms": msg_timeout_ms})
        self.wl = Workload(cluster, self.topic, partitions, self.hist, rate=rate,
                           msg_timeout_ms=msg_timeout_ms).start()
        # Load is flowing before any fault.
        self.wl.wait_progress(since=0, n=min(300, rate * 2), timeout=60)
        log(f"{name}: load running on {self.topic}")

    def heal_and_check(self):
        c = self.cluster
        for n in c.nodes:
            if not n.alive():
                self.hist.nemesis("start", node=n.node_id)
                n.start()
        c.wait_brokers(3)
        wait_full_isr(c, self.topic, self.partitions, timeout=150)
        healed = time.time()
        self.hist.nemesis("healed")
        self.wl.wait_progress(healed, n=100, timeout=90)
        self.wl.wait_consumer_progress(healed, n=100, timeout=90)
        self.wl.wait_commit_progress(healed, n=2, timeout=90)
        self.wl.stop()
        log(f"{self.name}: healed; producer errors {self.wl.errors or 'none'}; fatal {self.wl.fatal or 'none'}")
        ends = final_read(c, self.topic, self.partitions, self.hist)
        group_resume(c, self.topic, self.partitions, self.wl.group, ends, self.hist)
        self.hist.close()
        rep = check(self.hist.events)
        (c.work / "report.txt").write_text(rep.summary(20) + "\n")
        log(f"{self.name}: {rep.summary(3)}")
        assert rep.valid, f"history {self.hist.path} is not valid:\n{rep.summary(5)}"
        hws = wait_replicas_identical(c, self.topic, self.partitions)
        dup = idempotence_violations(c, self.topic, self.partitions)
        assert not dup, "the broker appended a producer's sequence twice:\n" + "\n".join(dup[:10])
        log(f"{self.name}: replicas identical below HW {hws}; scenario took {time.time() - self.t0:.1f}s")
        return rep


@pytest.mark.timeout(480)
def test_kill9_partition_leader(fcluster):
    run = Run(fcluster, "kill-leader")
    old = leader_of(fcluster, run.topic, 0)
    victim = node(fcluster, old)
    run.hist.nemesis("kill9", node=old, role=f"leader of {run.topic}-0")
    t = time.time()
    victim.kill9()
    new = wait_new_leader(fcluster, run.topic, 0, old, timeout=60)
    log(f"kill-leader: leader {old} -> {new} in {time.time() - t:.1f}s")
    run.wl.wait_progress(time.time(), n=100, timeout=90)
    run.heal_and_check()


@pytest.mark.timeout(480)
def test_followers_paused_then_leader_killed(fcluster):
    """A process pause (SIGSTOP, as a long GC pause or a frozen VM) of both
    followers of partition 0, then its leader killed while they are paused.
    With acks=all nothing written during the pause can be acknowledged (no
    other replica holds it), so nothing acknowledged is lost when a resumed
    follower takes over. A broker that acknowledged acks=all on its own
    append loses the writes acknowledged during the pause here."""
    import signal
    run = Run(fcluster, "pause-then-kill")
    ld = leader_of(fcluster, run.topic, 0)
    followers = [n for n in fcluster.nodes if n.node_id != ld]
    for f in followers:
        run.hist.nemesis("pause", node=f.node_id)
        os.kill(f.pid(), signal.SIGSTOP)
    try:
        time.sleep(float(os.environ.get("FAULTS_PAUSE_SECONDS", "3")))
        run.hist.nemesis("kill9", node=ld, role=f"leader of {run.topic}-0")
        node(fcluster, ld).kill9()
    finally:
        for f in followers:
            os.kill(f.pid(), signal.SIGCONT)
            run.hist.nemesis("resume", node=f.node_id)
    t = time.time()
    new = wait_new_leader(fcluster, run.topic, 0, ld, timeout=90)
    log(f"pause-then-kill: leader {ld} -> {new} in {time.time() - t:.1f}s after the resume")
    run.wl.wait_progress(time.time(), n=100, timeout=90)
    run.heal_and_check()


@pytest.mark.timeout(480)
def test_kill9_active_controller(fcluster):
    run = Run(fcluster, "kill-controller")
    ctrl = active_controller(fcluster)
    assert ctrl in (1, 2, 3), ctrl
    victim = node(fcluster, ctrl)
    run.hist.nemesis("kill9", node=ctrl, role="active controller")
    t = time.time()
    victim.kill9()
    new = wait_for(lambda: (lambda c: c if c not in (-1, ctrl) else None)(active_controller(fcluster)),
                   90, f"a new active controller after killing {ctrl}", interval=1)
    log(f"kill-controller: controller {ctrl} -> {new} in {time.time() - t:.1f}s")
    # Metadata changes work without the old controller, and so do writes.
    extra = cu.unique_topic("after-ctrl-kill")
    adm = admin(live_bootstrap(fcluster))   # keep a reference: a destroyed client fails its futures
    adm.create_topics([NewTopic(extra, num_partitions=1, replication_factor=2)],
                      request_timeout=30)[extra].result(60)
    run.wl.wait_progress(time.time(), n=100, timeout=90)
    run.heal_and_check()


@pytest.mark.timeout(480)
def test_rolling_restart(fcluster):
    run = Run(fcluster, "rolling-restart")
    for n in fcluster.nodes:
        t = time.time()
        run.hist.nemesis("stop", node=n.node_id)
        n.stop()
        run.hist.nemesis("start", node=n.node_id)
        n.start()
        fcluster.wait_brokers(3, via=n)
        wait_full_isr(fcluster, run.topic, run.partitions, timeout=150)
        run.wl.wait_progress(time.time(), n=50, timeout=90)
        log(f"rolling-restart: node {n.node_id} back in the ISR in {time.time() - t:.1f}s")
    run.heal_and_check()


@pytest.mark.timeout(480)
def test_kill9_two_of_three(fcluster):
    """With two of three nodes down, min.insync.replicas=2 cannot be met (and
    the KRaft quorum has lost its majority too): no write may be
    acknowledged; writes fail or time out. After both come back, nothing
    acknowledged before is lost."""
    hold = float(os.environ.get("FAULTS_TWO_DOWN_SECONDS", "20"))
    run = Run(fcluster, "kill-two", msg_timeout_ms=15000)
    ld = leader_of(fcluster, run.topic, 0)
    victims = [node(fcluster, ld)] + [n for n in fcluster.nodes if n.node_id != ld][:1]
    random.shuffle(victims)
    for v in victims:
        run.hist.nemesis("kill9", node=v.node_id)
        v.kill9()
    # Responses already on the wire when the second node died may still
    # arrive; after a short grace nothing more may be acknowledged.
    time.sleep(1.0)
    run.hist.window("no-acks", "start")
    t = time.time()
    before = dict(run.wl.errors)
    time.sleep(hold)
    run.hist.window("no-acks", "end")
    acked = run.wl.oks_after(t)
    errs = {k: v - before.get(k, 0) for k, v in run.wl.errors.items() if v - before.get(k, 0)}
    log(f"kill-two: nodes {[v.node_id for v in victims]} down {hold:.0f}s: acked {acked}, errors {errs or 'none'}")
    assert acked == 0, f"{acked} writes acknowledged with two of three nodes down"
    run.heal_and_check()


# ------------------------------------------------------------------ network partitions

PARTITION_HOLD = float(os.environ.get("FAULTS_PARTITION_SECONDS", "12"))


def _majority_view(cluster, isolated):
    """What the nodes outside the partitioned one agree on (a stand-in
    cluster for the probes in faults_util)."""
    import types
    return types.SimpleNamespace(nodes=[n for n in cluster.nodes if n.node_id != isolated])


def _wait_majority_leader(cluster, topic, partition, isolated, timeout=60):
    """Both nodes of the majority side name the same leader for the
    partition, and it is not the isolated node."""
    def ok():
        leaders = {partition_state(n.bootstrap, topic)[partition][0]
                   for n in cluster.nodes if n.node_id != isolated}
        (ld,) = leaders if len(leaders) == 1 else (None,)
        return ld if ld not in (None, -1, isolated) else None
    return wait_for(ok, timeout, f"a leader for {topic}-{partition} other than the isolated node {isolated}")


def _isolate(run, victim, role, during):
    """Partition node `victim` from the other two nodes (clients still reach
    it), run `during()`, hold the partition for FAULTS_PARTITION_SECONDS in
    all, then heal it and run the checks."""
    c = run.cluster
    run.hist.nemesis("isolate", node=victim, role=role)
    t = time.time()
    c.net.isolate(victim)
    try:
        during(t)
        time.sleep(max(0.0, PARTITION_HOLD - (time.time() - t)))
    finally:
        c.net.heal(victim)
        run.hist.nemesis("heal", node=victim)
    log(f"{run.name}: node {victim} isolated for {time.time() - t:.1f}s, healed")
    run.heal_and_check()


@pytest.mark.timeout(480)
def test_partition_isolates_leader(ncluster):
    """The leader of partition 0 loses the other two nodes while clients still
    reach it. It cannot replicate, so it must acknowledge nothing (acks=all,
    min.insync.replicas=2) while the majority elects another leader and keeps
    acknowledging; after the heal the old leader truncates what it appended
    alone and catches up (the replicas are compared byte for byte). A broker
    that answered acks=all before replicating loses the writes it
    acknowledged while isolated."""
    run = Run(ncluster, "isolate-leader")
    ld = leader_of(ncluster, run.topic, 0)

    def during(t):
        new = _wait_majority_leader(ncluster, run.topic, 0, ld)
        log(f"isolate-leader: leader {ld} -> {new} on the majority side in {time.time() - t:.1f}s")
        run.wl.wait_progress(time.time(), n=100, timeout=60)
    _isolate(run, ld, f"leader of {run.topic}-0", during)


@pytest.mark.timeout(480)
def test_partition_isolates_controller(ncluster):
    """The active controller loses the other two nodes: they elect a new
    controller, metadata changes and writes work on the majority side, and
    after the heal the old controller follows the new one."""
    run = Run(ncluster, "isolate-controller")
    ctrl = active_controller(ncluster)
    assert ctrl in (1, 2, 3), ctrl

    def during(t):
        maj = _majority_view(ncluster, ctrl)

        def elected():
            # Each majority node's own answer (an admin client could send
            # DescribeQuorum to the isolated node, which may still believe it
            # leads). A Kafka broker forwards it to the controller it knew
            # and waits, so ask briefly and ask again.
            for n in maj.nodes:
                try:
                    ld = quorum_leader_via(n, timeout=5)
                except OSError:
                    continue
                if ld in {1, 2, 3} - {ctrl}:
                    return ld
            return None
        new = wait_for(elected, 90, f"a new active controller on the majority side after isolating {ctrl}")
        log(f"isolate-controller: controller {ctrl} -> {new} in {time.time() - t:.1f}s")
        extra = cu.unique_topic("after-ctrl-isolated")
        adm = admin(live_bootstrap(maj))
        adm.create_topics([NewTopic(extra, num_partitions=1, replication_factor=2)],
                          request_timeout=30)[extra].result(60)
        run.wl.wait_progress(time.time(), n=100, timeout=60)
    _isolate(run, ctrl, "active controller", during)


@pytest.mark.timeout(480)
def test_partition_isolates_follower(ncluster):
    """A follower of partition 0 (not the active controller) loses the other
    nodes: it leaves the ISR, writes go on with the two others, and after the
    heal it rejoins the ISR with identical data."""
    run = Run(ncluster, "isolate-follower")
    ld, ctrl = leader_of(ncluster, run.topic, 0), active_controller(ncluster)
    f = next(n.node_id for n in ncluster.nodes if n.node_id not in (ld, ctrl))

    def during(t):
        maj = _majority_view(ncluster, f)
        wait_for(lambda: all(f not in isr for _, _, isr in partition_state(live_bootstrap(maj), run.topic).values()),
                 60, f"node {f} out of the ISRs")
        log(f"isolate-follower: node {f} out of the ISRs in {time.time() - t:.1f}s")
        run.wl.wait_progress(time.time(), n=100, timeout=60)
    _isolate(run, f, f"follower of {run.topic}-0", during)
