"""Helpers for the cluster fault tests and the soak: the workload (an
idempotent acks=all producer and a consumer group, both recording into a
`history.History`), cluster probes (partition leaders, the active
controller, ISR), the final read, the group-resume check and the
replica byte comparison of the on-disk logs.

Works against Runnel and Apache Kafka alike (see conftest.py).
"""

from __future__ import annotations

import os
import re
import struct
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import compat_util as cu
from history import History

# Broker properties for every node in the fault tests: the group coordinator's
# topic replicated like the data (Kafka's default of 3, which
# scripts/run-apache-kafka.sh lowers to 1 for one-node runs), with few
# partitions so that elections after a kill stay cheap on two cores.
FAULT_PROPS = {
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "6",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_for(cond, timeout, what, interval=0.5):
    """Poll `cond()` until it returns something truthy; AssertionError (naming
    `what` and the last value or exception) after `timeout` seconds."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            v = cond()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        if time.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def live_bootstrap(cluster):
    return ",".join(n.bootstrap for n in cluster.nodes if n.alive())


# Broker properties for a three-node cluster running transactions and
# groups: the internal topics are small and replicated on all three nodes.
TXN_CLUSTER_PROPS = {
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "transaction.state.log.num.partitions": "3",
    "offsets.topic.num.partitions": "6",
}


def node(cluster, node_id):
    return next(n for n in cluster.nodes if n.node_id == node_id)


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create_replicated_topic(cluster, topic, partitions, rf=3, min_isr=2, timeout=60):
    adm = admin(cluster.bootstrap)
    fut = adm.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=rf,
                                      config={"min.insync.replicas": str(min_isr)})],
                            operation_timeout=30, request_timeout=30)
    fut[topic].result(timeout=timeout)
    wait_full_isr(cluster, topic, partitions, timeout=timeout)


def partition_state(bootstrap, topic):
    """{partition: (leader, replicas, isr)} from Metadata through `bootstrap`."""
    md = admin(bootstrap).list_topics(topic=topic, timeout=8)
    t = md.topics[topic]
    if t.error is not None:
        raise KafkaException(t.error)
    return {p: (pm.leader, sorted(pm.replicas), sorted(pm.isrs)) for p, pm in t.partitions.items()}


def leader_of(cluster, topic, partition):
    return partition_state(live_bootstrap(cluster), topic)[partition][0]


def wait_full_isr(cluster, topic, partitions, timeout=120):
    """Every partition has a live leader and all of its replicas in the ISR,
    as every live node sees it."""
    def ok():
        for n in cluster.nodes:
            if not n.alive():
                return False
            st = partition_state(n.bootstrap, topic)
            if len(st) != partitions:
                return False
            for p, (leader, replicas, isr) in st.items():
                if leader < 0 or isr != replicas or len(replicas) < 1:
                    return st
        return True
    return wait_for(ok, timeout, f"all replicas of {topic} in the ISR")


def wait_new_leader(cluster, topic, partition, old, timeout=60):
    def ok():
        ld = leader_of(cluster, topic, partition)
        return ld if ld >= 0 and ld != old else None
    return wait_for(ok, timeout, f"a new leader for {topic}-{partition} (was {old})")


_QUORUM_LEADER = re.compile(r"LeaderId:\s*(-?\d+)")


def active_controller(cluster, use_tool=None):
    """The id of the active KRaft controller.

    On Kafka a broker's DescribeCluster/Metadata answer names a random live
    broker as "controller" (KIP-919), so ask the quorum itself with
    DescribeQuorum (kafka-metadata-quorum). When the broker does not answer
    that, fall back to DescribeCluster's controller id (FAULTS_QUORUM_TOOL=0
    forces the fallback)."""
    bs = live_bootstrap(cluster)
    if use_tool is None:
        use_tool = os.environ.get("FAULTS_QUORUM_TOOL", "1") == "1"
    if use_tool:
        p = cu.kafka_tool("metadata-quorum", "--bootstrap-server", bs, "describe", "--status",
                          timeout=60, check=False)
        m = _QUORUM_LEADER.search(p.stdout_text)
        if p.returncode == 0 and m and int(m.group(1)) >= 0:
            return int(m.group(1))
    adm = admin(bs)   # keep a reference until the future resolves: a destroyed client fails it
    d = adm.describe_cluster(request_timeout=15).result(timeout=20)
    return d.controller.id if d.controller else -1


# ------------------------------------------------------------------ workload

class Workload:
    """An idempotent acks=all producer writing unique values `w-<seq>`
    round-robin over the partitions at `rate` msgs/s, and a consumer group
    member that reads and commits every `commit_interval` seconds; both
    record into `hist`."""

    def __init__(self, cluster, topic, partitions, hist: History, rate=200, msg_timeout_ms=30000,
                 group=None, commit_interval=1.0):
        self.cluster, self.topic, self.partitions, self.hist = cluster, topic, partitions, hist
        self.rate, self.msg_timeout_ms = rate, msg_timeout_ms
        self.group = group or f"faults-{uuid.uuid4().hex[:6]}"
        self.commit_interval = commit_interval
        self._stop_p = threading.Event()
        self._stop_c = threading.Event()
        self._abort = threading.Event()
        self.errors: dict[str, int] = {}
        self.fatal: list[str] = []
        self.seq = 0
        self.threads = []

    # -- producer
    def _producer(self):
        return Producer({"bootstrap.servers": self.cluster.bootstrap, "acks": "all",
                         "enable.idempotence": True, "message.timeout.ms": self.msg_timeout_ms,
                         "linger.ms": 5, "retry.backoff.ms": 100, "retry.backoff.max.ms": 1000,
                         "request.timeout.ms": min(30000, self.msg_timeout_ms),
                         "error_cb": self._error_cb})

    def _error_cb(self, err):
        if err.fatal():
            self.fatal.append(str(err))

    def _on_delivery(self, i):
        def cb(err, msg):
            if err is None:
                self.hist.ok(i, msg.offset())
            else:
                name = err.name()
                self.errors[name] = self.errors.get(name, 0) + 1
                self.hist.failed(i, name)
        return cb

    def _produce_loop(self):
        p = self._producer()
        interval = 0.01
        per_tick = max(1, round(self.rate * interval))
        nxt = time.time()
        try:
            while not self._stop_p.is_set():
                if self.fatal and len(self.fatal) > getattr(self, "_fatal_seen", 0):
                    # A fatal idempotence error ends this producer: fail what it
                    # holds (recorded as indeterminate) and start a new one.
                    self._fatal_seen = len(self.fatal)
                    self.hist.nemesis("producer-fatal", error=self.fatal[-1])
                    p.flush(5)
                    p = self._producer()
                for _ in range(per_tick):
                    self.seq += 1
                    part = self.seq % self.partitions
                    v = f"w-{self.seq}"
                    i = self.hist.invoke(v, part)
                    while True:
                        try:
                            p.produce(self.topic, v.encode(), partition=part, on_delivery=self._on_delivery(i))
                            break
                        except BufferError:
                            p.poll(0.1)
                        except KafkaException as e:
                            self.hist.failed(i, e.args[0].name() if e.args else "produce-raised", kind="info")
                            break
                try:
                    p.poll(0)
                except KafkaException as e:
                    # A fatal error raised here rather than passed to error_cb
                    # (seen: OUT_OF_ORDER_SEQUENCE_NUMBER after a broker lost
                    # acknowledged writes): the next turn starts a new producer.
                    err = e.args[0] if e.args else None
                    if isinstance(err, KafkaError) and err.fatal() and str(err) not in self.fatal[-1:]:
                        self.fatal.append(str(err))
                    elif not (isinstance(err, KafkaError) and err.fatal()):
                        raise
                nxt += interval
                d = nxt - time.time()
                if d > 0:
                    time.sleep(d)
                else:
                    nxt = time.time()
        finally:
            if self._abort.is_set():
                p.purge()
            left = p.flush(1 if self._abort.is_set() else self.msg_timeout_ms / 1000 + 15)
            if left:
                self.hist.nemesis("producer-closed-with-outstanding", count=left)

    # -- consumer group member
    def _consume_loop(self):
        c = Consumer({"bootstrap.servers": self.cluster.bootstrap, "group.id": self.group,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "session.timeout.ms": 20000, "heartbeat.interval.ms": 2000})
        c.subscribe([self.topic])
        nxt: dict[int, int] = {}
        last_commit, committed = time.time(), {}
        try:
            while not self._stop_c.is_set():
                m = c.poll(0.2)
                if m is not None and m.error() is not None:
                    self.hist.add({"type": "consumer-error", "error": m.error().name()})
                elif m is not None:
                    self.hist.add({"type": "poll", "partition": m.partition(), "offset": m.offset(),
                                   "value": m.value().decode()})
                    nxt[m.partition()] = m.offset() + 1
                if time.time() - last_commit >= self.commit_interval and nxt and nxt != committed:
                    offs = dict(nxt)
                    last_commit = t = time.time()
                    try:
                        c.commit(offsets=[TopicPartition(self.topic, p, o) for p, o in offs.items()],
                                 asynchronous=False)
                        self.hist.add({"type": "commit", "status": "ok", "offsets": offs,
                                       "took": round(time.time() - t, 3)})
                        committed = offs
                    except KafkaException as e:
                        err = e.args[0] if e.args else None
                        self.hist.add({"type": "commit", "status": "info", "offsets": offs,
                                       "error": err.name() if isinstance(err, KafkaError) else str(e),
                                       "took": round(time.time() - t, 3)})
        finally:
            c.close()

    def start(self):
        if hasattr(self.cluster, "workloads"):
            self.cluster.workloads.append(self)
        self.threads = [threading.Thread(target=self._produce_loop, name="producer", daemon=True),
                        threading.Thread(target=self._consume_loop, name="group-consumer", daemon=True)]
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        # The group member stops first, while writes continue for a moment,
        # so that its committed offsets trail the end of the log and the
        # resume check has something to check.
        self._stop_c.set()
        self.threads[1].join(60)
        time.sleep(1.0)
        self._stop_p.set()
        self.threads[0].join(self.msg_timeout_ms / 1000 + 30)
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, f"workload threads did not stop: {alive}"

    def abort(self):
        """Stop at once (a failed test): drop what the producer still holds."""
        self._abort.set()
        self._stop_c.set()
        self._stop_p.set()
        for t in self.threads:
            t.join(10)

    def oks_after(self, t0):
        return sum(1 for ev in list(self.hist.events) if ev["type"] == "ok" and ev["time"] > t0)

    def polls_after(self, t0):
        return sum(1 for ev in list(self.hist.events) if ev["type"] == "poll" and ev["time"] > t0)

    def wait_consumer_progress(self, since, n=50, timeout=90):
        """Liveness of the group: its member reads at least `n` records after `since`."""
        return wait_for(lambda: self.polls_after(since) >= n, timeout,
                        f"the group member to read {n} records after the fault healed")

    def wait_commit_progress(self, since, n=2, timeout=90):
        """The group commits again: `n` successful commits after `since`."""
        return wait_for(lambda: sum(1 for ev in list(self.hist.events) if ev["type"] == "commit"
                                    and ev["status"] == "ok" and ev["time"] > since) >= n, timeout,
                        f"{n} successful offset commits after the fault healed")

    def wait_progress(self, since, n=50, timeout=90):
        """Liveness: at least `n` writes acknowledged after time `since`."""
        return wait_for(lambda: self.oks_after(since) >= n, timeout,
                        f"{n} acknowledged writes after the fault healed")


# ------------------------------------------------------------------ checks after healing

def final_read(cluster, topic, partitions, hist: History, timeout=120):
    """Read every partition from the beginning to its end offset (high
    watermark) with a fresh consumer; record `read` events and an `end` event."""
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"final-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        ends = {}
        for p in range(partitions):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)
            ends[p] = hi
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        pos = {p: -1 for p in range(partitions)}
        deadline = time.time() + timeout
        while any(pos[p] + 1 < ends[p] for p in pos):
            assert time.time() < deadline, f"final read stuck: positions {pos}, ends {ends}"
            for m in c.consume(500, 0.5):
                if m.error():
                    continue
                hist.add({"type": "read", "partition": m.partition(), "offset": m.offset(),
                          "value": m.value().decode()})
                pos[m.partition()] = max(pos[m.partition()], m.offset())
        hist.add({"type": "end", "offsets": ends})
        return ends
    finally:
        c.close()


def group_resume(cluster, topic, partitions, group, ends, hist: History, timeout=60):
    """A new member of `group` must find the committed offsets and start
    reading there; record `committed` and `resume` events."""
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 20000})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        got = wait_for(lambda: c.committed(tps, timeout=15), 60, f"committed offsets of group {group}")
        committed = {tp.partition: tp.offset for tp in got}
        hist.add({"type": "committed", "offsets": committed})
        c.subscribe([topic])
        want = {p for p, o in committed.items() if o is not None and 0 <= o < ends.get(p, 0)}
        first = {}
        deadline = time.time() + timeout
        while want - set(first) and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            if m.partition() not in first:
                first[m.partition()] = m.offset()
                hist.add({"type": "resume", "partition": m.partition(), "offset": m.offset()})
        return committed, first
    finally:
        c.close()


# ------------------------------------------------------------------ replicas on disk

_BATCH_HDR = struct.Struct(">qi")   # baseOffset, batchLength


def read_batches(partition_dir: Path):
    """[(base_offset, last_offset, bytes)] of every whole record batch in the
    partition's .log segments, in offset order (a torn tail is ignored)."""
    out = []
    for seg in sorted(partition_dir.glob("*.log")):
        data = seg.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            base, length = _BATCH_HDR.unpack_from(data, pos)
            end = pos + 12 + length
            if length <= 0 or end > len(data):
                break
            raw = data[pos:end]
            last_delta = struct.unpack_from(">i", raw, 23)[0] if len(raw) >= 27 else 0
            out.append((base, base + last_delta, raw))
            pos = end
    return out


