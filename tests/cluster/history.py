#!/usr/bin/env python3
"""A Jepsen-style history of a produce/consume workload under faults, and its
checker.

Importable (the fault tests record with `History` and call `check`) and a
CLI on a saved history:

    python3 tests/cluster/history.py run/history.jsonl [--examples N] [--json]

exits 0 when the history is valid, 1 when it shows an anomaly, 2 on bad input.

A history is JSONL, one event per line, every event a dict with "type":

  invoke   {id, time, value, partition}      a write is handed to the producer
  ok       {id, time, offset}                 acknowledged (acks=all) at offset
  fail     {id, time, error}                  definitely not written
  info     {id, time, error}                  indeterminate (timeout, ...)
  nemesis  {time, action, ...}                a fault or its healing (free form)
  window   {time, name, edge: start|end}      "no-acks": no write may be
                                              acknowledged while it is open
  poll     {time, partition, offset, value}   a group consumer read this
  commit   {time, status: ok|info, offsets}   the group committed {partition: next offset}
  committed {time, offsets}                   what a new member of the group finds committed
  resume   {time, partition, offset}          first offset that new member read
  read     {partition, offset, value}         the final read of the whole log
  end      {offsets}                          {partition: end offset} of the final read

Completions refer to their invoke by id. A write with no completion is
indeterminate. An error is "fail" only when the broker refused the write
before appending it (NOT_ENOUGH_REPLICAS); NOT_ENOUGH_REPLICAS_AFTER_APPEND,
timeouts and everything else are "info".

What the checker demands (each violation is an anomaly, reported with
examples):

  lost            an ok write is not in the final read at all
  misplaced       an ok write is in the final read, but not at its acked offset
  conflict        two ok writes acked at the same (partition, offset)
  beyond-end      an ok offset at or past the partition's end offset
  duplicate       one value at two or more offsets -- unless the producer had
                  a message time out: librdkafka then bumps the idempotent
                  producer's epoch and re-sends what was in flight under the new
                  epoch, which the broker cannot recognise as a retry
                  (confluentinc/librdkafka#4953; seen on Apache Kafka 4.1.1 with
                  two of three nodes down). Such duplicates are counted
                  ("duplicates-tolerated") but are no anomaly; --strict-duplicates
                  makes them one. The broker's own guarantee (never the same
                  producer id, epoch and sequence twice) is checked on disk by
                  faults_util.idempotence_violations.
  phantom         a value in the log that was never written (or written to
                  another partition)
  fail-visible    a definitely failed write is in the log
  non-monotonic   offsets of the final read do not strictly increase
  reordered       two ok writes to one partition landed in the opposite order
                  of their invocation (the idempotent producer keeps order)
  poll-mismatch   a consumer read (partition, offset) -> value and the final log
                  has something else there (it read data that was later lost)
  acked-in-window an ok completion while a "no-acks" window was open
  commit-regressed the group's committed offset is below its last ok commit
  commit-unknown  committed offset above every offset the group ever tried to commit
  resume-mismatch the new member started reading elsewhere than the committed offset
  incomplete-read the final read stopped short of the end offsets

Gaps in the offsets of the final read are counted but are not an anomaly.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

# Kafka error codes / librdkafka error names that mean "not appended".
DEFINITE_FAILURES = {"NOT_ENOUGH_REPLICAS", "_PURGE_QUEUE", "MSG_SIZE_TOO_LARGE", "INVALID_RECORD",
                     "CORRUPT_MESSAGE", "TOPIC_AUTHORIZATION_FAILED", "UNKNOWN_TOPIC_OR_PART",
                     "_UNKNOWN_PARTITION", "_UNKNOWN_TOPIC", "_MSG_SIZE_TOO_LARGE"}


def classify_error(name: str) -> str:
    """'fail' if a produce error with this name means the write was not appended, else 'info'."""
    return "fail" if name in DEFINITE_FAILURES else "info"


class History:
    """Thread-safe recorder. Events go to memory and, if `path` is given, to a
    JSONL file as they happen (flushed per event, so a crashed run still
    leaves its history)."""

    def __init__(self, path=None):
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self._next = 0
        self._f = open(path, "w") if path else None
        self.path = Path(path) if path else None

    def add(self, ev: dict) -> dict:
        ev.setdefault("time", time.time())
        with self._lock:
            if ev.get("type") == "invoke" and ev["id"] >= self._next:
                self._next = ev["id"] + 1
            self.events.append(ev)
            if self._f:
                self._f.write(json.dumps(ev, separators=(",", ":")) + "\n")
                self._f.flush()
        return ev

    def invoke(self, value: str, partition: int) -> int:
        with self._lock:
            i = self._next
            self._next += 1
            ev = {"type": "invoke", "id": i, "value": value, "partition": partition, "time": time.time()}
            self.events.append(ev)
            if self._f:
                self._f.write(json.dumps(ev, separators=(",", ":")) + "\n")
                self._f.flush()
        return i

    def ok(self, i: int, offset: int):
        self.add({"type": "ok", "id": i, "offset": offset})

    def failed(self, i: int, error: str, kind: str | None = None):
        self.add({"type": kind or classify_error(error), "id": i, "error": error})

    def nemesis(self, action: str, **kw):
        self.add(dict({"type": "nemesis", "action": action}, **kw))

    def window(self, name: str, edge: str):
        self.add({"type": "window", "name": name, "edge": edge})

    def close(self):
        with self._lock:
            if self._f:
                self._f.close()
                self._f = None


def load(path) -> list[dict]:
    out = []
    lines = Path(path).read_text().splitlines()
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            # A run killed mid-write leaves a torn last line; anything else is bad input.
            if n == len(lines):
                break
            raise ValueError(f"{path}:{n}: {e}") from e
    return out


class Report:
    def __init__(self):
        self.counts: dict[str, int] = defaultdict(int)
        self.anomalies: dict[str, list] = defaultdict(list)
        self.notes: list[str] = []

    def bad(self, kind, example):
        self.anomalies[kind].append(example)

    @property
    def valid(self) -> bool:
        return not self.anomalies

    def summary(self, examples=5) -> str:
        lines = ["valid" if self.valid else "INVALID",
                 "counts: " + ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))]
        for k, v in sorted(self.anomalies.items()):
            lines.append(f"{k}: {len(v)}  e.g. {v[:examples]}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self, examples=20):
        return {"valid": self.valid, "counts": dict(self.counts),
                "anomalies": {k: {"count": len(v), "examples": v[:examples]} for k, v in self.anomalies.items()},
                "notes": self.notes}

    def __str__(self):
        return self.summary()


def _intkeys(d):
    return {int(k): v for k, v in (d or {}).items()}


def _epoch_bump_possible(events) -> bool:
    """True when the producer may have bumped its epoch: a write timed out
    or the producer hit a fatal error."""
    return any((ev.get("type") == "info" and "TIMED_OUT" in str(ev.get("error", "")))
               or (ev.get("type") == "nemesis" and ev.get("action") == "producer-fatal") for ev in events)


def check(events, strict_duplicates=False) -> Report:
    r = Report()
    invokes: dict[int, dict] = {}
    done: dict[int, dict] = {}
    reads: dict[int, list] = defaultdict(list)   # partition -> [(offset, value)] in read order
    polls, commits, committed, resumes, ends = [], [], None, {}, None
    windows_open: dict[str, float] = {}
    windows: list[tuple[str, float, float]] = []
    for ev in events:
        t = ev.get("type")
        if t == "invoke":
            invokes[ev["id"]] = ev
        elif t in ("ok", "fail", "info"):
            if ev["id"] in done:
                r.bad("double-completion", ev)
            done[ev["id"]] = ev
        elif t == "read":
            reads[int(ev["partition"])].append((int(ev["offset"]), ev["value"]))
        elif t == "poll":
            polls.append(ev)
        elif t == "commit":
            commits.append(ev)
        elif t == "committed":
            committed = _intkeys(ev["offsets"])
        elif t == "resume":
            resumes[int(ev["partition"])] = int(ev["offset"])
        elif t == "end":
            ends = _intkeys(ev["offsets"])
        elif t == "window":
            if ev["edge"] == "start":
                windows_open[ev["name"]] = ev["time"]
            else:
                windows.append((ev["name"], windows_open.pop(ev["name"], float("-inf")), ev["time"]))
    for name, start in windows_open.items():
        windows.append((name, start, float("inf")))

    # --- writes
    by_value = {}
    for i, inv in invokes.items():
        by_value[inv["value"]] = inv
    oks, fails, infos = [], [], []
    for i, inv in invokes.items():
        c = done.get(i)
        if c is None:
            infos.append((inv, None))
        elif c["type"] == "ok":
            oks.append((inv, c))
        elif c["type"] == "fail":
            fails.append((inv, c))
        else:
            infos.append((inv, c))
    for i in done:
        if i not in invokes:
            r.bad("completion-without-invoke", done[i])
    r.counts.update(writes=len(invokes), ok=len(oks), fail=len(fails), info=len(infos))
    errs = defaultdict(int)
    for _, c in fails + infos:
        errs[c["error"] if c else "no-completion"] += 1
    if errs:
        r.notes.append("write errors: " + ", ".join(f"{k}={v}" for k, v in sorted(errs.items())))

    # --- the final read
    have_read = bool(reads) or ends is not None
    at: dict[tuple[int, int], str] = {}
    where: dict[str, list] = defaultdict(list)
    for p, recs in reads.items():
        last = None
        for o, v in recs:
            if last is not None and o <= last:
                r.bad("non-monotonic", {"partition": p, "offset": o, "after": last})
            elif last is not None and o != last + 1:
                r.counts["gaps"] += 1
            last = o
            at[(p, o)] = v
            where[v].append((p, o))
        if ends is not None and recs and recs[-1][0] + 1 < ends.get(p, 0):
            r.bad("incomplete-read", {"partition": p, "last": recs[-1][0], "end": ends.get(p)})
    if ends is not None:
        for p, e in ends.items():
            if e > 0 and not reads.get(p):
                r.bad("incomplete-read", {"partition": p, "last": None, "end": e})
    r.counts["read"] = len(at)

    if have_read:
        acked_at = {}
        for inv, c in oks:
            p, o, v = int(inv["partition"]), int(c["offset"]), inv["value"]
            if (p, o) in acked_at:
                r.bad("conflict", {"partition": p, "offset": o, "values": [acked_at[(p, o)], v]})
            acked_at[(p, o)] = v
            if ends is not None and o >= ends.get(p, 0):
                r.bad("beyond-end", {"value": v, "partition": p, "offset": o, "end": ends.get(p)})
            if at.get((p, o)) == v:
                continue
            if where.get(v):
                r.bad("misplaced", {"value": v, "acked": [p, o], "found": where[v],
                                    "at-acked-offset": at.get((p, o))})
            else:
                r.bad("lost", {"value": v, "partition": p, "offset": o, "acked": c["time"],
                               "at-acked-offset": at.get((p, o))})
        tolerate = not strict_duplicates and _epoch_bump_possible(events)
        for v, locs in where.items():
            if len(locs) > 1:
                if tolerate:
                    r.counts["duplicates-tolerated"] += 1
                else:
                    r.bad("duplicate", {"value": v, "at": locs})
            inv = by_value.get(v)
            if inv is None:
                r.bad("phantom", {"value": v, "at": locs})
            elif any(p != int(inv["partition"]) for p, _ in locs):
                r.bad("phantom", {"value": v, "at": locs, "written-to": inv["partition"]})
        for inv, c in fails:
            if inv["value"] in where:
                r.bad("fail-visible", {"value": inv["value"], "error": c["error"], "at": where[inv["value"]]})
        if r.counts.get("duplicates-tolerated"):
            r.notes.append(f"{r.counts['duplicates-tolerated']} values at more than one offset, tolerated: "
                           "the producer timed out, so librdkafka may have bumped its epoch and re-sent")
        r.counts["info-visible"] = sum(1 for inv, _ in infos if inv["value"] in where)
        for ev in polls:
            p, o = int(ev["partition"]), int(ev["offset"])
            if at.get((p, o)) != ev["value"]:
                r.bad("poll-mismatch", {"partition": p, "offset": o, "polled": ev["value"],
                                        "final": at.get((p, o)), "time": ev["time"]})
        r.counts["polls"] = len(polls)
    else:
        r.notes.append("no final read in the history: only the write-side checks ran")

    # --- order per partition (an idempotent producer keeps its order)
    per_part = defaultdict(list)
    for inv, c in oks:
        per_part[int(inv["partition"])].append((inv["id"], int(c["offset"]), inv["value"]))
    for p, lst in per_part.items():
        lst.sort()
        best = None  # highest offset among earlier invocations
        for i, o, v in lst:
            if best is not None and o < best[0]:
                r.bad("reordered", {"partition": p, "value": v, "offset": o,
                                    "earlier-write": best[1], "at": best[0]})
            if best is None or o > best[0]:
                best = (o, v)

    # --- windows during which nothing may be acknowledged
    for name, start, end in windows:
        if name != "no-acks":
            continue
        for inv, c in oks:
            if start < c["time"] < end:
                r.bad("acked-in-window", {"value": inv["value"], "partition": inv["partition"],
                                          "offset": c["offset"], "acked": c["time"],
                                          "window": [start, end]})

    # --- consumer group
    if commits or committed is not None:
        last_ok, attempted = {}, defaultdict(set)
        for ev in commits:
            for p, o in _intkeys(ev["offsets"]).items():
                attempted[p].add(o)
                if ev["status"] == "ok":
                    last_ok[p] = o
        r.counts["commits-ok"] = sum(1 for ev in commits if ev["status"] == "ok")
        r.counts["commits-info"] = sum(1 for ev in commits if ev["status"] != "ok")
        if committed is None:
            r.notes.append("no 'committed' event: group resume not checked")
        else:
            for p, o in last_ok.items():
                got = committed.get(p)
                if got is None or got < o:
                    r.bad("commit-regressed", {"partition": p, "last-ok": o, "committed": got})
                elif got != o and got not in attempted[p]:
                    r.bad("commit-unknown", {"partition": p, "last-ok": o, "committed": got})
            for p, o in committed.items():
                if o is None or o < 0:
                    continue
                if p in resumes and resumes[p] != o:
                    r.bad("resume-mismatch", {"partition": p, "committed": o, "resumed-at": resumes[p]})
                elif p not in resumes and ends is not None and o < ends.get(p, 0):
                    r.bad("resume-mismatch", {"partition": p, "committed": o, "resumed-at": None,
                                              "end": ends.get(p)})
            r.counts["resumed"] = len(resumes)
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("history", help="history JSONL file")
    ap.add_argument("--examples", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--strict-duplicates", action="store_true",
                    help="a value at two offsets is an anomaly even after producer timeouts")
    a = ap.parse_args(argv)
    try:
        events = load(a.history)
    except (OSError, ValueError) as e:
        print(f"cannot read {a.history}: {e}", file=sys.stderr)
        return 2
    rep = check(events, strict_duplicates=a.strict_duplicates)
    print(json.dumps(rep.to_dict(a.examples), indent=1) if a.json else rep.summary(a.examples))
    return 0 if rep.valid else 1


if __name__ == "__main__":
    sys.exit(main())
