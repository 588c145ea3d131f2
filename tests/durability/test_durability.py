"""Crash, restart and on-disk log tests (see README.md)."""

from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

import compat_util as cu
import dur_util as du

HERE = Path(__file__).resolve().parent
TIMEOUT = 30


# ------------------------------------------------------------------ helpers

def read_acks(path: Path):
    """Complete lines of a producer_proc ack file: [(partition, offset, value bytes)]."""
    if not path.exists():
        return []
    data = path.read_bytes()
    data = data[: data.rfind(b"\n") + 1]
    out = []
    for line in data.splitlines():
        p, off, val = line.split(b" ")
        out.append((int(p), int(off), val))
    return out


def verify_log(broker, topic, partitions, acks, label):
    try:
        return _verify_log(broker.bootstrap, topic, partitions, acks, label)
    except Exception as e:
        if not broker.running():
            # a crash of the broker, or someone else stopped it: see its log
            raise AssertionError(f"[{label}] the broker process exited while the log was read back "
                                 f"(see its log below): {e}") from e
        raise


def missing_acks(acks, log):
    """The acknowledged (partition, offset, value)s that `log` ({partition: {offset: value}})
    does not hold at exactly that offset with exactly that value."""
    return [(p, off, val, log.get(p, {}).get(off)) for p, off, val in acks
            if log.get(p, {}).get(off) != val]


def _verify_log(bootstrap, topic, partitions, acks, label):
    """Read every partition from 0 and check it against the acknowledged (partition, offset, value)s.

    - every partition starts at 0 and its offsets are exactly 0..HW-1 (no gap, no repeat);
    - every record decodes (CRCs checked by the client) and is a value this test wrote
      to that partition (8 ASCII digits n with n % partitions == partition, no key);
    - every acknowledged record is at exactly its acknowledged offset;
    - no offset was acknowledged twice.
    Returns a stats dict; raises AssertionError listing the violations.
    """
    problems = []
    acked = {p: {} for p in range(partitions)}
    for p, off, val in acks:
        prev = acked[p].get(off)
        if prev is not None and prev != val:
            problems.append(f"p{p} offset {off} acknowledged twice: {prev!r} and {val!r}")
        acked[p][off] = val
    wm = du.watermarks(bootstrap, topic, range(partitions))
    for p, (lo, hi) in wm.items():
        if lo != 0:
            problems.append(f"p{p} earliest offset is {lo}, expected 0")
        top = max(acked[p], default=-1)
        if top >= hi:
            problems.append(f"p{p} high watermark {hi} but offset {top} was acknowledged")
    got = du.read_partitions(bootstrap, topic, {p: hi for p, (lo, hi) in wm.items()})
    stats = {"acked": len(acks), "log": 0, "unacked_in_log": 0, "read": {}}
    for p in range(partitions):
        recs = got[p]
        hi = wm[p][1]
        offsets = [o for o, _, _ in recs]
        if offsets != list(range(hi)):
            missing = sorted(set(range(hi)) - set(offsets))
            extra = [o for i, o in enumerate(offsets) if i >= hi or o != i][:5]
            problems.append(f"p{p} offsets are not exactly 0..{hi - 1}: read {len(offsets)} records, "
                            f"missing {missing[:10]}{'...' if len(missing) > 10 else ''} "
                            f"({len(missing)} in all), first out of place {extra}")
        log = {}
        bad = []
        for o, k, v in recs:
            log[o] = v
            if k is not None or v is None or len(v) != 8 or not v.isdigit() or int(v) % partitions != p:
                bad.append((o, k, v))
        if bad:
            problems.append(f"p{p}: {len(bad)} records this test never wrote (corrupt?), first {bad[:3]}")
        stats["read"][p] = log
        lost = [(o, v, log.get(o)) for o, v in sorted(acked[p].items()) if log.get(o) != v]
        if lost:
            problems.append(f"p{p}: {len(lost)} acknowledged records not at their offset "
                            f"(offset, acked value, value in log), first {lost[:5]}")
        stats["log"] += len(recs)
        stats["unacked_in_log"] += sum(1 for o in log if o not in acked[p])
    stats["watermarks"] = {p: wm[p] for p in sorted(wm)}
    print(f"[{label}] " + str({k: v for k, v in stats.items() if k != "read"}))
    assert not problems, f"[{label}] durability violations:\n  " + "\n  ".join(problems)
    return stats