def compare_replicas(cluster, topic, partitions, hws):
    """Problems (a list of strings; empty when fine): for each partition,
    every node's batches that end below the high watermark are byte-identical
    and none is missing. The partition leader epoch and base offset are in the
    compared bytes, so a follower must hold exactly the leader's batches."""
    problems = []
    for p in range(partitions):
        hw = hws[p]
        per_node = {}
        for n in cluster.nodes:
            d = n.data_dir / f"{topic}-{p}"
            if not d.is_dir():
                problems.append(f"{topic}-{p}: no directory on node {n.node_id} ({d})")
                continue
            per_node[n.node_id] = [b for b in read_batches(d) if b[1] < hw]
        if not per_node:
            continue
        for nid, batches in per_node.items():
            covered = batches[-1][1] + 1 if batches else 0
            if hw > 0 and covered < hw:
                # A batch straddling the HW cannot be on disk below it; allow
                # only a gap that the next (unfinished) batch would fill.
                problems.append(f"{topic}-{p}: node {nid} has batches only up to offset {covered - 1}, HW {hw}")
        ref_id, ref = next(iter(per_node.items()))
        for nid, batches in per_node.items():
            if nid == ref_id:
                continue
            if len(batches) != len(ref) or any(a[2] != b[2] for a, b in zip(ref, batches)):
                diff = next((i for i, (a, b) in enumerate(zip(ref, batches)) if a[2] != b[2]),
                            min(len(ref), len(batches)))
                ra = ref[diff][:2] if diff < len(ref) else None
                rb = batches[diff][:2] if diff < len(batches) else None
                problems.append(f"{topic}-{p}: node {nid} differs from node {ref_id} below HW {hw} at batch "
                                f"#{diff}: {rb} vs {ra} ({len(batches)} vs {len(ref)} batches)")
    return problems


