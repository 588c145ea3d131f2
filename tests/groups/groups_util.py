"""Helpers for the consumer-group suite: worker processes, producing, checks."""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent / "compat") not in sys.path:
    sys.path.append(str(HERE.parent / "compat"))

import compat_util as cu  # noqa: E402

# Broker settings the suite relies on (both brokers get exactly these).
#  - no initial rebalance delay (Kafka's shipped server.properties also uses 0);
#  - classic session timeouts: the clients use 6000 ms, Kafka's default minimum;
#  - KIP-848 (group.protocol=consumer): the session timeout and heartbeat
#    interval are broker-side; Kafka's defaults (45 s / 5 s, minimum 45 s / 5 s)
#    would make the kill test take a minute, so the minima are lowered too.
GROUP_OVERRIDES = {
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "6000",
    "group.consumer.min.session.timeout.ms": "6000",
    "group.consumer.session.timeout.ms": "6000",
    "group.consumer.min.heartbeat.interval.ms": "1000",
    "group.consumer.heartbeat.interval.ms": "1000",
}
CONSUMER_SESSION_TIMEOUT_MS = 6000  # group.consumer.session.timeout.ms above

CK_WORKER = HERE / "workers" / "ck_worker.py"
JAVA_SRC = HERE / "java" / "GroupWorker.java"


def now_ms():
    return int(time.time() * 1000)


def wait_until(pred, timeout, what, interval=0.05, detail=None):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            extra = f"\n{detail()}" if detail else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


# ------------------------------------------------------------------ Java

def compile_java(out_dir):
    libs = os.environ.get("KAFKA_LIBS", "")
    if not list(Path(libs).glob("kafka-clients-*.jar")):
        raise AssertionError(f"no kafka-clients jar in KAFKA_LIBS={libs!r}; run scripts/install-test-deps.sh")
    java = os.environ.get("JAVA", "java")
    javac = str(Path(java).with_name("javac")) if os.sep in java else "javac"
    cu.run([javac, "-nowarn", "-Xlint:none", "-cp", f"{libs}/*", "-d", str(out_dir), str(JAVA_SRC)],
           timeout=180)
    return Path(out_dir)


@functools.lru_cache(maxsize=1)
def _cds_archive():
    cds = Path(os.environ.get("KAFKA_HOME", "")) / "cds"
    if (cds / "tools.jsa").exists() and (cds / "stamp").exists():
        stamp = subprocess.run([str(cu.KAFKA_TOOL), "--cds-stamp"], capture_output=True, text=True).stdout.strip()
        if stamp and stamp == (cds / "stamp").read_text().strip():
            return cds / "tools.jsa"
    return None


def java_cmd(classes, main, *args):
    """java with the kafka-tool flags; the tool CDS archive is used when it matches
    (a classpath that extends the archive's classpath is allowed)."""
    libs = os.environ["KAFKA_LIBS"]
    cmd = [os.environ.get("JAVA", "java"), *shlex.split(os.environ.get("KAFKA_TOOL_JVM_OPTS", ""))]
    if _cds_archive():
        cmd.append(f"-XX:SharedArchiveFile={_cds_archive()}")
    cmd += ["-Xlog:disable", "-Xlog:all=warning:stderr",
            f"-Dlog4j2.configurationFile={os.environ.get('KAFKA_TOOL_LOG4J', '')}",
            "-cp", f"{libs}/*:{classes}", main, *args]
    return cmd


# ------------------------------------------------------------------ workers

