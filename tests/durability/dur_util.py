"""Helpers for the durability suite: on-disk segment parsing and exact read-back."""

from __future__ import annotations

import re
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

SEGMENT_RE = re.compile(r"^(\d{20})\.log$")
# RecordBatch v2 header: baseOffset i64, batchLength i32, partitionLeaderEpoch i32,
# magic i8, crc u32, attributes i16, lastOffsetDelta i32, baseTimestamp i64,
# maxTimestamp i64, producerId i64, producerEpoch i16, baseSequence i32, records i32
BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_LEN = BATCH_HEADER.size  # 61
assert HEADER_LEN == 61


@dataclass
class Batch:
    pos: int
    base_offset: int
    length: int  # whole batch, including the 12 bytes of baseOffset + batchLength
    magic: int
    last_offset: int
    max_timestamp: int
    count: int


@dataclass
class Segment:
    base: int
    path: Path
    size: int
    batches: list  # list[Batch], only whole batches
    tail: int  # bytes after the last whole batch

    @property
    def next_offset(self):
        return self.batches[-1].last_offset + 1 if self.batches else self.base


def parse_batches(data: bytes):
    """Whole v2 batches from the start of `data`; returns (batches, bytes left over)."""
    out, pos = [], 0
    while pos + HEADER_LEN <= len(data):
        (base, blen, _ple, magic, _crc, _attr, lod, _bts, maxts, _pid, _pe, _bs,
         count) = BATCH_HEADER.unpack_from(data, pos)
        total = 12 + blen
        if magic != 2 or blen < HEADER_LEN - 12 or pos + total > len(data):
            break
        out.append(Batch(pos, base, total, magic, base + lod, maxts, count))
        pos += total
    return out, len(data) - pos


def wait_for(cond, timeout, what):
    """Poll `cond() -> (done, last_seen)` until done or `timeout` seconds pass."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        ok, last = cond()
        if ok:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not reached within {timeout}s; last seen: {last}")


def partition_dir(data_dir: Path, topic: str, partition: int) -> Path:
    return Path(data_dir) / f"{topic}-{partition}"


def segments(pdir: Path) -> list[Segment]:
    segs = []
    for p in sorted(Path(pdir).iterdir()):
        m = SEGMENT_RE.match(p.name)
        if not m:
            continue
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            # deleted (retention) between listing the directory and reading it:
            # the broker is live, so the listing is only a snapshot
            continue
        batches, tail = parse_batches(data)
        segs.append(Segment(int(m.group(1)), p, len(data), batches, tail))
    segs.sort(key=lambda s: s.base)
    return segs


def read_index(path: Path):
    """.index entries: (relative offset, position); Kafka preallocates, so stop at a zero entry after the first."""
    data = path.read_bytes()
    entries = []
    for i in range(0, len(data) - len(data) % 8, 8):
        rel, pos = struct.unpack_from(">ii", data, i)
        if i > 0 and rel == 0 and pos == 0:
            break
        entries.append((rel, pos))
    return entries, len(data)


def read_timeindex(path: Path):
    """.timeindex entries: (timestamp, relative offset)."""
    data = path.read_bytes()
    entries = []
    for i in range(0, len(data) - len(data) % 12, 12):
        ts, rel = struct.unpack_from(">qi", data, i)
        if i > 0 and ts == 0 and rel == 0:
            break
        entries.append((ts, rel))
    return entries, len(data)


# ------------------------------------------------------------------ clients

def new_consumer(bootstrap, **extra):
    # librdkafka needs a group.id; it is never joined or committed to.
    conf = {"bootstrap.servers": bootstrap, "group.id": f"durability-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "enable.partition.eof": True, "check.crcs": True,
            "auto.offset.reset": "error", "fetch.wait.max.ms": 100}
    conf.update(extra)
    return Consumer(conf)


RETRIABLE = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
             KafkaError.UNKNOWN_TOPIC_OR_PART}


def watermarks(bootstrap, topic, partitions, timeout=15.0):
    """{partition: (earliest, latest)} from ListOffsets.

    Right after a restart a broker may still answer NOT_LEADER (Apache Kafka
    does, for a moment); like any client, retry those for a few seconds."""
    c = new_consumer(bootstrap)
    try:
        out = {}
        for p in partitions:
            deadline = time.time() + 10
            while True:
                try:
                    out[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout, cached=False)
                    break
                except KafkaException as e:
                    if e.args[0].code() not in RETRIABLE or time.time() > deadline:
                        raise
                    print(f"watermarks {topic} p{p}: {e.args[0].name()}, retrying")
                    time.sleep(0.2)
        return out
    finally:
        c.close()


def read_partitions(bootstrap, topic, ends: dict, start=0, timeout=60.0):
    """Read every partition in `ends` from `start` up to (excluding) ends[p].

    Returns {partition: [(offset, key, value), ...]} in the order fetched.
    Any consumer error (CRC mismatch, offset out of range, ...) fails.
    """
    got = {p: [] for p in ends}
    todo = {p for p, e in ends.items() if e > start}
    if not todo:
        return got
    c = new_consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, p, start) for p in sorted(todo)])
        deadline = time.time() + timeout
        while todo:
            if time.time() > deadline:
                raise AssertionError(
                    f"timed out reading {topic}: " + ", ".join(
                        f"p{p} at {got[p][-1][0] + 1 if got[p] else start} of {ends[p]}" for p in sorted(todo)))
            msgs = c.consume(num_messages=20000, timeout=0.5)
            if not msgs:
                continue
            errs = [m for m in msgs if m.error() is not None]
            for m in errs:
                if m.error().code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(f"consumer error on {topic} p{m.partition()} "
                                         f"offset {m.offset()}: {m.error()}")
            if errs:
                msgs = [m for m in msgs if m.error() is None]
            for p in todo.copy():
                end = ends[p]
                mine = [m for m in msgs if m.partition() == p] if len(ends) > 1 else msgs
                got[p].extend([(o, m.key(), m.value()) for m in mine if (o := m.offset()) < end])
                if (mine and mine[-1].offset() >= end - 1) or any(
                        e.partition() == p and e.offset() >= end for e in errs):
                    todo.discard(p)
        return got
    finally:
        c.close()


def produce_sync(bootstrap, topic, items, **conf):
    """Produce [(partition, key, value), ...] with acks=all; returns [(partition, offset, value)]
    in the order given, failing on any delivery error."""
    cfg = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
           "linger.ms": 1}
    cfg.update(conf)
    p = Producer(cfg)
    reports = [None] * len(items)

    def cb(i):
        def done(err, msg):
            reports[i] = (err, msg.partition(), msg.offset(), msg.value())
        return done

    for i, (part, key, value) in enumerate(items):
        while True:
            try:
                p.produce(topic, value=value, key=key, partition=part, on_delivery=cb(i))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(60)
    assert left == 0, f"{left} messages still undelivered after 60 s"
    errors = [r for r in reports if r is None or r[0] is not None]
    assert not errors, f"{len(errors)} delivery errors, first: {errors[0]}"
    return [(r[1], r[2], r[3]) for r in reports]
