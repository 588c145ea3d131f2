"""A bounded, process-level fuzz run: mutated request frames from several
connections at once while a canary producer (acks=all) writes, then every
record the canary had acknowledged must be read back at its acknowledged
offset, the canary must have seen no error, and the broker process must still
be up and serving.

The frames are the fuzz seeds (fuzz/seeds/decode_request: a well-formed frame
for every API and version Runnel serves, written by fuzz/examples/gen_seeds.rs
with kafka-protocol's encoders), mutated as libFuzzer does: bit flips,
interesting integers (0, -1, 2^31-1, ...) over counts and lengths, huge
varints, inserted, deleted, duplicated and spliced bytes, truncation.
The run is deterministic for a given FUZZ_FRAMES_SEED.

FUZZ_FRAMES_SECONDS (default 30 in the default suite; scripts/fuzz runs the long fuzzing) bounds the mutation phase,
FUZZ_FRAMES_CONNECTIONS (default 6) sets the concurrent connections."""
from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time

import pytest

import broker_under_test as but
import compat_util as cu

SEEDS = cu.REPO / "fuzz" / "seeds" / "decode_request"
SECONDS = float(os.environ.get("FUZZ_FRAMES_SECONDS", "30"))
CONNECTIONS = int(os.environ.get("FUZZ_FRAMES_CONNECTIONS", "6"))
SEED = int(os.environ.get("FUZZ_FRAMES_SEED", "20261203"))
# How long a connection waits for an answer before moving on (some requests
# legitimately get none: acks=0 produce, long polls, pending joins).
ANSWER_WAIT = 1.0

INTERESTING_32 = [0, 1, -1, 0x7FFFFFFF, -0x80000000, 0x7FFF, 0x8000, 0xFFFF, 16, 64, 1000]
INTERESTING_16 = [0, 1, -1, 0x7FFF, -0x8000, 0xFF]
HUGE_VARINTS = [b"\xff\xff\xff\xff\x0f", b"\x80\x80\x80\x80\x08", b"\xff\xff\xff\x7f", b"\xfe\xff\xff\xff\x0f"]


def load_seeds():
    frames = [p.read_bytes() for p in sorted(SEEDS.iterdir()) if p.is_file()]
    assert len(frames) >= 100, f"only {len(frames)} seeds in {SEEDS}"
    return frames


def mutate(rng: random.Random, seeds, frame: bytes) -> bytes:
    b = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        n = len(b)
        op = rng.randrange(9)
        # keep the api key and version (bytes 0-3) most of the time, so the
        # mutation reaches the body decoders of the API the seed was for
        lo = 4 if n > 4 and rng.random() < 0.95 else 0
        at = rng.randrange(lo, n) if n > lo else 0
        if op == 0 and n:
            b[at] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            b[at] = rng.choice([0, 1, 0x7F, 0x80, 0xFF])
        elif op == 2:
            b[at:at + 4] = struct.pack(">I", rng.choice(INTERESTING_32) & 0xFFFFFFFF)
        elif op == 3:
            b[at:at + 2] = struct.pack(">H", rng.choice(INTERESTING_16) & 0xFFFF)
        elif op == 4:
            v = rng.choice(HUGE_VARINTS)
            b[at:at + len(v)] = v
        elif op == 5:
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 6 and n > lo:
            del b[at:at + rng.randint(1, 16)]
        elif op == 7 and n > lo:
            chunk = b[at:at + rng.randint(1, 32)]
            b[at:at] = chunk
        elif op == 8:
            other = rng.choice(seeds)
            cut = rng.randrange(len(other)) if other else 0
            b = b[:at] + bytearray(other[cut:])
    return bytes(b[:4096])


