#!/usr/bin/env python3
"""Transactions, side by side (issue 14's benchmark): three combined
broker+controller nodes on loopback (tests/cluster/conftest.py), Runnel and
Apache Kafka 4.1.1 in one run. One transactional producer (confluent-kafka,
librdkafka) writes TXNS transactions of RECORDS records of SIZE bytes each
to a topic of PARTS partitions (RF 3, min.insync.replicas=2, records spread
round-robin), `__transaction_state` at RF 3 / min ISR 2, committing each.

It reports, for each broker kind:
  - throughput: committed records/s and MB/s over the measured transactions
    (begin, produce, commit: one after the other, as a read-process-write
    loop runs);
  - commit latency (commit_transaction(): EndTxn, the markers and their
    replication) p50/p99;
  - the whole transaction's time p50/p99;
  - a read_committed check: a consumer reads exactly the committed count.

The first WARMUP transactions are not counted.

    python3 bench/txn.py                       # both kinds
    python3 bench/txn.py --brokers runnel --txns 500 --records 100
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "compat"))
sys.path.insert(0, str(REPO / "tests" / "cluster"))


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def measure(kind: str, txns: int, records: int, size: int, parts: int, warmup: int) -> dict:
    import compat_util as cu
    import conftest as cf
    from faults_util import TXN_CLUSTER_PROPS
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    if cf.APACHE:
        cu.load_env_sh()
    c = cf.Cluster(3, props={**TXN_CLUSTER_PROPS, "offsets.topic.replication.factor": "3"})
    c.start()
    try:
        adm = AdminClient({"bootstrap.servers": c.bootstrap, "socket.timeout.ms": 30000})
        topic = "txn-bench"
        adm.create_topics([NewTopic(topic, num_partitions=parts, replication_factor=3,
                                    config={"min.insync.replicas": "2"})])[topic].result(60)
        deadline = time.time() + 60
        while True:
            md = adm.list_topics(topic=topic, timeout=10).topics.get(topic)
            if md and len(md.partitions) == parts and all(
                    p.leader >= 0 and len(p.isrs) == 3 for p in md.partitions.values()):
                break
            assert time.time() < deadline, "no full ISRs"
            time.sleep(0.5)
        p = Producer({"bootstrap.servers": c.bootstrap, "transactional.id": "txn-bench",
                      "linger.ms": 5, "acks": "all", "transaction.timeout.ms": 60000})
        p.init_transactions(60)
        payload = b"x" * size
        commit_ms, total_ms = [], []
        t_start = None
        for t in range(warmup + txns):
            if t == warmup:
                t_start = time.time()
            began = time.time()
            p.begin_transaction()
            for i in range(records):
                while True:
                    try:
                        p.produce(topic, value=payload, partition=(t * records + i) % parts)
                        break
                    except BufferError:
                        p.poll(0.01)
                p.poll(0)
            p.flush(60)
            before_commit = time.time()
            p.commit_transaction(60)
            done = time.time()
            if t >= warmup:
                commit_ms.append((done - before_commit) * 1000)
                total_ms.append((done - began) * 1000)
        elapsed = time.time() - t_start
        # read_committed sees every committed record
        cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "txn-bench-check",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
        seen = 0
        for part in range(parts):
            lo, hi = cons.get_watermark_offsets(TopicPartition(topic, part), timeout=30)
            seen += hi - lo
        cons.close()
        n = txns * records
        return {
            "kind": kind, "txns": txns, "records": n, "elapsed_s": round(elapsed, 2),
            "records_per_s": n / elapsed, "mb_per_s": n * size / elapsed / 1e6,
            "commit_p50": pct(commit_ms, 0.5), "commit_p99": pct(commit_ms, 0.99),
            "txn_p50": pct(total_ms, 0.5), "txn_p99": pct(total_ms, 0.99),
            # LSO-based end offsets count the records and one marker per
            # partition per transaction
            "committed_offsets": seen,
            "expected_offsets": (warmup + txns) * records + (warmup + txns) * min(parts, records),
        }
    finally:
        keep = os.environ.get("TXN_BENCH_KEEP") == "1"
        if keep:
            print(f"kept {c.work}", file=sys.stderr)
        c.close(keep=keep)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--brokers", default="runnel,kafka")
    p.add_argument("--txns", type=int, default=300)
    p.add_argument("--records", type=int, default=100)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        r = measure(a.one, a.txns, a.records, a.size, a.partitions, a.warmup)
        print("RESULT " + json.dumps(r), flush=True)
        return 0
    from side_by_side import run_kinds
    rows = run_kinds(__file__, a.brokers.split(","), [
        "--txns", str(a.txns), "--records", str(a.records), "--size", str(a.size),
        "--partitions", str(a.partitions), "--warmup", str(a.warmup)])
    print(f"{a.txns} transactions of {a.records} x {a.size} B records, {a.partitions} partitions, "
          f"RF 3, 3 combined nodes on one host")
    print("| broker | records/s | MB/s | commit p50 / p99 (ms) | transaction p50 / p99 (ms) "
          "| read_committed offsets (expected) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['kind']} | {r['records_per_s']:.0f} | {r['mb_per_s']:.2f} "
              f"| {r['commit_p50']:.1f} / {r['commit_p99']:.1f} | {r['txn_p50']:.1f} / {r['txn_p99']:.1f} "
              f"| {r['committed_offsets']} ({r['expected_offsets']}) |")
    if len(rows) == 2:
        ru, ka = rows
        print(f"ratios runnel/kafka: throughput {ru['records_per_s'] / ka['records_per_s']:.2f}x, "
              f"commit p50 {ru['commit_p50'] / ka['commit_p50']:.2f}x, "
              f"commit p99 {ru['commit_p99'] / ka['commit_p99']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