def alter_topic(bootstrap, topic, **configs):
    adm = cu.admin_client(bootstrap)
    r = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry(k.replace("_", "."), str(v), incremental_operation=AlterConfigOpType.SET)
        for k, v in configs.items()])
    adm.incremental_alter_configs([r])[r].result(timeout=TIMEOUT)


def small_segments(broker, nbytes):
    """Topic config for tiny segments. Kafka 4.x rejects segment.bytes < 1 MiB
    (KIP-1030) and keeps the old floor only in its internal.segment.bytes."""
    return {"internal.segment.bytes": str(nbytes)}


def value100(i):
    return b"%08d" % i + b"x" * 92


def check_segment_files(pdir: Path, segment_bytes: int, total: int):
    """The partition dir holds well-formed Kafka segments covering offsets 0..total-1."""
    names = sorted(os.listdir(pdir))
    segs = du.segments(pdir)
    stray = [n for n in names if n.endswith(".log") and not du.SEGMENT_RE.match(n)]
    assert not stray, f"segment files without a 20-digit base offset name: {stray}"
    for s in segs:
        stem = s.path.name[:-4]
        for ext in (".index", ".timeindex"):
            assert stem + ext in names, f"{stem}.log has no {stem}{ext}: {names}"
    assert segs[0].base == 0, [s.path.name for s in segs]
    for i, s in enumerate(segs):
        assert s.tail == 0, f"{s.path.name}: {s.tail} bytes after the last whole batch"
        assert s.batches, f"{s.path.name} is empty but is not the last segment"
        assert s.batches[0].base_offset == s.base, \
            f"{s.path.name} starts with offset {s.batches[0].base_offset}"
        assert s.size <= segment_bytes, f"{s.path.name} is {s.size} bytes > segment.bytes={segment_bytes}"
        if i + 1 < len(segs):
            nxt = segs[i + 1]
            assert nxt.base == s.next_offset, f"{nxt.path.name} follows {s.path.name} ending at {s.next_offset}"
            assert s.size + nxt.batches[0].length > segment_bytes, \
                (f"{s.path.name} ({s.size} bytes) was rolled although the next batch "
                 f"({nxt.batches[0].length} bytes) fit in segment.bytes={segment_bytes}")
            # a closed segment's indexes must match its batches
            starts = {b.pos: b for b in s.batches}
            idx, isize = du.read_index(pdir / f"{s.path.name[:-4]}.index")
            assert isize % 8 == 0, f"{s.path.name[:-4]}.index is {isize} bytes"
            for (rel, pos), prev in zip(idx, [None] + idx[:-1]):
                assert pos in starts, f"index entry ({rel}, {pos}) of {s.path.name} is not at a batch start"
                b = starts[pos]
                assert b.base_offset <= s.base + rel <= b.last_offset, (s.path.name, rel, pos, b)
                assert prev is None or (rel > prev[0] and pos > prev[1]), (s.path.name, idx)
            tidx, tsize = du.read_timeindex(pdir / f"{s.path.name[:-4]}.timeindex")
            assert tsize % 12 == 0, f"{s.path.name[:-4]}.timeindex is {tsize} bytes"
            assert tidx, f"closed segment {s.path.name} has an empty time index"
            max_ts = max(b.max_timestamp for b in s.batches)
            assert tidx[-1][0] == max_ts, \
                f"{s.path.name}: last time index entry {tidx[-1]} but the max timestamp is {max_ts}"
            for ts, rel in tidx:
                assert s.base <= s.base + rel < s.next_offset, (s.path.name, tidx)
            assert [t for t, _ in tidx] == sorted(t for t, _ in tidx), (s.path.name, tidx)
    assert segs[-1].next_offset == total, f"the log ends at {segs[-1].next_offset}, expected {total}"
    assert sum(b.count for s in segs for b in s.batches) == total
    return segs