# RecordBatch v2 header fields past baseOffset/batchLength (byte positions in the batch)
_PID = struct.Struct(">qhi")   # producerId @43, producerEpoch @51, baseSequence @53
_ATTR = struct.Struct(">h")     # attributes @21; bit 5 = control batch


def batch_producer(raw):
    """(producer_id, epoch, base_sequence, last_sequence) of a v2 batch, or None
    for non-idempotent or control batches."""
    if len(raw) < 61 or raw[16] != 2:
        return None
    if _ATTR.unpack_from(raw, 21)[0] & 0x20:
        return None
    pid, epoch, seq = _PID.unpack_from(raw, 43)
    if pid < 0 or seq < 0:
        return None
    last_delta = struct.unpack_from(">i", raw, 23)[0]
    return pid, epoch, seq, seq + last_delta


def idempotence_violations(cluster, topic, partitions):
    """The broker's idempotence guarantee, read from disk: in no partition
    are two batches appended with overlapping sequence numbers for one
    producer id and epoch (a retry must be recognised as a duplicate).
    Checked on every node's copy; returns a list of problems."""
    problems = []
    for p in range(partitions):
        for n in cluster.nodes:
            d = n.data_dir / f"{topic}-{p}"
            if not d.is_dir():
                continue
            seen = {}
            for base, last, raw in read_batches(d):
                info = batch_producer(raw)
                if info is None:
                    continue
                pid, epoch, s0, s1 = info
                clash = next((q for q in range(s0, s1 + 1) if (pid, epoch, q) in seen), None)
                if clash is not None:
                    problems.append(f"{topic}-{p} on node {n.node_id}: producer {pid} epoch {epoch} sequence "
                                    f"{clash} appended twice, at offsets {seen[(pid, epoch, clash)]} and {base}")
                for q in range(s0, s1 + 1):
                    seen[(pid, epoch, q)] = base + (q - s0)
    return problems


