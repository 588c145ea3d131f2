"""A Kafka Streams `exactly_once_v2` word count on three nodes (issue 14):
lines -> words -> groupBy(word) (a repartition topic) -> count() (a
RocksDB store and its changelog topic) -> output, by the Streams app
tests/cluster/java/StreamsWordCount.java (Kafka Streams 4.1.1, installed by
scripts/install-test-deps.sh).

Each run checks, on the output read with read_committed, that every
word's last count is exactly its number of occurrences in the input and
that each word's counts only ever increase (a record processed twice
would show a count again or skip to a wrong total):
- a plain run;
- a run during which the transaction coordinator of one of the app's
  producers (found with `kafka-transactions list`; it also leads some of
  the input and output partitions) is killed with SIGKILL and restarted;
- a run whose Streams app is killed with SIGKILL mid-run and restarted
  on the same state directory.

Passes on three Apache Kafka 4.1.1 nodes too (CLUSTER_APACHE_KAFKA=1).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import compat_util as cu
from conftest import Cluster, managed
from faults_util import TXN_CLUSTER_PROPS, create_replicated_topic, leader_of, node

JAVA_SRC = Path(__file__).resolve().parent / "java" / "StreamsWordCount.java"
PARTITIONS = 3
VOCAB = [f"w{i:02d}" for i in range(30)]
# Small internal topics replicated over the three nodes (faults_util).
PROPS = TXN_CLUSTER_PROPS


@pytest.fixture(scope="module")
def scluster(request):
    request.module._cluster_failed = False
    yield from managed(request, lambda: Cluster(3, props=PROPS), kill=True)


def make_lines(n, seed):
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(VOCAB) for _ in range(5)) for _ in range(n)]


def produce(bootstrap, topic, lines):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": 120000})
    for i, line in enumerate(lines):
        p.produce(topic, value=line.encode(), partition=i % PARTITIONS)
    assert p.flush(120) == 0


def expected(lines):
    return dict(Counter(w for line in lines for w in line.split()))


class App:
    def __init__(self, bootstrap, app_id, src, dst, state: Path):
        self.args = (bootstrap, app_id, src, dst, state, 3)
        self.proc = None
        self.log = state.parent / f"{app_id}.log"

    def start(self):
        if not os.environ.get("KAFKA_STREAMS_LIBS"):
            cu.load_env_sh()
        libs = os.environ.get("KAFKA_STREAMS_LIBS", "")
        if not list(Path(libs).glob("kafka-streams-*.jar")):
            pytest.fail(f"no kafka-streams jar in KAFKA_STREAMS_LIBS={libs!r}; run scripts/install-test-deps.sh")
        cmd = cu.java_source_command(JAVA_SRC, *self.args, heap="384m")
        cp = cmd.index("-cp") + 1
        cmd[cp] = f"{cmd[cp]}:{libs}/*"
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def tail(self, n=60):
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


class Output:
    """The output topic read with read_committed, incrementally: every
    word's counts in order."""

    def __init__(self, bootstrap, topic):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:6]}",
                           "isolation.level": "read_committed", "enable.auto.commit": False,
                           "auto.offset.reset": "earliest"})
        self.c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        self.seen: dict[str, list[int]] = {}

    def poll(self, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            m = self.c.poll(0.2)
            if m is None or m.error():
                continue
            self.seen.setdefault(m.key().decode(), []).append(int(m.value().decode()))

    def last(self):
        return {w: c[-1] for w, c in self.seen.items()}

    def not_increasing(self):
        return {w: c for w, c in self.seen.items() if any(b <= a for a, b in zip(c, c[1:]))}

    def close(self):
        self.c.close()


def wait_counts(out: Output, want, app: App, timeout=150):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out.poll(1)
        if out.last() == want:
            return
    raise AssertionError(f"counts never matched: got {out.last()}, want {want}\n--- app ---\n{app.tail()}")


def setup(cluster, tmp_path, tag):
    src, dst = f"wc-in-{tag}", f"wc-out-{tag}"
    create_replicated_topic(cluster, src, PARTITIONS)
    create_replicated_topic(cluster, dst, PARTITIONS)
    app = App(cluster.bootstrap, f"wc-{tag}", src, dst, tmp_path / f"state-{tag}")
    return src, dst, app


def run_word_count(cluster, tmp_path, fault=None):
    tag = uuid.uuid4().hex[:6]
    src, dst, app = setup(cluster, tmp_path, tag)
    first, second = make_lines(300, tag), make_lines(300, tag + "b")
    produce(cluster.bootstrap, src, first)
    out = Output(cluster.bootstrap, dst)
    try:
        app.start()
        # Mid-run: some output is there, not all of it.
        deadline = time.time() + 120
        while not out.seen and time.time() < deadline:
            out.poll(1)
        assert out.seen, f"no output in 120 s\n{app.tail()}"
        if fault:
            fault(app, dst)
        produce(cluster.bootstrap, src, second)
        wait_counts(out, expected(first + second), app)
        assert out.not_increasing() == {}, "a word's count repeated or went down (processed twice)"
    finally:
        app.stop()
        out.close()


def test_streams_eos_word_count_exact(scluster, tmp_path):
    run_word_count(scluster, tmp_path)


def txn_coordinator(cluster, app_id):
    """The transaction coordinator of one of the app's producers, as
    `kafka-transactions list` (ListTransactions) shows it, or None."""
    out = cu.kafka_tool("transactions", "--bootstrap-server", cluster.bootstrap, "list",
                        check=False).stdout_text
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 2 and cols[0].startswith(f"{app_id}-") and cols[1].isdigit():
            return int(cols[1])
    return None


def test_streams_eos_survives_broker_kill9(scluster, tmp_path):
    def kill_leader(app, dst):
        app_id = app.args[1]
        coordinator = txn_coordinator(scluster, app_id)
        victim_id = coordinator if coordinator is not None else leader_of(scluster, dst, 0)
        victim = node(scluster, victim_id)
        led = [f"{t}-{p}" for t in (dst, dst.replace("wc-out-", "wc-in-")) for p in range(PARTITIONS)
               if leader_of(scluster, t, p) == victim_id]
        print(f"kill -9 of node {victim_id} (transaction coordinator of {app_id}: "
              f"{coordinator == victim_id}; leader of {led})")
        victim.kill9()
        time.sleep(2)
        victim.start()
        scluster.wait_brokers(3)
    run_word_count(scluster, tmp_path, kill_leader)


def test_streams_eos_survives_app_kill9(scluster, tmp_path):
    def kill_app(app, dst):
        app.kill9()
        app.start()
    run_word_count(scluster, tmp_path, kill_app)


@pytest.mark.skipif(not os.environ.get("EOS_CRASH_LOOP"),
                    reason="the long crash loop: set EOS_CRASH_LOOP=<rounds>")
def test_streams_eos_crash_loop(scluster, tmp_path):
    """EOS_CRASH_LOOP rounds, each producing more input and then killing
    with SIGKILL either the Streams app (restarted on its state directory)
    or a transaction coordinator of the app (restarted); the counts are
    exact at the end and never went backwards or repeated."""
    rounds = int(os.environ["EOS_CRASH_LOOP"])
    tag = uuid.uuid4().hex[:6]
    src, dst, app = setup(scluster, tmp_path, tag)
    out = Output(scluster.bootstrap, dst)
    lines = []
    try:
        app.start()
        for r in range(rounds):
            chunk = make_lines(200, f"{tag}-{r}")
            lines += chunk
            produce(scluster.bootstrap, src, chunk)
            out.poll(random.uniform(0.5, 4))
            if r % 2 == 0:
                print(f"round {r}: kill -9 of the app")
                app.kill9()
                app.start()
            else:
                victim_id = txn_coordinator(scluster, app.args[1]) or leader_of(scluster, dst, 0)
                print(f"round {r}: kill -9 of node {victim_id}")
                victim = node(scluster, victim_id)
                victim.kill9()
                victim.start()
                scluster.wait_brokers(3)
        wait_counts(out, expected(lines), app, timeout=300)
        assert out.not_increasing() == {}, "a word's count repeated or went down (processed twice)"
    finally:
        app.stop()
        out.close()
