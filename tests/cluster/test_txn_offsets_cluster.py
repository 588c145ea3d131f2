"""Transactional offset commits on three nodes (issue 14, KIP-98/447):
the group coordinator keeps a transaction's offsets pending until its
producer's marker lands on `__consumer_offsets`, and a coordinator that
loads the partition (after a kill -9, on another node or on a restart)
replays the transactional offset records and the markers, so pending,
committed and aborted offsets are right after a failover.

With tests/compat/java/TxnOffsetsScenario.java (`hold`): a transactional
producer copies input records and sends the group's offsets in its
transaction; while they are pending the group's coordinator is killed
with SIGKILL and restarted, then the transaction commits (the offsets
move) or aborts (they stay); finally every node is killed and restarted
and the offsets are still those of the committed transaction.

Passes on three Apache Kafka 4.1.1 nodes too (CLUSTER_APACHE_KAFKA=1).
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

import compat_util as cu
from conftest import Cluster, managed
from faults_util import TXN_CLUSTER_PROPS, create_replicated_topic, leader_of, node

JAVA_SRC = Path(cu.__file__).resolve().parent / "java" / "TxnOffsetsScenario.java"
PARTITIONS = 3
PER_PARTITION = 20

# Small internal topics replicated over the three nodes (faults_util).
PROPS = TXN_CLUSTER_PROPS


@pytest.fixture(scope="module")
def ocluster(request):
    request.module._cluster_failed = False
    yield from managed(request, lambda: Cluster(3, props=PROPS), kill=True)


def fill(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for part in range(PARTITIONS):
        for i in range(PER_PARTITION):
            p.produce(topic, value=f"v-{part}-{i}".encode(), key=b"k", partition=part)
    assert p.flush(60) == 0


def parse_offsets(text):
    """'{0=7, 1=-1}' -> {0: 7, 1: -1}"""
    body = text.strip().strip("{}")
    return {int(k): int(v) for k, v in (kv.split("=") for kv in body.split(", ") if kv)}


def committed(bootstrap, group, topic):
    p = cu.run_java_source(JAVA_SRC, bootstrap, "committed", group, topic, PARTITIONS,
                           heap="256m", timeout=150)
    assert "RESULT OK" in p.stdout_text, p.stdout_text + p.stderr_text[-2000:]
    return {int(ln.split()[1]): int(ln.split()[2])
            for ln in p.stdout_text.splitlines() if ln.startswith("COMMITTED ")}


def offsets_partition(group, partitions=int(PROPS["offsets.topic.num.partitions"])):
    """Kafka's `Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`."""
    h = 0
    for ch in group.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def coordinator(cluster, group):
    """The group's coordinator: the leader of its `__consumer_offsets`
    partition."""
    return leader_of(cluster, "__consumer_offsets", offsets_partition(group))


def hold_and_kill(cluster, src, dst, group, tid, outcome, tmp: Path):
    """Runs `hold` in the background; once its offsets are pending, kills
    the group's coordinator with SIGKILL, restarts it, then lets the
    transaction end with `outcome`. Returns the offsets it sent."""
    flag = tmp / f"go-{uuid.uuid4().hex[:6]}"
    cmd = cu.java_source_command(JAVA_SRC, cluster.bootstrap, "hold", src, dst, group, tid,
                                 PARTITIONS, outcome, flag, heap="256m")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, err = [], []
    t_out = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    t_err = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    t_out.start()
    t_err.start()
    try:
        deadline = time.time() + 120
        while not any(ln.startswith("PENDING ") for ln in lines):
            assert proc.poll() is None or any(ln.startswith("PENDING ") for ln in lines), \
                "".join(lines) + "".join(err)[-3000:]
            assert time.time() < deadline, "no PENDING in 120 s\n" + "".join(lines) + "".join(err)[-3000:]
            time.sleep(0.2)
        sent = parse_offsets(next(ln for ln in lines if ln.startswith("PENDING "))[len("PENDING "):])
        victim = node(cluster, coordinator(cluster, group))
        print(f"{outcome}: offsets {sent} pending; kill -9 of coordinator {victim.node_id}")
        victim.kill9()
        victim.start()
        cluster.wait_brokers(3)
        flag.touch()
        proc.wait(timeout=180)
        t_out.join(5)
        out = "".join(lines)
        assert "RESULT OK" in out, out + "".join(err)[-3000:]
        return sent
    finally:
        if proc.poll() is None:
            proc.kill()


def test_pending_offsets_survive_coordinator_kill9(ocluster, tmp_path):
    tag = uuid.uuid4().hex[:6]
    src, dst, group = f"eos-in-{tag}", f"eos-out-{tag}", f"eos-g-{tag}"
    create_replicated_topic(ocluster, src, PARTITIONS)
    create_replicated_topic(ocluster, dst, PARTITIONS)
    fill(ocluster.bootstrap, src)
    # Committed while its coordinator was killed: the offsets move.
    a = hold_and_kill(ocluster, src, dst, group, f"eos-tx-{tag}", "COMMIT", tmp_path)
    assert committed(ocluster.bootstrap, group, src) == a
    # Aborted while its coordinator was killed: they stay.
    b = hold_and_kill(ocluster, src, dst, group, f"eos-tx-{tag}", "ABORT", tmp_path)
    assert b != a
    assert committed(ocluster.bootstrap, group, src) == a
    # Every node killed and restarted: the loaders replay both transactions.
    for n in ocluster.nodes:
        n.kill9()
    for n in ocluster.nodes:
        n.start()
    ocluster.wait_brokers(3)
    assert committed(ocluster.bootstrap, group, src) == a
