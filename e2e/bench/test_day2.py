"""Day-2 operations on real nodes, measured (a benchmark, not a test: it prints figures and
asserts only that things happened and nothing acknowledged was lost).

    flock /run/runnel-helper-node-e2e.lock e2e/node/run --exec e2e/node/with-cluster-dns \
        env E2E_REPLICAS=3 python3 -m pytest -p no:cacheprovider -s e2e/bench/test_day2.py

A KafkaCluster of 3 brokers (3 dedicated controllers) holding DAY2_MB of 1 KiB records in a
12-partition RF=2 topic:
  - scale 3 -> 5 (automatic rebalance): seconds until every broker holds its share and the
    cluster is Ready, and the bytes moved (partition sizes from kafka-log-dirs, summed over
    the replicas that changed broker);
  - scale 5 -> 3 (drain first): the same;
  - a full rolling restart (a config change) under acks=all load (RF=3, min ISR 2): produce
    p50/p99 before and during the roll, and unavailable-partition seconds (partitions with no
    leader, sampled every 0.5 s through Metadata).
"""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import kube  # noqa: E402
from load import create_topic  # noqa: E402
from test_operator import (CLUSTER, apply_obj, free_the_nodes, installed, operator,  # noqa: E402,F401
                           sample, wait_cond)

REPO = Path(__file__).resolve().parents[2]
DATA_MB = int(os.environ.get("DAY2_MB", "200"))


def admin(bs):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bs, "socket.timeout.ms": 10000})


def replicas_of(bs, topic):
    t = admin(bs).list_topics(topic=topic, timeout=10).topics[topic]
    return {p.id: set(p.replicas) for p in t.partitions.values()}


def partition_sizes(bs, topic):
    """partition -> largest replica size in bytes (kafka-log-dirs)."""
    out = subprocess.run([str(REPO / "scripts/kafka-tool"), "log-dirs", "--bootstrap-server", bs,
                          "--describe", "--topic-list", topic], capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("{"))
    sizes = {}
    for b in json.loads(line)["brokers"]:
        for d in b["logDirs"]:
            for p in d["partitions"]:
                name = p["partition"]
                if name.rsplit("-", 1)[0] == topic:
                    i = int(name.rsplit("-", 1)[1])
                    sizes[i] = max(sizes.get(i, 0), p["size"])
    return sizes


def moved_bytes(before, after, sizes):
    return sum(sizes.get(p, 0) * len(after[p] - before.get(p, set())) for p in after)


def fill(bs, topic, mb):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 20, "batch.size": 262144})
    value = b"x" * 1024
    for i in range(mb * 1024):
        while True:
            try:
                p.produce(topic, key=str(i).encode(), value=value)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(300) == 0


class LatencyLoad:
    """acks=all produce at a steady rate; delivery latency per record, and failures."""

    def __init__(self, bs, topic, rate=200):
        self.bs, self.topic, self.rate = bs, topic, rate
        self.lat, self.failed, self.acked = [], [], 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def _run(self):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.bs, "acks": "all", "enable.idempotence": True,
                      "linger.ms": 0, "message.timeout.ms": 120000})

        def done(err, msg, t0):
            if err is not None:
                self.failed.append(str(err))
            else:
                self.acked += 1
                self.lat.append((time.monotonic(), (time.monotonic() - t0) * 1000))
        i = 0
        while not self._stop.is_set():
            t0 = time.monotonic()
            p.produce(self.topic, key=str(i), value=b"y" * 1024, on_delivery=lambda e, m, t0=t0: done(e, m, t0))
            i += 1
            p.poll(0)
            time.sleep(1 / self.rate)
        p.flush(130)

    def window(self, t0, t1):
        return sorted(ms for t, ms in self.lat if t0 <= t <= t1)

    def stop(self):
        self._stop.set()
        self._t.join(140)


