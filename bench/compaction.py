#!/usr/bin/env python3
"""Log cleaner benchmark: cleaner throughput and produce latency while it runs.

    python3 bench/compaction.py [--brokers runnel,kafka] [--mb 256] [--keys 20000]

For each broker (Runnel's target/release/runnel-broker or $RUNNEL_BROKER_BIN;
Apache Kafka 4.1.1 through scripts/run-apache-kafka.sh) and each of cleaner
on / off (`log.cleaner.enable`), on a fresh data directory:

- a compacted topic with 16 MiB segments (internal.segment.bytes) and the
  default min.cleanable.dirty.ratio 0.5 gets --mb MiB of 1 KiB values over
  --keys keys (acks=1, as fast as one confluent-kafka producer goes);
- meanwhile a probe producer sends one 100-byte record every 2 ms with
  acks=all to a plain topic and records each one's delivery latency;
- after the load it waits until the cleaner has been idle for 10 s (at most
  120 s).

Reported: load MB/s, the probe's p50/p99/max latency over the load and the
wait, the compacted topic's bytes on disk at the end, and the cleaner's
"MB of log processed" per second of cleaning time (Kafka's own figure from
its LogCleaner log lines; Runnel's from its "cleaned log" lines: bytes of the
segments replaced over the cleaning time, the same definition).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "compat"))
sys.path.insert(0, str(REPO / "tests" / "durability"))

import compat_util as cu  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from conftest import ApacheKafkaBroker, RunnelBroker  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def probe(bootstrap, topic, stop, lat):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})

    def cb(t0):
        def done(err, _msg):
            if err is None:
                lat.append(time.perf_counter() - t0)
        return done

    nxt = time.perf_counter()
    while not stop.is_set():
        p.produce(topic, b"p" * 100, on_delivery=cb(time.perf_counter()))
        p.poll(0)
        nxt += 0.002
        time.sleep(max(0.0, nxt - time.perf_counter()))
    p.flush(30)


def cleaner_figures(b):
    """(MB processed, seconds of cleaning, number of cleanings) from the broker's log."""
    text = ANSI.sub("", "\n".join(p.read_text(errors="replace") for p in b.logs if p.exists()))
    if b.kind == "runnel":
        mb = secs = 0.0
        n = 0
        for ln in text.splitlines():
            if "cleaned log" in ln and "bytes_before=" in ln:
                mb += int(ln.split("bytes_before=")[1].split()[0]) / 1e6
                secs += int(ln.split(" ms=")[1].split()[0]) / 1e3
                n += 1
        return mb, secs, n
    mb = secs = 0.0
    n = 0
    for m in re.finditer(r"([\d,.]+) MB of log processed in ([\d,.]+) seconds", text):
        mb += float(m.group(1).replace(",", ""))
        secs += float(m.group(2).replace(",", ""))
        n += 1
    return mb, secs, n


def last_cleaning_at(b):
    return cleaner_figures(b)[2]


def run(kind, cleaner, args):
    work = Path(tempfile.mkdtemp(prefix="runnel-bench-compaction-"))
    ov = {"log.cleaner.enable": str(cleaner).lower(), "log.cleaner.backoff.ms": "1000"}
    if kind == "kafka":
        cu.load_env_sh()
        b = ApacheKafkaBroker(work, ov)
    else:
        binary = os.environ.get("RUNNEL_BROKER_BIN") or str(REPO / "target/release/runnel-broker")
        b = RunnelBroker(binary, work, ov)
    try:
        b.start()
        cu.create_topic(b.bootstrap, "compacted", 1, config={
            "cleanup.policy": "compact", "internal.segment.bytes": str(16 << 20)})
        cu.create_topic(b.bootstrap, "probe", 1)
        lat: list[float] = []
        stop = threading.Event()
        t = threading.Thread(target=probe, args=(b.bootstrap, "probe", stop, lat))
        t.start()
        time.sleep(2)
        lat.clear()
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "1", "linger.ms": 5,
                      "batch.size": 65536, "queue.buffering.max.kbytes": 65536})
        value = b"v" * 1024
        n = args.mb * 1024
        t0 = time.time()
        for i in range(n):
            while True:
                try:
                    p.produce("compacted", value, key=b"key-%08d" % (i * 7919 % args.keys))
                    break
                except BufferError:
                    p.poll(0.01)
            if i % 1000 == 0:
                p.poll(0)
        p.flush(120)
        load_s = time.time() - t0
        # until the cleaner has been idle 10 s (at most 120 s)
        seen, idle_since, deadline = -1, time.time(), time.time() + 120
        while time.time() < deadline and time.time() - idle_since < 10:
            c = last_cleaning_at(b)
            if c != seen:
                seen, idle_since = c, time.time()
            time.sleep(1)
        stop.set()
        t.join()
        pdir = b.data / "compacted-0"
        disk = sum(f.stat().st_size for f in pdir.glob("*.log"))
        mb, secs, cleanings = cleaner_figures(b)
        lat.sort()
        q = statistics.quantiles(lat, n=100) if len(lat) > 100 else [float("nan")] * 99
        return {"broker": kind, "cleaner": cleaner, "load_mb_s": args.mb / load_s,
                "probe_p50_ms": q[49] * 1e3, "probe_p99_ms": q[98] * 1e3,
                "probe_max_ms": (lat[-1] if lat else float("nan")) * 1e3, "probes": len(lat),
                "disk_mb": disk / 1e6, "cleanings": cleanings, "cleaned_mb": mb,
                "cleaner_mb_s": mb / secs if secs else float("nan")}
    finally:
        b.close()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", default="runnel,kafka")
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--keys", type=int, default=20000)
    args = ap.parse_args()
    rows = []
    for kind in args.brokers.split(","):
        for cleaner in (True, False):
            r = run(kind, cleaner, args)
            rows.append(r)
            print(r, flush=True)
    cols = ["broker", "cleaner", "load_mb_s", "probe_p50_ms", "probe_p99_ms", "probe_max_ms",
            "probes", "disk_mb", "cleanings", "cleaned_mb", "cleaner_mb_s"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]) for c in cols))


if __name__ == "__main__":
    main()