class Worker:
    """One consumer process (confluent-kafka or Java) speaking JSON lines.

    State kept from its events: assignment (set of partitions), recs
    [(p, o, value)], committed {p: offset} (last successful commit), events.
    """

    def __init__(self, kind, bootstrap, group, topic, name, tmpdir, java_classes=None, *,
                 protocol="classic", assignor=None, instance_id=None, session_timeout_ms=6000,
                 heartbeat_ms=1000, max_poll_ms=60000, extra=None, start=True):
        assert kind in ("ck", "java")
        self.kind, self.group, self.topic, self.name = kind, group, topic, name
        self.protocol = protocol
        self.cfg = {"bootstrap": bootstrap, "group": group, "topic": topic, "topics": [topic],
                    "name": name, "protocol": protocol, "session_timeout_ms": session_timeout_ms,
                    "heartbeat_ms": heartbeat_ms, "max_poll_ms": max_poll_ms}
        if assignor:
            self.cfg["assignor"] = assignor
        if instance_id:
            self.cfg["instance_id"] = instance_id
        if extra:
            self.cfg["extra"] = extra
        self.java_classes = java_classes
        self.stderr_path = Path(tmpdir) / f"{name}.stderr"
        self.cond = threading.Condition()
        self.events = []
        self.assignment = set()
        self.recs = []
        self.committed = {}
        self.closed = False
        self.eof = False
        self.proc = None
        self.killed_at = None
        if start:
            self.start()

    def _cmd(self):
        if self.kind == "ck":
            return [sys.executable, str(CK_WORKER), json.dumps(self.cfg)]
        flat = {k: v for k, v in self.cfg.items() if not isinstance(v, (list, dict))}
        return java_cmd(self.java_classes, "GroupWorker", json.dumps(flat))

    def start(self):
        self.eof = False
        self.proc = subprocess.Popen(self._cmd(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(self.stderr_path, "ab"), start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line.startswith("{"):
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            ev["rt"] = now_ms()
            with self.cond:
                self._apply(ev)
                self.events.append(ev)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def _apply(self, ev):
        kind = ev["ev"]
        if kind == "assigned":
            self.assignment |= set(ev["parts"])
        elif kind in ("revoked", "lost"):
            self.assignment -= set(ev["parts"])
        elif kind == "recs":
            self.recs.extend(tuple(r) for r in ev["recs"])
        elif kind == "commit" and ev.get("ok"):
            for k, off in ev["offsets"].items():
                self.committed[int(k.rsplit(":", 1)[1])] = off
        elif kind == "closed":
            self.closed = True

    # -------------------------------------------------------------- control
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send(self, cmd):
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                v = pred(self)
                if v:
                    return v
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"{self.name}: timed out after {timeout}s waiting for {what}\n"
                                         + self.describe())
                if self.eof:
                    raise AssertionError(f"{self.name}: exited ({self.proc.poll()}) while waiting "
                                         f"for {what}\n" + self.describe())
                self.cond.wait(min(left, 0.5))

    def wait_started(self, timeout=60):
        return self.wait(lambda w: any(e["ev"] == "started" for e in w.events), timeout, "start")

    def status(self, timeout=30):
        n = len([e for e in self.events if e["ev"] == "status"])
        self.send("status")
        self.wait(lambda w: len([e for e in w.events if e["ev"] == "status"]) > n, timeout, "status")
        return [e for e in self.events if e["ev"] == "status"][-1]

    def close(self, timeout=60):
        """Graceful close (the consumer's close(): revoke callback, LeaveGroup unless static)."""
        self.send("close")
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name}: did not exit within {timeout}s of close\n" + self.describe())
        assert self.proc.returncode == 0 and self.closed, \
            f"{self.name}: close failed (exit {self.proc.returncode})\n" + self.describe()

    def kill9(self):
        """kill -9 the worker; returns the kill time (epoch ms)."""
        self.killed_at = now_ms()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        return self.killed_at

    def kill(self):
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    # -------------------------------------------------------------- queries
    def count(self, kind, since=0):
        return len([e for e in self.events[since:] if e["ev"] == kind])

    def callbacks_since(self, idx):
        return [e for e in self.events[idx:] if e["ev"] in ("assigned", "revoked", "lost")]

    def last_gen(self):
        gens = [e["gen"] for e in self.events if "gen" in e and e["ev"] in ("assigned", "status", "revoked")]
        return gens[-1] if gens else None

    def describe(self):
        kinds = Counter(e["ev"] for e in self.events)
        lines = [f"{self.kind} worker {self.name} pid={self.proc.pid if self.proc else None} "
                 f"rc={self.proc.poll() if self.proc else None} assignment={sorted(self.assignment)} "
                 f"recs={len(self.recs)} committed={self.committed} events={dict(kinds)}"]
        for e in self.events:
            if e["ev"] == "recs":
                continue
            if e["ev"] == "commit" and e.get("ok"):
                continue
            lines.append("  " + json.dumps({k: v for k, v in e.items() if k != "rt"})[:400])
        try:
            err = self.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            err = []
        if err:
            # librdkafka repeats its log lines (e.g. while the broker restarts): fold
            # repeats that differ only in the timestamp
            folded = []
            for x in err:
                key = re.sub(r"^%(\d)\|[0-9.]+\|", r"%\1|", x)
                if folded and folded[-1][0] == key:
                    folded[-1][2] += 1
                else:
                    folded.append([key, x, 1])
            shown = [f"{x}  (x{n})" if n > 1 else x for _, x, n in folded]
            lines.append(f"  --- stderr (last 40 of {len(shown)} distinct lines) ---")
            lines += ["  " + x[:400] for x in shown[-40:]]
        return "\n".join(lines)