class Fuzzer(threading.Thread):
    def __init__(self, bootstrap, seeds, rng, deadline):
        super().__init__(daemon=True)
        self.bootstrap, self.seeds, self.rng, self.deadline = bootstrap, seeds, rng, deadline
        self.sent = self.answered = self.closed = self.silent = self.refused = 0
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def _run(self):
        sock = None
        corr = 0
        while time.time() < self.deadline:
            if sock is None:
                try:
                    sock = but.connect(self.bootstrap, 10)
                except OSError:
                    # the broker must keep accepting connections
                    self.refused += 1
                    if self.refused > 20:
                        raise
                    time.sleep(0.5)
                    continue
                sock.settimeout(ANSWER_WAIT)
            frame = bytearray(mutate(self.rng, self.seeds, self.rng.choice(self.seeds)))
            corr += 1
            if len(frame) >= 8 and self.rng.random() < 0.9:
                frame[4:8] = struct.pack(">i", corr)
            try:
                sock.sendall(struct.pack(">i", len(frame)) + frame)
                self.sent += 1
                resp = but.read_response(sock)
            except socket.timeout:
                self.silent += 1
                resp = None
            except OSError:
                self.closed += 1
                resp = None
            else:
                if resp is None:
                    self.closed += 1
                else:
                    self.answered += 1
                    continue
            sock.close()
            sock = None
        if sock is not None:
            sock.close()


class Canary(threading.Thread):
    """Produces numbered records with acks=all until stopped; remembers the
    offset of every acknowledged one and every delivery error."""

    def __init__(self, bootstrap, topic):
        super().__init__(daemon=True)
        from confluent_kafka import Producer
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                  "linger.ms": 5, "message.timeout.ms": 60000})
        self.acked = {}   # value -> (partition, offset)
        self.errors = []
        self.stop = threading.Event()

    def _report(self, err, msg):
        if err is not None:
            self.errors.append(f"{msg.value()!r}: {err}")
        else:
            self.acked[msg.value()] = (msg.partition(), msg.offset())

    def run(self):
        i = 0
        while not self.stop.is_set():
            self.producer.produce(self.topic, value=f"canary-{i}".encode(), on_delivery=self._report)
            i += 1
            self.producer.poll(0.01)
        self.remaining = self.producer.flush(60)


def read_back(bootstrap, topic, partitions):
    """value -> (partition, offset) of every record in the topic."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-verify",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in range(partitions)}
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen = {}
    pos = {p: 0 for p in range(partitions)}
    deadline = time.time() + 60
    while any(pos[p] < ends[p] for p in pos) and time.time() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        assert m.error() is None, m.error()
        seen[m.value()] = (m.partition(), m.offset())
        pos[m.partition()] = m.offset() + 1
    c.close()
    return seen


@pytest.fixture(scope="module")
def target(request):
    with but.target(request) as t:
        yield t


def test_mutated_frames_with_a_canary(target, topic_name):
    seeds = load_seeds()
    cu.create_topic(target.bootstrap, topic_name, 3)
    canary = Canary(target.bootstrap, topic_name)
    canary.start()
    time.sleep(2)  # the canary is writing before the first mutated frame
    deadline = time.time() + SECONDS
    fuzzers = [Fuzzer(target.bootstrap, seeds, random.Random(SEED + i), deadline) for i in range(CONNECTIONS)]
    for f in fuzzers:
        f.start()
    for f in fuzzers:
        f.join(SECONDS + 60)
    canary.stop.set()
    canary.join(120)

    totals = {k: sum(getattr(f, k) for f in fuzzers) for k in ("sent", "answered", "closed", "silent", "refused")}
    print(f"{target.kind}: {totals} in {SECONDS:.0f}s over {CONNECTIONS} connections; "
          f"canary acked {len(canary.acked)}, errors {len(canary.errors)}")
    target.assert_alive()
    for f in fuzzers:
        assert not f.is_alive(), "a fuzz connection hung"
        assert f.error is None, f"a fuzz connection failed: {f.error!r}"
    assert totals["sent"] >= 1000, totals
    assert canary.errors == [], canary.errors[:10]
    assert canary.remaining == 0, f"{canary.remaining} canary records never acknowledged"
    assert len(canary.acked) >= 200, f"the canary got only {len(canary.acked)} acks"

    seen = read_back(target.bootstrap, topic_name, 3)
    lost = {v: at for v, at in canary.acked.items() if seen.get(v) != at}
    assert not lost, f"{len(lost)} acknowledged records missing or moved, e.g. {list(lost.items())[:5]}"
    target.assert_alive()