wait_for = du.wait_for


# ------------------------------------------------------------------ tests

def test_ack_check_finds_every_kind_of_loss():
    """The check test_kill9_mid_write applies to the records acknowledged before each
    kill. (It used to compare the number of acks read after the restart with the number
    read at the kill, which the append-only ack file makes true whatever the log holds.)"""
    acks = [(0, 0, b"00000000"), (1, 0, b"00000001"), (0, 1, b"00000002")]
    log = {0: {0: b"00000000", 1: b"00000002"}, 1: {0: b"00000001"}}
    assert missing_acks(acks, log) == []
    assert missing_acks(acks, {0: log[0], 1: {}}) == [(1, 0, b"00000001", None)]  # lost
    assert missing_acks(acks, {0: {0: b"00000000", 2: b"00000002"}, 1: log[1]}) == \
        [(0, 1, b"00000002", None)]  # at another offset
    assert missing_acks(acks, {0: {0: b"00000000", 1: b"00000004"}, 1: log[1]}) == \
        [(0, 1, b"00000002", b"00000004")]  # another value
    assert missing_acks(acks, {}) == [(p, o, v, None) for p, o, v in acks]


def test_kill9_mid_write(make_broker, topic_name):
    """kill -9 the broker three times under a full-speed acks=all producer; nothing acked may be lost."""
    partitions, seg_bytes = 3, 1 << 20
    b = make_broker()
    # 1 MiB segments (Kafka's minimum): the logs roll every second or so, so
    # kills also land around segment rolls
    cu.create_topic(b.bootstrap, topic_name, partitions, config={"segment.bytes": str(seg_bytes)})
    ack_file = b.work / "acks.txt"
    prod_out = open(b.work / "producer.out", "wb")
    prod = subprocess.Popen([sys.executable, str(HERE / "producer_proc.py"), b.bootstrap, topic_name,
                             str(partitions), str(ack_file)],
                            stdout=prod_out, stderr=subprocess.STDOUT, start_new_session=True)
    size = lambda: ack_file.stat().st_size if ack_file.exists() else 0  # noqa: E731
    try:
        acked_before = 0
        for cycle in range(1, 4):
            t0, s0 = time.time(), size()
            # ~3 s of writing, and at least 1000 new acks (11+ bytes each)
            wait_for(lambda: (time.time() - t0 >= 3 and size() - s0 >= 11_000, size() - s0), 30,
                     f"cycle {cycle}: producer acknowledgements after (re)start")
            assert prod.poll() is None, f"producer exited {prod.returncode}"
            def writing():
                s1 = size()
                time.sleep(0.1)
                return size() > s1, None
            wait_for(writing, 10, f"cycle {cycle}: producer acks growing right before the kill")
            b.kill9()
            # every record acknowledged before the kill: each must be read back after the restart
            at_kill = read_acks(ack_file)
            assert len(at_kill) - acked_before >= 500, \
                f"cycle {cycle}: only {len(at_kill) - acked_before} new acks before the kill"
            acked_before = len(at_kill)
            time.sleep(0.3)  # the producer keeps trying against the dead broker
            b.start()
            cu.wait_topic_ready(b.bootstrap, topic_name, partitions)
            # freeze the producer while the whole log is read back, so the
            # check covers a fixed set of acks and does not race the writes
            os.kill(prod.pid, signal.SIGSTOP)
            try:
                t1 = time.time()
                stats = verify_log(b, topic_name, partitions, read_acks(ack_file),
                                   f"after kill {cycle}")
                print(f"cycle {cycle}: {len(at_kill)} acks when killed, verified in {time.time() - t1:.1f}s")
                lost = missing_acks(at_kill, stats["read"])
                assert not lost, (f"cycle {cycle}: {len(lost)} of the {len(at_kill)} records acknowledged "
                                  f"before the kill are not at their offset after the restart "
                                  f"(partition, offset, acked value, value read), first {lost[:5]}")
            finally:
                os.kill(prod.pid, signal.SIGCONT)
        # the producer recovers after the last restart too
        s0 = size()
        wait_for(lambda: (size() - s0 >= 11_000, size() - s0), 30, "producer acknowledgements after the last restart")
        prod.send_signal(signal.SIGTERM)
        assert prod.wait(timeout=90) == 0
        prod_out.close()
        summary = (b.work / "producer.out").read_text().strip().splitlines()[-1]
        print("producer:", summary)
        errors = (Path(str(ack_file) + ".errors").read_text()
                  if Path(str(ack_file) + ".errors").exists() else "")
        assert errors == "", f"failed deliveries:\n{errors[:2000]}"
        assert "failed=0 undelivered=0" in summary, summary
        final = verify_log(b, topic_name, partitions, read_acks(ack_file), "final")
        assert final["acked"] == int(summary.split("acked=")[1].split()[0])
        # and the segments on disk are whole, contiguous and rolled at segment.bytes
        for p, (_, hi) in final["watermarks"].items():
            segs = check_segment_files(du.partition_dir(b.data, topic_name, p), seg_bytes, hi)
            print(f"p{p}: {len(segs)} segments")
    finally:
        if prod.poll() is None:
            prod.kill()
            prod.wait()