def wait_replicas_identical(cluster, topic, partitions, timeout=90):
    """Wait (followers may still be fetching) until compare_replicas finds
    nothing; return the high watermarks compared."""
    last = {}

    def ok():
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "hw-probe"})
        try:
            hws = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15, cached=False)[1]
                   for p in range(partitions)}
        finally:
            c.close()
        probs = compare_replicas(cluster, topic, partitions, hws)
        last["p"], last["hws"] = probs, hws
        return hws if not probs else None
    try:
        return wait_for(ok, timeout, "replicas byte-identical below the high watermark", interval=2)
    except AssertionError:
        raise AssertionError("replicas differ below the HW " + repr(last.get("hws")) + ":\n"
                             + "\n".join(last.get("p") or ["(no comparison completed)"])) from None


def _uvarint(buf, pos):
    shift = val = 0
    while True:
        b = buf[pos]
        pos += 1
        val |= (b & 0x7F) << shift
        if not b & 0x80:
            return val, pos
        shift += 7


def quorum_leader_via(n, timeout=10.0):
    """The metadata quorum's leader as node `n` answers DescribeQuorum (v0,
    sent to that node's PLAINTEXT listener only, whereas an admin client may
    send it to any broker it learns of): the leader id, or -1 on an error."""
    import socket
    topic = b"__cluster_metadata"
    cid = b"faults-probe"
    # header v2: api key 55, version 0, correlation id, client id, no tags
    hdr = struct.pack(">hhih", 55, 0, 7, len(cid)) + cid + b"\x00"
    # topics: [ name, partitions: [ index 0, no tags ], no tags ], no tags
    body = b"\x02" + bytes([len(topic) + 1]) + topic + b"\x02" + struct.pack(">i", 0) + b"\x00\x00\x00"
    with socket.create_connection((n.host, n.port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
        size = struct.unpack(">i", cu.recv_exact(s, 4))[0]
        resp = cu.recv_exact(s, size)
    pos = 4                                   # correlation id
    _, pos = _uvarint(resp, pos)              # header tags
    err = struct.unpack_from(">h", resp, pos)[0]
    pos += 2
    if err:
        return -1
    _, pos = _uvarint(resp, pos)              # topics
    ln, pos = _uvarint(resp, pos)             # topic name
    pos += ln - 1
    _, pos = _uvarint(resp, pos)              # partitions
    _, perr, leader = struct.unpack_from(">ihi", resp, pos)
    return -1 if perr else leader
