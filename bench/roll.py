#!/usr/bin/env python3
"""Rolling restart, side by side: three combined broker+controller nodes on
loopback (tests/cluster/conftest.py), Runnel and Apache Kafka 4.1.1 in one
run. A topic of PARTS partitions at replication factor 3 with
min.insync.replicas=2 takes RATE records/s from one idempotent acks=all
producer (confluent-kafka). After a steady period, each node in turn is
stopped (SIGTERM: controlled shutdown), started again and waited for until
it is back in every ISR, the active controller last, as the operator rolls.

It reports, for each broker kind:
  - produce latency (acknowledgement time) p50/p99, steady and during the
    roll, and their ratio (the operator's goal: p99 within 2x of steady);
  - unavailable partition-seconds (partitions without a leader, sampled
    every 0.5 s through Metadata);
  - failed deliveries and deliveries slower than 200 ms.

The first 5 s of load are a warm-up, not counted; after each node is back
in every ISR the roll waits 5 s before the next one.

    python3 bench/roll.py                          # both kinds
    python3 bench/roll.py --brokers runnel --rate 500

The Kubernetes version of this measure (with the operator's roll) is
e2e/bench/test_day2.py; this one runs without Kubernetes so that Kafka can
be measured beside Runnel.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
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


class Load:
    """RATE records/s, acks=all, idempotent; each acknowledgement's latency
    with the time it was sent."""

    def __init__(self, bootstrap: str, topic: str, rate: int):
        from confluent_kafka import Producer
        conf = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                "linger.ms": 0, "message.timeout.ms": 120000}
        if os.environ.get("ROLL_DEBUG"):  # librdkafka debug contexts, to stderr
            conf["debug"] = os.environ["ROLL_DEBUG"]
        self.p = Producer(conf)
        self.topic, self.rate = topic, rate
        self.lat: list[tuple[float, float]] = []   # (sent at, ms)
        self.failed = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def _run(self):
        i = 0
        t0 = time.time()
        while not self._stop.is_set():
            due = t0 + i / self.rate
            now = time.time()
            if due > now:
                self.p.poll(min(due - now, 0.05))
                continue
            sent = time.time()

            def done(err, _m, sent=sent):
                if err is not None:
                    self.failed += 1
                else:
                    self.lat.append((sent, (time.time() - sent) * 1000))
            while True:
                try:
                    self.p.produce(self.topic, value=f"r{i}".encode(), on_delivery=done)
                    break
                except BufferError:
                    self.p.poll(0.01)
            i += 1
            self.p.poll(0)

    def stop(self):
        self._stop.set()
        self._t.join(10)
        self.p.flush(120)


def measure(kind: str, rate: int, parts: int, steady_s: float, settle_s: float = 5.0) -> dict:
    import compat_util as cu
    import conftest as cf
    from confluent_kafka.admin import AdminClient, NewTopic
    if cf.APACHE:
        cu.load_env_sh()
    c = cf.Cluster(3, props={"offsets.topic.replication.factor": "3"})
    c.start()
    try:
        adm = AdminClient({"bootstrap.servers": c.bootstrap, "socket.timeout.ms": 30000})
        topic = "roll"
        adm.create_topics([NewTopic(topic, num_partitions=parts, replication_factor=3,
                                    config={"min.insync.replicas": "2"})])[topic].result(60)

        def layout():
            md = AdminClient({"bootstrap.servers": c.bootstrap, "socket.timeout.ms": 5000}).list_topics(timeout=5)
            t = md.topics.get(topic)
            return [] if t is None else list(t.partitions.values())

        def full():
            ps = layout()
            return len(ps) == parts and all(p.leader >= 0 and len(p.isrs) == 3 for p in ps)
        deadline = time.time() + 60
        while not full():
            assert time.time() < deadline, "no full ISRs"
            time.sleep(0.5)

        load = Load(c.bootstrap, topic, rate).start()
        time.sleep(5)   # warm-up (connections, metadata): not part of the steady state
        steady_start = time.time()
        unavailable = [0.0]
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                t = time.time()
                try:
                    n = sum(1 for p in layout() if p.leader < 0)
                except Exception:  # noqa: BLE001 - a missed sample counts nothing
                    n = 0
                time.sleep(max(0.0, 0.5 - (time.time() - t)))
                unavailable[0] += n * 0.5
        time.sleep(steady_s)
        roll_start = time.time()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def active_controller():
            p = cu.kafka_tool("metadata-quorum", "--bootstrap-server", c.bootstrap, "describe", "--status",
                              timeout=90, check=False)
            for line in p.stdout_text.splitlines():
                if line.startswith("LeaderId:"):
                    return int(line.split(":", 1)[1])
            return None
        active = active_controller()
        order = [n for n in c.nodes if n.node_id != active] + [n for n in c.nodes if n.node_id == active]
        events = []

        def mark(what):
            events.append((round(time.time() - roll_start, 2), what))
        for n in order:
            mark(f"stop {n.node_id}")
            n.stop()
            mark(f"start {n.node_id}")
            n.start()
            deadline = time.time() + 180
            while True:
                try:
                    if full():
                        break
                except Exception:  # noqa: BLE001 - retried until the deadline
                    pass
                assert time.time() < deadline, f"node {n.node_id} never rejoined every ISR"
                time.sleep(0.5)
            mark(f"{n.node_id} in every ISR")
            time.sleep(settle_s)   # as the operator waits before the next restart
        roll_end = time.time()
        time.sleep(2)
        sampling.set()
        sampler.join(5)
        load.stop()
        steady = [ms for at, ms in load.lat if steady_start <= at < roll_start]
        during = [ms for at, ms in load.lat if roll_start <= at <= roll_end]
        return {
            "kind": kind, "roll_s": round(roll_end - roll_start, 1),
            "acked": len(load.lat), "failed": load.failed,
            "unavailable_partition_s": unavailable[0],
            "steady_p50": pct(steady, 0.5), "steady_p99": pct(steady, 0.99),
            "roll_p50": pct(during, 0.5), "roll_p99": pct(during, 0.99),
            "over_200ms": sum(1 for ms in during if ms > 200),
            "max_ms": max(during) if during else float("nan"),
            "events": events,
            "roll_start_utc": time.strftime("%H:%M:%S", time.gmtime(roll_start)) + f"{roll_start % 1:.3f}"[1:],
            "slow": [(round(at - roll_start, 2), round(ms)) for at, ms in load.lat
                     if roll_start <= at <= roll_end and ms > 200][:60],
        }
    finally:
        keep = os.environ.get("ROLL_KEEP") == "1"
        if keep:
            print(f"kept {c.work}", file=sys.stderr)
        c.close(keep=keep)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--brokers", default="runnel,kafka")
    p.add_argument("--rate", type=int, default=200)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--steady", type=float, default=20.0)
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print("RESULT " + json.dumps(measure(a.one, a.rate, a.partitions, a.steady)), flush=True)
        return 0
    from side_by_side import run_kinds
    rows = run_kinds(__file__, a.brokers.split(","), ["--rate", str(a.rate), "--partitions", str(a.partitions),
                                                       "--steady", str(a.steady)])
    for r in rows:
        print(f"{r['kind']}: roll events {r['events']}", file=sys.stderr)
        print(f"{r['kind']}: slow deliveries (s into the roll, ms) {r['slow']}", file=sys.stderr)
    print(f"| broker | roll | acked | failed | unavailable partition-s | p50 steady / roll (ms) "
          f"| p99 steady / roll (ms) | p99 ratio | > 200 ms | max (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = r["roll_p99"] / r["steady_p99"] if r["steady_p99"] else float("nan")
        print(f"| {r['kind']} | {r['roll_s']} s | {r['acked']} | {r['failed']} | {r['unavailable_partition_s']:.1f} "
              f"| {r['steady_p50']:.1f} / {r['roll_p50']:.1f} | {r['steady_p99']:.1f} / {r['roll_p99']:.1f} "
              f"| {ratio:.1f}x | {r['over_200ms']} | {r['max_ms']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