def test_sigterm_graceful(make_broker, topic_name):
    """SIGTERM: exit 0 within 15 s, .kafka_cleanshutdown written; everything is back after restart."""
    partitions, n = 2, 4000
    b = make_broker()
    cu.create_topic(b.bootstrap, topic_name, partitions)
    items = [(i % partitions, b"k%d" % i, b"%08d" % i) for i in range(n)]
    acks = du.produce_sync(b.bootstrap, topic_name, items)
    per = n // partitions
    for (p, off, val), i in zip(acks, range(n)):
        assert (p, off, val) == (i % partitions, i // partitions, b"%08d" % i)

    rc = b.sigterm(timeout=15)
    if b.graceful_exit_code is not None:
        assert rc == b.graceful_exit_code, f"exit code {rc} after SIGTERM\n{b.describe()}"
    marker = b.data / ".kafka_cleanshutdown"
    assert marker.exists(), f"no {marker} after a graceful shutdown: {sorted(os.listdir(b.data))}"

    b.start()
    cu.wait_topic_ready(b.bootstrap, topic_name, partitions)
    # the marker only describes the previous shutdown: a running broker must not
    # leave it behind, or a later crash would be taken for a clean shutdown
    assert not marker.exists(), f"{marker} still exists while the broker runs again"
    wm = du.watermarks(b.bootstrap, topic_name, range(partitions))
    assert wm == {p: (0, per) for p in range(partitions)}
    got = du.read_partitions(b.bootstrap, topic_name, {p: per for p in range(partitions)})
    for p in range(partitions):
        assert got[p] == [(o, b"k%d" % (o * partitions + p), b"%08d" % (o * partitions + p))
                          for o in range(per)], f"p{p} differs after restart"
    more = du.produce_sync(b.bootstrap, topic_name, [(p, None, b"after") for p in range(partitions)])
    assert more == [(p, per, b"after") for p in range(partitions)]


def test_sigterm_under_load(make_broker, topic_name):
    """SIGTERM while an acks=all producer writes at full speed: clean exit, no acknowledged record lost."""
    partitions = 3
    b = make_broker()
    cu.create_topic(b.bootstrap, topic_name, partitions)
    ack_file = b.work / "acks.txt"
    prod = subprocess.Popen([sys.executable, str(HERE / "producer_proc.py"), b.bootstrap, topic_name,
                             str(partitions), str(ack_file)],
                            stdout=open(b.work / "producer.out", "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for(lambda: (ack_file.exists() and ack_file.stat().st_size > 20_000, None), 30, "producer acks")
        rc = b.sigterm(timeout=15)
        if b.graceful_exit_code is not None:
            assert rc == b.graceful_exit_code, f"exit code {rc} after SIGTERM under load"
        assert (b.data / ".kafka_cleanshutdown").exists()
        b.start()
        cu.wait_topic_ready(b.bootstrap, topic_name, partitions)
        verify_log(b, topic_name, partitions, read_acks(ack_file), "after SIGTERM under load")
    finally:
        if prod.poll() is None:
            prod.kill()
            prod.wait()


def test_segment_roll_and_retention_ms(make_broker, topic_name):
    seg_bytes, n = 2048, 200
    b = make_broker()
    cu.create_topic(b.bootstrap, topic_name, 1, config={
        **small_segments(b, seg_bytes), "retention.ms": "86400000", "index.interval.bytes": "256"})
    # one record per batch, so each produce is exactly one ~170-byte batch
    acks = du.produce_sync(b.bootstrap, topic_name, [(0, None, value100(i)) for i in range(n)],
                           **{"batch.num.messages": 1})
    assert [o for _, o, _ in acks] == list(range(n))
    pdir = du.partition_dir(b.data, topic_name, 0)
    segs = check_segment_files(pdir, seg_bytes, n)
    print(f"{len(segs)} segments: " + ", ".join(f"{s.path.name}={s.size}B" for s in segs))
    assert len(segs) >= 5, f"only {len(segs)} segments for {n} x ~170-byte batches with segment.bytes={seg_bytes}"
    assert du.watermarks(b.bootstrap, topic_name, [0]) == {0: (0, n)}
    got = du.read_partitions(b.bootstrap, topic_name, {0: n})
    assert got[0] == [(i, None, value100(i)) for i in range(n)]

    # every record is now older than 1 s: Kafka deletes every segment, the
    # active one too (after rolling an empty one at the log end offset)
    alter_topic(b.bootstrap, topic_name, retention_ms=1000)

    def state():
        segs_now = [(s.path.name, s.size) for s in du.segments(pdir)]
        wm = du.watermarks(b.bootstrap, topic_name, [0])[0]
        return (segs_now == [("%020d.log" % n, 0)] and wm == (n, n)), (wm, segs_now)

    wm, segs_now = wait_for(state, 10, "time retention deleting every expired segment")
    print("after retention.ms=1000:", wm, segs_now)
    # keep what comes next; the log continues at the same offset
    alter_topic(b.bootstrap, topic_name, retention_ms=86400000)
    more = du.produce_sync(b.bootstrap, topic_name, [(0, None, b"next")])
    assert more == [(0, n, b"next")]
    assert du.read_partitions(b.bootstrap, topic_name, {0: n + 1}, start=n)[0] == [(n, None, b"next")]
    # the deletions and the new log start survive a crash
    b.kill9()
    b.start()
    cu.wait_topic_ready(b.bootstrap, topic_name, 1)
    assert du.watermarks(b.bootstrap, topic_name, [0]) == {0: (n, n + 1)}
    assert du.read_partitions(b.bootstrap, topic_name, {0: n + 1}, start=n)[0] == [(n, None, b"next")]


def test_retention_bytes(make_broker, topic_name):
    seg_bytes, n, keep = 2048, 200, 5000
    b = make_broker()
    cu.create_topic(b.bootstrap, topic_name, 1, config={**small_segments(b, seg_bytes),
                                                        "retention.ms": "86400000"})
    du.produce_sync(b.bootstrap, topic_name, [(0, None, value100(i)) for i in range(n)],
                    **{"batch.num.messages": 1})
    pdir = du.partition_dir(b.data, topic_name, 0)
    segs = check_segment_files(pdir, seg_bytes, n)
    # Kafka's rule: from the oldest segment on, delete while (total - retention.bytes)
    # still covers the whole segment; stop at the first that it does not.
    diff = sum(s.size for s in segs) - keep
    remaining = list(segs)
    while remaining and diff - remaining[0].size >= 0:
        diff -= remaining.pop(0).size
    expect_names = [(s.path.name, s.size) for s in remaining]
    assert 0 < len(remaining) < len(segs), (keep, [(s.path.name, s.size) for s in segs])
    first = remaining[0].base

    alter_topic(b.bootstrap, topic_name, retention_bytes=keep)

    def state():
        segs_now = [(s.path.name, s.size) for s in du.segments(pdir)]
        wm = du.watermarks(b.bootstrap, topic_name, [0])[0]
        return (segs_now == expect_names and wm == (first, n)), (wm, segs_now)

    wait_for(state, 10, f"size retention to {keep} bytes keeping {expect_names}")
    print(f"retention.bytes={keep}: kept {len(remaining)} of {len(segs)} segments, earliest offset {first}")
    got = du.read_partitions(b.bootstrap, topic_name, {0: n}, start=first)
    assert got[0] == [(i, None, value100(i)) for i in range(first, n)]
    # the deletions and the new log start survive a crash
    b.kill9()
    b.start()
    cu.wait_topic_ready(b.bootstrap, topic_name, 1)
    assert [(s.path.name, s.size) for s in du.segments(pdir)] == expect_names
    assert du.watermarks(b.bootstrap, topic_name, [0]) == {0: (first, n)}
    assert du.read_partitions(b.bootstrap, topic_name, {0: n}, start=first)[0] == got[0]


def _corrupt_tail(kind, seg: du.Segment) -> bytes:
    data = seg.path.read_bytes()
    last = seg.batches[-1]
    batch = bytearray(data[last.pos:last.pos + last.length])
    if kind == "garbage":
        return random.Random(1234).randbytes(777)
    if kind == "half_batch":
        return bytes(batch[: len(batch) // 2])
    if kind == "bad_crc":
        # a whole, plausible next batch (offset and length right) whose payload
        # does not match its CRC, as after a torn sector write
        struct.pack_into(">q", batch, 0, last.last_offset + 1)
        batch[-1] ^= 0xFF
        return bytes(batch)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["garbage", "half_batch", "bad_crc"])
def test_torn_tail_recovery(make_broker, topic_name, kind):
    n = 300
    b = make_broker()
    cu.create_topic(b.bootstrap, topic_name, 1)
    vals = [b"%08d" % i for i in range(n)]
    acks = du.produce_sync(b.bootstrap, topic_name, [(0, None, v) for v in vals],
                           **{"batch.num.messages": 10})
    assert acks == [(0, i, vals[i]) for i in range(n)]
    b.kill9()

    pdir = du.partition_dir(b.data, topic_name, 0)
    seg = du.segments(pdir)[-1]
    assert seg.tail == 0 and seg.next_offset == n, (seg.path, seg.size, seg.tail, seg.next_offset)
    good_size = seg.size
    junk = _corrupt_tail(kind, seg)
    with open(seg.path, "ab") as f:
        f.write(junk)
    print(f"{kind}: appended {len(junk)} bytes to {seg.path.name} ({good_size} bytes of whole batches)")

    b.start()
    cu.wait_topic_ready(b.bootstrap, topic_name, 1)
    assert du.watermarks(b.bootstrap, topic_name, [0]) == {0: (0, n)}
    got = du.read_partitions(b.bootstrap, topic_name, {0: n})
    assert got[0] == [(i, None, vals[i]) for i in range(n)]
    # recovery cut the segment back to its whole batches
    assert seg.path.stat().st_size == good_size, \
        f"{seg.path.name} is {seg.path.stat().st_size} bytes after recovery, expected {good_size}"

    more = du.produce_sync(b.bootstrap, topic_name, [(0, None, b"new-%d" % i) for i in range(5)])
    assert more == [(0, n + i, b"new-%d" % i) for i in range(5)]
    got = du.read_partitions(b.bootstrap, topic_name, {0: n + 5})
    assert got[0] == [(i, None, vals[i]) for i in range(n)] + [(n + i, None, b"new-%d" % i) for i in range(5)]
    # and it all survives one more crash
    b.kill9()
    b.start()
    cu.wait_topic_ready(b.bootstrap, topic_name, 1)
    assert du.watermarks(b.bootstrap, topic_name, [0]) == {0: (0, n + 5)}
    assert du.read_partitions(b.bootstrap, topic_name, {0: n + 5})[0] == got[0]