def pct(xs, q):
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def test_day2(operator, replicas):
    if replicas < 3:
        import pytest
        pytest.skip("needs three nodes")
    free_the_nodes()
    ns = f"day2-{uuid.uuid4().hex[:5]}"
    kube.create_namespace(ns)
    bs = f"{CLUSTER}-kafka-bootstrap.{ns}.svc:9092"
    figures = {}
    try:
        kc = sample("kafkacluster.yaml", ns, replicas=3)
        kc["spec"]["config"] = {"num.partitions": 3, "auto.create.topics.enable": False,
                                "offsets.topic.replication.factor": 2,
                                "transaction.state.log.replication.factor": 2,
                                "transaction.state.log.min.isr": 1}
        kc["spec"]["controllers"] = {"replicas": 3, "storage": {"size": "1Gi"}}
        apply_obj(kc)
        wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=300)
        create_topic(bs, "day2-data", partitions=12, rf=2, min_isr=1)
        t0 = time.monotonic()
        fill(bs, "day2-data", DATA_MB)
        figures[f"fill {DATA_MB} MB (s)"] = time.monotonic() - t0

        def balanced(n):
            reps = replicas_of(bs, "day2-data")
            counts = [sum(b in r for r in reps.values()) for b in range(n)]
            return counts if min(counts) >= 24 // n and max(counts) - min(counts) <= 1 else None

        for frm, to in (() if os.environ.get("DAY2_SKIP_SCALE") else ((3, 5), (5, 3))):
            before = replicas_of(bs, "day2-data")
            sizes = partition_sizes(bs, "day2-data")
            t0 = time.monotonic()
            kc["spec"]["replicas"] = to
            apply_obj(kc)

            def done():
                if kube.get("statefulset", f"{CLUSTER}-broker", ns)["spec"]["replicas"] != to:
                    return None
                if to < frm:
                    pods = json.loads(kube.kubectl("get", "pods", "-n", ns, "-l",
                                                   "app.kubernetes.io/component=broker", "-o", "json"))["items"]
                    if len(pods) != to:
                        return None
                return balanced(to)
            counts = kube.wait_for(f"scale {frm}->{to} balanced", done, 900, interval=1)
            wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=300)
            secs = time.monotonic() - t0
            after = replicas_of(bs, "day2-data")
            moved = moved_bytes(before, after, sizes)
            figures[f"scale {frm}->{to}: seconds to balanced + Ready"] = secs
            figures[f"scale {frm}->{to}: MB moved"] = moved / 1e6
            figures[f"scale {frm}->{to}: replicas per broker after"] = counts

        # A full roll under acks=all load.
        create_topic(bs, "day2-roll", partitions=6, rf=3, min_isr=2)
        load = LatencyLoad(bs, "day2-roll").start()
        time.sleep(30)
        steady = (time.monotonic() - 25, time.monotonic())
        unavailable = [0.0]
        sampling = threading.Event()

        last_leaders = [None]

        def sample_leaders():
            while not sampling.is_set():
                try:
                    md = admin(bs).list_topics(timeout=5)
                    off = [f"{t.topic}-{p.id}" for t in md.topics.values() if not t.topic.startswith("__")
                           for p in t.partitions.values() if p.leader < 0]
                    # The roll's timeline: leaders of the load's topic as they change,
                    # to line up with the slow deliveries below.
                    t = md.topics.get("day2-roll")
                    leaders = t and [t.partitions[i].leader for i in sorted(t.partitions)]
                    if leaders and leaders != last_leaders[0]:
                        last_leaders[0] = leaders
                        print(f"  {time.monotonic() - t_roll:6.1f}s: leaders {leaders}, brokers {sorted(md.brokers)}")
                    unavailable[0] += 0.5 * len(off)
                    if off:
                        print(f"  {time.monotonic() - t_roll:6.1f}s: no leader (Metadata from {md.orig_broker_name}): {off}")
                except Exception:  # noqa: BLE001 - a failed sample is skipped
                    pass
                time.sleep(0.5)
        pods = [f"{CLUSTER}-broker-{p}" for p in range(3)]
        before_uids = {n: kube.get("pod", n, ns)["metadata"]["uid"] for n in pods}
        t_roll = time.monotonic()
        print(f"  roll starts at {time.strftime('%H:%M:%S', time.gmtime())} UTC")
        sampler = threading.Thread(target=sample_leaders, daemon=True)
        sampler.start()
        kc["spec"]["config"]["log.retention.hours"] = 150
        apply_obj(kc)
        kube.wait_for("every broker restarted", lambda: all(
            (p := kube.get("pod", n, ns)) and p["metadata"]["uid"] != before_uids[n] and kube.pod_ready(p)
            for n in pods), 600, interval=1)
        wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=300)
        t_end = time.monotonic()
        sampling.set()
        sampler.join(10)
        load.stop()
        s, r = load.window(*steady), load.window(t_roll, t_end)
        figures["roll: seconds"] = t_end - t_roll
        figures["roll: unavailable partition-seconds"] = unavailable[0]
        figures["produce p50 ms, steady / during roll"] = (pct(s, 0.5), pct(r, 0.5))
        figures["produce p99 ms, steady / during roll"] = (pct(s, 0.99), pct(r, 0.99))
        figures["roll: p99 ratio (during / steady)"] = pct(r, 0.99) / pct(s, 0.99) if s else float("nan")
        # When the slow deliveries were acknowledged (seconds into the roll), to line up
        # with the operator's restarts and the controllers' logs.
        slow = [(round(t - t_roll, 1), round(ms)) for t, ms in load.lat if t_roll <= t <= t_end and ms > 200]
        figures["roll: deliveries over 200 ms (s into roll, ms)"] = slow[:40]
        if unavailable[0] > 0 or (r and pct(r, 0.99) > 1000):
            # Keep the pods' logs (the controllers restarted in the roll saw it) for a
            # look after the platform is gone.
            out = Path(os.environ.get("DAY2_LOG_DIR", "/tmp/day2-logs")) / ns
            out.mkdir(parents=True, exist_ok=True)
            for pod in json.loads(kube.kubectl("get", "pods", "-n", ns, "-o", "json"))["items"]:
                name = pod["metadata"]["name"]
                (out / f"{name}.log").write_text(kube.kubectl("logs", "-n", ns, name, check=False) or "")
            figures["roll: pod logs kept in"] = str(out)
        figures["roll: failed deliveries"] = len(load.failed)
        figures["roll: acked"] = load.acked
        if r:
            figures["produce mean ms during roll"] = statistics.mean(r)
    finally:
        print("\n== day-2 benchmark (real nodes)")
        for k, v in figures.items():
            print(f"  {k:50s} {v}")
        if os.environ.get("DAY2_KEEP") != "1":
            kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        else:
            print(f"  kept namespace {ns}")
