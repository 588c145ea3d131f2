"""Transactions on a three-node cluster (issue 14): the transaction
coordinator writes its markers to partition leaders on the other brokers
(WriteTxnMarkers between brokers), and every replica keeps the last stable
offset and the aborted transactions from the replicated log.

- The Java KafkaProducer scenario of tests/compat/test_transactions.py on a
  six-partition RF=3 topic whose leaders are spread over the three brokers
  (so most are not on the coordinator's broker): read_committed sees the
  committed records only, never the aborted or open ones.
- kill -9 of every node, restart: a read_committed consumer still sees
  exactly the committed records (LSO and aborted transactions rebuilt from
  the log), and a transaction left open by a producer that is gone is
  aborted by its timeout.

Passes on three Apache Kafka 4.1.1 nodes too (CLUSTER_APACHE_KAFKA=1).
"""

from __future__ import annotations

import uuid

import pytest

import compat_util as cu  # noqa: F401 - the cluster conftest puts tests/compat on sys.path
from conftest import Cluster, managed
from faults_util import create_replicated_topic, partition_state, wait_full_isr
from txn_util import PER_TXN, producer, read, run_java_scenario, send, values

PROPS = {
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "transaction.state.log.num.partitions": "3",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
}
PARTITIONS = 6


@pytest.fixture(scope="module")
def tcluster(request):
    request.module._cluster_failed = False
    yield from managed(request, lambda: Cluster(3, props=PROPS), kill=True)


def test_java_transactions_with_leaders_on_other_brokers(tcluster):
    topic = f"txn-cluster-{uuid.uuid4().hex[:6]}"
    create_replicated_topic(tcluster, topic, PARTITIONS)
    leaders = {p: st[0] for p, st in partition_state(tcluster.bootstrap, topic).items()}
    assert len(set(leaders.values())) >= 2, f"leaders not spread: {leaders}"
    run_java_scenario(tcluster.bootstrap, topic, PARTITIONS)


def test_committed_view_survives_kill9_and_timeout_aborts(tcluster):
    topic = f"txn-restart-{uuid.uuid4().hex[:6]}"
    create_replicated_topic(tcluster, topic, PARTITIONS)
    p = producer(tcluster.bootstrap, f"txn-restart-{uuid.uuid4().hex[:8]}")
    p.begin_transaction()
    send(p, topic, PARTITIONS, "c1")
    p.commit_transaction(30)
    p.begin_transaction()
    send(p, topic, PARTITIONS, "a")
    p.flush(30)
    p.abort_transaction(30)
    committed = values("c1", PARTITIONS)
    assert read(tcluster.bootstrap, topic, PARTITIONS, "read_committed", len(committed)) == committed
    # A transaction left open (1 s timeout) by a producer that goes away.
    q = producer(tcluster.bootstrap, f"txn-stuck-{uuid.uuid4().hex[:8]}", timeout_ms=3000)
    q.begin_transaction()
    send(q, topic, PARTITIONS, "stuck")
    q.flush(30)
    for n in tcluster.nodes:
        n.kill9()
    for n in tcluster.nodes:
        n.start()
    tcluster.wait_brokers(3)
    wait_full_isr(tcluster, topic, PARTITIONS, timeout=120)
    # The stuck transaction is aborted by its timeout: read_committed moves
    # past it (the LSO no longer stops at its first record) and never shows it.
    everything = len(committed) + 2 * PER_TXN * PARTITIONS
    got = read(tcluster.bootstrap, topic, PARTITIONS, "read_committed", len(committed), tries=3)
    assert got == committed
    all_records = read(tcluster.bootstrap, topic, PARTITIONS, "read_uncommitted", everything)
    assert all_records == sorted(committed + values("a", PARTITIONS) + values("stuck", PARTITIONS))
    # Once the timeout aborted it, a new transaction's records are readable.
    r = producer(tcluster.bootstrap, f"txn-after-{uuid.uuid4().hex[:8]}")
    r.begin_transaction()
    send(r, topic, PARTITIONS, "c2")
    r.commit_transaction(60)
    want = sorted(committed + values("c2", PARTITIONS))
    assert read(tcluster.bootstrap, topic, PARTITIONS, "read_committed", len(want), tries=60) == want
