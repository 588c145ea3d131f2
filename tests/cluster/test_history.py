"""The history checker and the replica comparison catch what they should:
synthetic histories and doctored on-disk logs, no cluster needed.

    python3 -m pytest tests/cluster/test_history.py -q
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from history import History, check, classify_error, load, main

HERE = Path(__file__).resolve().parent


def good_history(n=12, partitions=3):
    """n writes, all acknowledged, read back in place; a group that committed
    and resumed correctly."""
    h = History()
    offs = {p: 0 for p in range(partitions)}
    for k in range(n):
        p = k % partitions
        i = h.invoke(f"w-{k}", p)
        h.ok(i, offs[p])
        h.add({"type": "poll", "partition": p, "offset": offs[p], "value": f"w-{k}"})
        offs[p] += 1
    h.add({"type": "commit", "status": "ok", "offsets": {str(p): 2 for p in range(partitions)}})
    for k in range(n):
        p = k % partitions
        h.add({"type": "read", "partition": p, "offset": k // partitions, "value": f"w-{k}"})
    h.add({"type": "end", "offsets": {str(p): o for p, o in offs.items()}})
    h.add({"type": "committed", "offsets": {str(p): 2 for p in range(partitions)}})
    for p in range(partitions):
        h.add({"type": "resume", "partition": p, "offset": 2})
    return h.events


def kinds(events):
    return set(check(events).anomalies)


def without(events, pred):
    return [e for e in events if not pred(e)]


def test_a_good_history_is_valid():
    r = check(good_history())
    assert r.valid, r.summary()
    assert r.counts["ok"] == 12 and r.counts["read"] == 12


def test_lost_acknowledged_write():
    ev = without(good_history(), lambda e: e["type"] == "read" and e["value"] == "w-4")
    # the partition's later records moved down: w-7 now sits at w-4's offset
    ev = [dict(e, offset=e["offset"] - 1) if e["type"] == "read" and e["value"] in ("w-7", "w-10") else e
          for e in ev]
    ev = [dict(e, offsets={"0": 4, "1": 3, "2": 4}) if e["type"] == "end" else e for e in ev]
    assert "lost" in kinds(ev)


def test_truncated_tail_is_lost_and_beyond_end():
    ev = without(good_history(), lambda e: e["type"] == "read" and e["value"] == "w-10")
    ev = [dict(e, offsets={"0": 4, "1": 3, "2": 4}) if e["type"] == "end" else e for e in ev]
    k = kinds(ev)
    assert {"lost", "beyond-end", "poll-mismatch"} <= k, k


def test_misplaced_write():
    ev = [dict(e, value="w-7") if e["type"] == "read" and e["value"] == "w-4" else
          dict(e, value="w-4") if e["type"] == "read" and e["value"] == "w-7" else e for e in good_history()]
    assert "misplaced" in kinds(ev)


def test_duplicate_and_phantom_values():
    ev = good_history()
    ev.insert(-5, {"type": "read", "partition": 0, "offset": 4, "value": "w-0"})
    ev.insert(-5, {"type": "read", "partition": 0, "offset": 5, "value": "never-written"})
    k = kinds(ev)
    assert {"duplicate", "phantom"} <= k, k


def test_value_in_the_wrong_partition_is_phantom():
    ev = [dict(e, partition=2, offset=9) if e["type"] == "read" and e["value"] == "w-0" else e
          for e in good_history()]
    assert "phantom" in kinds(ev)


def test_definite_failure_must_not_be_visible_but_indeterminate_may():
    h = History()
    for e in good_history():
        h.add(e)
    a = h.invoke("w-fail", 0)
    h.failed(a, "NOT_ENOUGH_REPLICAS")
    b = h.invoke("w-info", 1)
    h.failed(b, "NOT_ENOUGH_REPLICAS_AFTER_APPEND")
    c = h.invoke("w-timeout", 2)
    h.failed(c, "_MSG_TIMED_OUT")
    h.invoke("w-unfinished", 2)
    base = list(h.events)
    assert check(base).valid, check(base).summary()
    vis = base + [{"type": "read", "partition": 1, "offset": 4, "value": "w-info"},
                  {"type": "read", "partition": 2, "offset": 4, "value": "w-timeout"},
                  {"type": "read", "partition": 2, "offset": 5, "value": "w-unfinished"}]
    r = check(vis)
    assert r.valid, r.summary()
    assert r.counts["info-visible"] == 3
    assert kinds(base + [{"type": "read", "partition": 0, "offset": 4, "value": "w-fail"}]) == {"fail-visible"}


def test_error_classification():
    assert classify_error("NOT_ENOUGH_REPLICAS") == "fail"
    assert classify_error("NOT_ENOUGH_REPLICAS_AFTER_APPEND") == "info"
    assert classify_error("_MSG_TIMED_OUT") == "info"
    assert classify_error("REQUEST_TIMED_OUT") == "info"


def test_conflicting_acks_and_reordering():
    h = History()
    a, b = h.invoke("a", 0), h.invoke("b", 0)
    h.ok(b, 0)
    h.ok(a, 1)
    h.add({"type": "read", "partition": 0, "offset": 0, "value": "b"})
    h.add({"type": "read", "partition": 0, "offset": 1, "value": "a"})
    assert kinds(h.events) == {"reordered"}
    h2 = History()
    a, b = h2.invoke("a", 0), h2.invoke("b", 0)
    h2.ok(a, 0)
    h2.ok(b, 0)
    h2.add({"type": "read", "partition": 0, "offset": 0, "value": "a"})
    assert {"conflict", "misplaced"} <= kinds(h2.events) or {"conflict", "lost"} <= kinds(h2.events)


def test_non_monotonic_and_incomplete_read():
    ev = good_history()
    reads = [e for e in ev if e["type"] == "read" and e["partition"] == 0]
    i, j = ev.index(reads[1]), ev.index(reads[2])
    ev[i], ev[j] = ev[j], ev[i]
    assert "non-monotonic" in kinds(ev)
    ev2 = [dict(e, offsets={"0": 9, "1": 4, "2": 4}) if e["type"] == "end" else e for e in good_history()]
    assert "incomplete-read" in kinds(ev2)


def test_no_acks_window():
    h = History()
    i = h.invoke("x", 0)
    h.window("no-acks", "start")
    h.ok(i, 0)
    h.window("no-acks", "end")
    h.add({"type": "read", "partition": 0, "offset": 0, "value": "x"})
    assert kinds(h.events) == {"acked-in-window"}
    h2 = History()
    i = h2.invoke("x", 0)
    h2.window("no-acks", "start")
    h2.window("no-acks", "end")
    h2.ok(i, 0)   # acknowledged after the nodes came back: fine
    h2.add({"type": "read", "partition": 0, "offset": 0, "value": "x"})
    assert check(h2.events).valid


def test_group_commit_and_resume_checks():
    ev = good_history()
    regressed = [dict(e, offsets={"0": 1, "1": 2, "2": 2}) if e["type"] == "committed" else e for e in ev]
    assert "commit-regressed" in kinds(regressed)
    unknown = [dict(e, offsets={"0": 3, "1": 2, "2": 2}) if e["type"] == "committed" else e for e in ev]
    assert "commit-unknown" in kinds(unknown)
    # an indeterminate commit may or may not have been applied
    maybe = ev[:-5] + [{"type": "commit", "status": "info", "offsets": {"0": 3}, "time": 0}] + ev[-5:]
    maybe = [dict(e, offsets={"0": 3, "1": 2, "2": 2}) if e["type"] == "committed" else e for e in maybe]
    maybe = [dict(e, offset=3) if e["type"] == "resume" and e["partition"] == 0 else e for e in maybe]
    assert check(maybe).valid, check(maybe).summary()
    early = [dict(e, offset=0) if e["type"] == "resume" and e["partition"] == 1 else e for e in ev]
    assert "resume-mismatch" in kinds(early)
    missing = without(ev, lambda e: e["type"] == "resume" and e["partition"] == 2)
    assert "resume-mismatch" in kinds(missing)


def test_poll_of_data_later_lost():
    ev = good_history()
    ev.insert(0, {"type": "poll", "partition": 1, "offset": 1, "value": "w-999", "time": 0})
    assert "poll-mismatch" in kinds(ev)


def test_cli_on_saved_history(tmp_path):
    good = tmp_path / "good.jsonl"
    h = History(good)
    for e in good_history():
        h.add(e)
    h.close()
    assert main([str(good)]) == 0
    bad = tmp_path / "bad.jsonl"
    lines = [ln for ln in good.read_text().splitlines() if '"w-4"' not in ln or '"read"' not in ln]
    bad.write_text("\n".join(lines) + "\n" + '{"type": "inv')   # and a torn last line
    assert len(load(bad)) == len(lines)
    p = subprocess.run([sys.executable, str(HERE / "history.py"), str(bad), "--json"], capture_output=True,
                       text=True)
    assert p.returncode == 1, p.stdout + p.stderr
    assert json.loads(p.stdout)["anomalies"]["lost"]["count"] == 1


# ---------------------------------------------------------------- replicas on disk

def batch(base, count, payload=b"x", epoch=0, pid=-1, pepoch=-1, seq=-1):
    """A RecordBatch v2 header (61 bytes) and a dummy body: the comparison
    reads baseOffset, batchLength, lastOffsetDelta and the producer fields,
    and compares the bytes."""
    body = (struct.pack(">ibIhi", epoch, 2, 0, 0, count - 1) + struct.pack(">qq", 0, 0)
            + struct.pack(">qhii", pid, pepoch, seq, count) + payload * 20)
    return struct.pack(">qi", base, len(body)) + body


def fake_cluster(tmp_path, logs):
    nodes = []
    for nid, segs in logs.items():
        d = tmp_path / f"n{nid}" / "data" / "t-0"
        d.mkdir(parents=True)
        for name, data in segs.items():
            (d / name).write_bytes(data)
        nodes.append(SimpleNamespace(node_id=nid, data_dir=tmp_path / f"n{nid}" / "data"))
    return SimpleNamespace(nodes=nodes)


def test_replica_comparison(tmp_path):
    from faults_util import compare_replicas, read_batches
    log = batch(0, 3) + batch(3, 2) + batch(5, 4)
    seg = "00000000000000000000.log"
    same = fake_cluster(tmp_path / "a", {1: {seg: log}, 2: {seg: log},
                                         # another roll point: same batches, two segments
                                         3: {seg: batch(0, 3) + batch(3, 2), "00000000000000000005.log": batch(5, 4)}})
    assert [b[:2] for b in read_batches(same.nodes[0].data_dir / "t-0")] == [(0, 2), (3, 4), (5, 8)]
    assert compare_replicas(same, "t", 1, {0: 9}) == []
    # a follower still behind above the HW is fine; one missing data below it is not
    behind = fake_cluster(tmp_path / "b", {1: {seg: log}, 2: {seg: batch(0, 3) + batch(3, 2)}, 3: {seg: log}})
    assert compare_replicas(behind, "t", 1, {0: 5}) == []
    assert compare_replicas(behind, "t", 1, {0: 9}) != []
    # one flipped byte below the HW
    flipped = bytearray(log)
    flipped[len(batch(0, 3)) + 30] ^= 1
    corrupt = fake_cluster(tmp_path / "c", {1: {seg: log}, 2: {seg: log}, 3: {seg: bytes(flipped)}})
    probs = compare_replicas(corrupt, "t", 1, {0: 9})
    assert len(probs) == 1 and "node 3" in probs[0], probs
    # a different leader epoch stamped on a batch is a difference too
    epoch = fake_cluster(tmp_path / "d", {1: {seg: log}, 2: {seg: batch(0, 3) + batch(3, 2, epoch=1) + batch(5, 4)},
                                          3: {seg: log}})
    assert compare_replicas(epoch, "t", 1, {0: 9}) != []
    # a torn tail (kill -9 mid-write) is ignored
    torn = fake_cluster(tmp_path / "e", {1: {seg: log}, 2: {seg: log + batch(9, 1)[:20]}, 3: {seg: log}})
    assert compare_replicas(torn, "t", 1, {0: 9}) == []


def test_broker_idempotence_on_disk(tmp_path):
    from faults_util import idempotence_violations
    seg = "00000000000000000000.log"
    # a retry under a new epoch (what librdkafka does after a timeout) is not the broker's fault
    fine = batch(0, 3, pid=7, pepoch=0, seq=0) + batch(3, 3, pid=7, pepoch=1, seq=0) + batch(6, 2, pid=7, pepoch=1, seq=3)
    ok = fake_cluster(tmp_path / "a", {1: {seg: fine}, 2: {seg: fine}, 3: {seg: fine}})
    assert idempotence_violations(ok, "t", 1) == []
    # the same producer, epoch and sequences appended twice is
    twice = fine + batch(8, 2, pid=7, pepoch=1, seq=4)
    bad = fake_cluster(tmp_path / "b", {1: {seg: twice}, 2: {seg: fine}, 3: {seg: fine}})
    probs = idempotence_violations(bad, "t", 1)
    assert len(probs) == 1 and "node 1" in probs[0] and "sequence 4" in probs[0], probs
    # non-idempotent batches (producer id -1) are not checked
    plain = batch(0, 3) + batch(3, 3)
    assert idempotence_violations(fake_cluster(tmp_path / "c", {1: {seg: plain}}), "t", 1) == []


def test_duplicates_tolerated_only_after_producer_timeouts():
    ev = good_history()
    ev.insert(-5, {"type": "read", "partition": 0, "offset": 4, "value": "w-0"})
    assert kinds(ev) == {"duplicate"}
    h = History()
    for e in ev:
        h.add(e)
    i = h.invoke("w-late", 1)
    h.failed(i, "_MSG_TIMED_OUT")
    r = check(h.events)
    assert r.valid and r.counts["duplicates-tolerated"] == 1, r.summary()
    assert "duplicate" in kinds_strict(h.events)


def kinds_strict(events):
    return set(check(events, strict_duplicates=True).anomalies)
