"""Unusable checkpoint files after a crash (see README.md).

A broker keeps three checkpoints: `leader-epoch-checkpoint` in each partition
directory, and `log-start-offset-checkpoint` and `recovery-point-offset-checkpoint`
in the log directory. Each test writes a log of many small segments, moves its
start to a segment boundary with DeleteRecords, waits for the checkpoints, kills
the broker (kill -9), overwrites one checkpoint with garbage (the broker must log
it) or deletes it, and restarts. What the file held must be rebuilt from the
segments, never silently taken as empty:

- leader epochs from the batch headers (the same file comes back, ListOffsets gives
  the same leader epoch);
- the log start offset from the first segment's base offset;
- the recovery point as 0: every segment is recovered, so a corrupt batch in an old,
  already flushed segment is found and the log is cut there (Kafka's rule, which
  also deletes the segments after it).

Apache Kafka 4.1.1 agrees on a deleted checkpoint; on a garbage one it takes the
whole log directory offline (its LogManager means to reset the value, but the read
has already reported the directory as failed), so the garbage cases are skipped there.
"""

from __future__ import annotations

import re
import time

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec

import compat_util as cu
import dur_util as du

N = 200
SEG_BYTES = 2048
TIMEOUT = 30
ANSI = re.compile(r"\x1b\[[0-9;]*m")
GARBAGE = b"not a checkpoint \x00\xff\n2\n"
# Kafka writes these checkpoints every 60 s by default; Runnel with its retention check.
CHECKPOINT_EVERY = {"log_flush_start_offset_checkpoint_interval_ms": 500,
                    "log_flush_offset_checkpoint_interval_ms": 500}


def value(i):
    return b"%08d" % i + b"x" * 92


wait_for = du.wait_for


def latest_epoch(bootstrap, topic):
    adm = cu.admin_client(bootstrap)
    tp = TopicPartition(topic, 0)
    res = adm.list_offsets({tp: OffsetSpec.latest()}, request_timeout=TIMEOUT)[tp].result(timeout=TIMEOUT)
    return res.offset, res.leader_epoch


def checkpoint_entries(path):
    """{(topic, partition): offset} of a log-directory checkpoint file ({} if absent or unreadable)."""
    try:
        lines = path.read_text().splitlines()
        out = {}
        for line in lines[2:2 + int(lines[1])]:
            t, p, o = line.split(" ")
            out[(t, int(p))] = int(o)
        return out
    except (OSError, ValueError, IndexError):
        return {}


def latest_log(b):
    """What the broker logged since its last start."""
    if b.kind == "apache-kafka":
        paths = [b.dir / "server.log"]
    else:
        paths = b.logs[-2:]
    return ANSI.sub("", "\n".join(p.read_text(errors="replace") for p in paths if p.exists()))


def assert_logged(b, name):
    text = latest_log(b)
    hits = [line for line in text.splitlines() if name in line]
    assert hits, f"the broker did not log anything about its unusable {name}"
    print(f"broker log: {hits[0][:300]}")


@pytest.fixture
def crashed(make_broker, topic_name):
    """A killed broker whose 1-partition topic holds N records in many segments,
    its start moved to the third segment; returns (broker, start, epoch file text,
    leader epoch)."""
    b = make_broker(**CHECKPOINT_EVERY)
    cu.create_topic(b.bootstrap, topic_name, 1, config={
        "internal.segment.bytes": str(SEG_BYTES), "retention.ms": "86400000"})
    acks = du.produce_sync(b.bootstrap, topic_name, [(0, None, value(i)) for i in range(N)],
                           **{"batch.num.messages": 1})
    assert [o for _, o, _ in acks] == list(range(N))
    pdir = du.partition_dir(b.data, topic_name, 0)
    segs = du.segments(pdir)
    assert len(segs) >= 5, [s.path.name for s in segs]
    start = segs[2].base
    adm = cu.admin_client(b.bootstrap)
    tp = TopicPartition(topic_name, 0, start)
    adm.delete_records([tp], request_timeout=TIMEOUT)[tp].result(timeout=TIMEOUT)

    def settled():
        try:
            names = [s.path.name for s in du.segments(pdir)]
        except FileNotFoundError as e:  # a segment deleted while it was read
            return False, str(e)
        starts = checkpoint_entries(b.data / "log-start-offset-checkpoint")
        points = checkpoint_entries(b.data / "recovery-point-offset-checkpoint")
        # (Kafka leaves out a start equal to the first segment's base offset)
        ok = (names[0] == "%020d.log" % start and starts.get((topic_name, 0), start) == start
              and points.get((topic_name, 0), -1) >= segs[-1].base)
        return ok, (names[:3], starts, points)

    wait_for(settled, 15, "segments below the new start deleted and both offset checkpoints written")
    end, epoch = latest_epoch(b.bootstrap, topic_name)
    assert end == N and epoch is not None and epoch >= 0, (end, epoch)
    epochs = (pdir / "leader-epoch-checkpoint").read_text()
    b.kill9()
    return b, start, epochs, epoch