def assignment_map(ws):
    """{worker name: sorted partitions} for live workers."""
    return {w.name: sorted(w.assignment) for w in ws}


def wait_assignment(ws, partitions, timeout, what="a complete, disjoint assignment", even=True):
    """Wait until the workers' assignments are disjoint and cover range(partitions)
    (and, with even=True, each has partitions/len(ws), the balanced assignment)."""
    def ok():
        seen = []
        for w in ws:
            seen += list(w.assignment)
        if sorted(seen) != list(range(partitions)):
            return False
        if even and any(len(w.assignment) != partitions // len(ws) for w in ws):
            return False
        return assignment_map(ws)
    return wait_until(ok, timeout, what, detail=lambda: f"assignments: {assignment_map(ws)}")


# ------------------------------------------------------------------ data

def produce(bootstrap, topic, values, partitions, offset=0):
    """Produce values round-robin over partitions (value i -> partition (offset+i) % partitions)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
    for i, v in enumerate(values):
        p.produce(topic, value=v.encode(), partition=(offset + i) % partitions, on_delivery=cb)
        if i % 500 == 0:
            p.poll(0)
    left = p.flush(60)
    assert left == 0 and not errors, f"produce failed: {left} undelivered, errors {errors[:3]}"


def values(prefix, n):
    return [f"{prefix}-{i:05d}" for i in range(n)]


def consumed(ws):
    return Counter(v for w in ws for (_, _, v) in w.recs)


def wait_consumed(ws, expected, timeout, what="all records consumed"):
    expected = set(expected)
    return wait_until(lambda: expected <= set(consumed(ws)), timeout, what,
                      detail=lambda: f"missing {len(expected - set(consumed(ws)))} of {len(expected)}, e.g. "
                                     f"{sorted(expected - set(consumed(ws)))[:5]}; assignments {assignment_map(ws)}")


def check_exactly_once(ws, expected, killed=()):
    """Every expected value consumed; nothing unexpected; duplicates only where a
    killed worker read a record its last successful commit did not cover."""
    expected = set(expected)
    seen = consumed(ws)
    missing = expected - set(seen)
    unexpected = set(seen) - expected
    assert not missing, f"{len(missing)} records never consumed, e.g. {sorted(missing)[:10]}"
    assert not unexpected, f"records nobody produced: {sorted(unexpected)[:10]}"
    allowed = set()
    for k in killed:
        for (p, o, v) in k.recs:
            if o >= k.committed.get(p, -1):
                allowed.add(v)
    bad = {}
    for v, n in seen.items():
        if n > 1 and (v not in allowed or n > 2):
            bad[v] = [(w.name, p, o) for w in ws for (p, o, vv) in w.recs if vv == v]
    assert not bad, (f"{len(bad)} records consumed more than once outside an uncommitted range "
                     f"(value: [(worker, partition, offset)]): {dict(list(bad.items())[:10])}")
    return sum(1 for v, n in seen.items() if n > 1)


# ------------------------------------------------------------------ admin

def committed_offsets(bootstrap, group, topic=None, timeout=30):
    """{(topic, partition): offset} via AdminClient.list_consumer_group_offsets.
    (Offsets only: confluent-kafka 2.16 reads the commit metadata as a C string
    although librdkafka does not NUL-terminate it, so it can come back with
    trailing garbage; use rawproto.fetch_offsets to check metadata.)"""
    from confluent_kafka import ConsumerGroupTopicPartitions
    adm = cu.admin_client(bootstrap)
    fut = adm.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=timeout)
    res = fut[group].result(timeout=timeout)
    out = {}
    for tp in res.topic_partitions:
        if tp.error:
            raise AssertionError(f"list_consumer_group_offsets({group}): {tp}")
        if topic is None or tp.topic == topic:
            out[(tp.topic, tp.partition)] = tp.offset
    return out


def end_offsets(bootstrap, topic, partitions):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "groups-suite-unused"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in range(partitions)}
    finally:
        c.close()


def describe_group(bootstrap, group, timeout=30):
    adm = cu.admin_client(bootstrap)
    return adm.describe_consumer_groups([group], request_timeout=timeout)[group].result(timeout=timeout)
