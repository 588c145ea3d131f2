#!/usr/bin/env python3
"""Scale check, side by side: three brokers holding TOPICS x PARTS
partitions at replication factor 3. For Runnel and for Apache Kafka 4.1.1
(each as three combined broker+controller processes on loopback, started by
tests/cluster/conftest.py) it measures:

  - the time to create the topics until every partition has a leader and a
    full ISR;
  - each broker's resident memory then;
  - the time, after kill -9 of all three and a restart, until every
    partition has a leader and a full ISR again.

    python3 bench/scale.py                      # both, 30 topics x 100 partitions
    python3 bench/scale.py --brokers runnel --topics 10 --partitions 50

RSS includes each process's baseline (for Kafka, its JVM heap).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "compat"))
sys.path.insert(0, str(REPO / "tests" / "cluster"))


def measure(kind: str, topics: int, parts: int) -> str:
    """One broker kind, in this process (CLUSTER_APACHE_KAFKA must already
    say which: conftest reads it at import)."""
    import conftest as cf
    import compat_util as cu
    from confluent_kafka.admin import AdminClient, NewTopic
    if cf.APACHE:
        cu.load_env_sh()
    c = cf.Cluster(3, props={"offsets.topic.replication.factor": "1"})
    c.start()
    try:
        adm = AdminClient({"bootstrap.servers": c.bootstrap, "socket.timeout.ms": 120000})
        names = [f"scale-{i}" for i in range(topics)]
        total = topics * parts

        def ready(a) -> int:
            md = a.list_topics(timeout=60)
            n = 0
            for name in names:
                t = md.topics.get(name)
                if t is not None:
                    n += sum(1 for p in t.partitions.values() if p.leader >= 0 and len(p.isrs) == 3)
            return n

        t0 = time.time()
        fs = adm.create_topics([NewTopic(n, num_partitions=parts, replication_factor=3) for n in names],
                               request_timeout=300)
        for f in fs.values():
            f.result(600)
        while ready(adm) < total:
            time.sleep(1)
        created = time.time() - t0
        rss = []
        for n in c.nodes:
            with open(f"/proc/{n.pid()}/status") as f:
                rss.append(int(next(x for x in f if x.startswith("VmRSS")).split()[1]) // 1024)
        for n in c.nodes:
            n.kill9()
        t1 = time.time()
        for n in c.nodes:
            n.start()
        c.wait_brokers(3, timeout=600)
        adm = AdminClient({"bootstrap.servers": c.bootstrap, "socket.timeout.ms": 120000})
        while True:
            try:
                if ready(adm) >= total:
                    break
            except Exception:  # noqa: BLE001 - the cluster is still coming up
                pass
            time.sleep(1)
        restart = time.time() - t1
        return (f"| {kind} | {total} | {created:.1f} s | {restart:.1f} s | "
                f"{', '.join(str(r) for r in rss)} MB |")
    finally:
        for n in c.nodes:
            n.kill9()
        c.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--brokers", default="runnel,kafka")
    p.add_argument("--topics", type=int, default=30)
    p.add_argument("--partitions", type=int, default=100)
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print(measure(a.one, a.topics, a.partitions), flush=True)
        return 0
    rows = []
    for kind in a.brokers.split(","):
        # A fresh process per broker kind: the cluster fixtures read
        # CLUSTER_APACHE_KAFKA when they are imported.
        env = dict(os.environ, CLUSTER_APACHE_KAFKA="1" if kind == "kafka" else "0")
        r = subprocess.run([sys.executable, __file__, "--one", kind, "--topics", str(a.topics),
                            "--partitions", str(a.partitions)], env=env, capture_output=True, text=True)
        row = [x for x in r.stdout.splitlines() if x.startswith("|")]
        rows.append(row[-1] if row else f"| {kind} | failed (exit {r.returncode}): {r.stderr.strip()[-300:]} |")
    print("| broker | partitions (RF=3) | create to full ISR | kill -9 all, restart to full ISR | RSS per broker |")
    print("|---|---:|---:|---:|---|")
    for r in rows:
        print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