def restart_and_check_log(b, topic, start):
    b.start()
    cu.wait_topic_ready(b.bootstrap, topic, 1)
    assert du.watermarks(b.bootstrap, topic, [0]) == {0: (start, N)}
    got = du.read_partitions(b.bootstrap, topic, {0: N}, start=start)
    assert got[0] == [(i, None, value(i)) for i in range(start, N)]


def spoil(b, path, how):
    """Overwrite the checkpoint with garbage, or delete it."""
    if how == "garbage":
        if b.kind == "apache-kafka":
            pytest.skip(f"Apache Kafka 4.1.1 takes the log directory offline on an unreadable "
                        f"{path.name} (KafkaStorageException; a one-directory broker shuts down); "
                        f"Runnel logs it and rebuilds what the file held")
        path.write_bytes(GARBAGE)
    else:
        path.unlink()


@pytest.mark.parametrize("how", ["garbage", "missing"])
def test_leader_epoch_checkpoint_is_rebuilt(crashed, topic_name, how):
    b, start, epochs, epoch = crashed
    if b.kind == "apache-kafka":
        pytest.skip("Apache Kafka 4.1.1 does not rebuild the leader-epoch cache from the batches: "
                    "a garbage file takes the log directory offline, a missing one is refilled only "
                    "from the segments it recovers; and its restart starts a new leader epoch")
    path = du.partition_dir(b.data, topic_name, 0) / "leader-epoch-checkpoint"
    spoil(b, path, how)
    restart_and_check_log(b, topic_name, start)
    assert latest_epoch(b.bootstrap, topic_name) == (N, epoch)
    assert path.read_text() == epochs, "the leader-epoch checkpoint was not rebuilt as it was"
    if how == "garbage":
        assert_logged(b, "leader-epoch-checkpoint")


@pytest.mark.parametrize("how", ["garbage", "missing"])
def test_log_start_checkpoint_falls_back_to_first_segment(crashed, topic_name, how):
    b, start, _, _ = crashed
    path = b.data / "log-start-offset-checkpoint"
    spoil(b, path, how)
    restart_and_check_log(b, topic_name, start)
    if how == "garbage":
        assert_logged(b, "log-start-offset-checkpoint")
    # and a well-formed checkpoint replaces what was spoilt
    wait_for(lambda: (path.exists() and path.read_bytes().startswith(b"0\n")
                      and checkpoint_entries(path).get((topic_name, 0), start) == start,
                      path.exists() and path.read_bytes()[:200]),
             15, "the log-start-offset checkpoint rewritten")


@pytest.mark.parametrize("how", ["garbage", "missing"])
def test_recovery_point_checkpoint_lost_recovers_every_segment(crashed, topic_name, how):
    b, start, _, _ = crashed
    spoil(b, b.data / "recovery-point-offset-checkpoint", how)
    # Corrupt one batch in the middle of the oldest segment (flushed long ago):
    # only a recovery of every segment reads it.
    pdir = du.partition_dir(b.data, topic_name, 0)
    segs = du.segments(pdir)
    first = segs[0]
    bad = first.batches[len(first.batches) // 2]
    data = bytearray(first.path.read_bytes())
    data[bad.pos + bad.length - 1] ^= 0xFF
    first.path.write_bytes(bytes(data))
    print(f"corrupted the batch at offset {bad.base_offset} of {first.path.name}")
    b.start()
    cu.wait_topic_ready(b.bootstrap, topic_name, 1)
    # The log is cut before the corrupt batch; the segments after it are gone.
    assert du.watermarks(b.bootstrap, topic_name, [0]) == {0: (start, bad.base_offset)}
    if how == "garbage":
        assert_logged(b, "recovery-point-offset-checkpoint")
    got = du.read_partitions(b.bootstrap, topic_name, {0: bad.base_offset}, start=start)
    assert got[0] == [(i, None, value(i)) for i in range(start, bad.base_offset)]
    assert [s.base for s in du.segments(pdir)] == [start]
    more = du.produce_sync(b.bootstrap, topic_name, [(0, None, b"after")])
    assert more == [(0, bad.base_offset, b"after")]
