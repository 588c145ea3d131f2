"""Hostile and malformed frames: each gets its connection closed (or an
answer), the broker stays up, and other clients are unaffected.

Every exchange must end in an observed outcome: a complete response frame,
or the broker closing the connection (EOF or reset). Silence until the
timeout fails the test: it is neither.

With RUNNEL_BROKER_BIN, this module starts its own broker under an address
space limit (broker_under_test.py: `prlimit --as`, 4 GiB): then a decoder that sizes an
allocation from a count read off the wire (an array count of 2^31-1 asks for
hundreds of GB) aborts the broker instead of being hidden by overcommit. With
COMPAT_APACHE_KAFKA=1 or KAFKA_BOOTSTRAP the same frames go to that broker,
as started."""
from __future__ import annotations

import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import broker_under_test as but
import compat_util as cu

EXCHANGE_TIMEOUT = 10.0

# Requests the cargo-fuzz target decode_request found to make kafka-protocol
# 0.18 allocate from an untrusted array length.
FUZZ_FOUND = [
    "0001000800000007000966757a7a2d73656564ffffffff000001f400000001032000000000000000ffffffff0000000100066f726465727300000001000000000000000000000005000000000000000effffffff40ffffff0010000000000000",
    "0003000009000007000009070000",
    "00200003002d0000000004000000",
    "00210001000000f9ffff3cfffffe",
    "0014000300000500000007000909",
    "001400010008ff00000007000000",
    "000300000000000000007573ffff",
]

# Header (api key, version, correlation id 1, null client id[, no tags]) and
# the body up to one array count of 2^31-1 (2^32-1 for the compact one).
# The same frames are kept in fuzz/crashes/decode_request/.
HUGE_COUNT = {
    "produce-v3": "0000000300000001ffffffffffff000075307fffffff",
    "produce-v9": "0000000900000001ffff0000ffff000075308080808008",
    "metadata-v1": "0003000100000001ffff7fffffff",
    "metadata-v12": "0003000c00000001ffff008080808008",
    "joingroup-v5": "000b000500000001ffff0001670000afc8000493e00000ffff0008636f6e73756d65727fffffff",
    "createtopics-v4": "0013000400000001ffff7fffffff",
    "createtopics-v5": "0013000500000001ffff00ffffffff0f",
}

# Bodies for the sweep over every API and version the broker advertises:
# counts and lengths of 2^31-1 / 2^32-1 wherever the first fields fall, with
# and without a leading empty tag buffer (flexible headers).
SWEEP_BODIES = [
    b"\x7f\xff\xff\xff" * 4,
    b"\x00" + b"\x7f\xff\xff\xff" * 4,
    b"\xff\xff\xff\xff\x0f" * 4,
    b"\x00" + b"\xff\xff\xff\xff\x0f" * 4,
    b"\x00\x00" + b"\x7f\xff\xff\xff" * 4,
]


@pytest.fixture(scope="module")
def target(request):
    with but.target(request) as t:
        yield t


def exchange(bootstrap, payload: bytes, prefix_len=True, timeout=EXCHANGE_TIMEOUT):
    """Sends one frame and returns ("closed", None) when the broker closes the
    connection, or ("answered", response) for a complete response frame.
    Fails when neither happens within `timeout`."""
    with but.connect(bootstrap, timeout) as s:
        try:
            s.sendall((struct.pack(">i", len(payload)) if prefix_len else b"") + payload)
        except (BrokenPipeError, ConnectionResetError):
            return "closed", None
        s.settimeout(timeout)
        try:
            body = but.read_response(s)
            return ("closed", None) if body is None else ("answered", body)
        except ConnectionResetError:
            return "closed", None
        except socket.timeout:
            raise AssertionError(
                f"frame {payload[:32].hex()}...: no answer and no close within {timeout}s") from None


def assert_closed(bootstrap, payload, prefix_len=True):
    outcome, resp = exchange(bootstrap, payload, prefix_len)
    assert outcome == "closed", f"frame {payload[:32].hex()}: expected the connection closed, got {resp!r}"


def assert_serving(target, topic):
    """The process is up and a real client still produces and reads back."""
    target.assert_alive()
    try:
        _canary(target.bootstrap, topic)
    except Exception:
        target.assert_alive()  # say so if the broker died meanwhile
        raise
    target.assert_alive()


def _canary(bootstrap, topic):
    cu.create_topic(bootstrap, topic, 1)
    from confluent_kafka import Consumer, Producer, TopicPartition
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    p.produce(topic, key=b"k", value=b"still-alive")
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bad-input-check",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    m = c.poll(30)
    c.close()
    assert m is not None and m.error() is None and m.value() == b"still-alive"


@pytest.mark.parametrize("frame", FUZZ_FOUND, ids=[f"fuzz{i}" for i in range(len(FUZZ_FOUND))])
def test_fuzz_found_frames_do_not_kill_the_broker(target, topic_name, frame):
    outcome, resp = exchange(target.bootstrap, bytes.fromhex(frame))
    if outcome == "answered":
        # an answer is fine, but it must be to this request
        assert resp[:4] == bytes.fromhex(frame)[4:8], f"answer with another correlation id: {resp!r}"
    assert_serving(target, topic_name)


@pytest.mark.parametrize("name", list(HUGE_COUNT))
def test_huge_array_counts_close_the_connection(target, topic_name, name):
    # Kafka refuses the count before allocating ("Tried to allocate a
    # collection of size 2147483647, but there are only 0 bytes remaining")
    # and closes the connection.
    assert_closed(target.bootstrap, bytes.fromhex(HUGE_COUNT[name]))
    assert_serving(target, topic_name)


def _advertised(bootstrap):
    """(api key, min, max) of every API the broker advertises (ApiVersions v0)."""
    outcome, resp = exchange(bootstrap, struct.pack(">hhi", 18, 0, 99) + b"\xff\xff")
    assert outcome == "answered", "ApiVersions v0 was not answered"
    corr, err, n = struct.unpack(">ihi", resp[:10])
    assert (corr, err) == (99, 0)
    return [struct.unpack(">hhh", resp[10 + 6 * i:16 + 6 * i]) for i in range(n)]


def test_huge_counts_in_every_advertised_api_and_version(target, topic_name):
    apis = _advertised(target.bootstrap)
    assert len(apis) >= 20, apis
    frames = []
    corr = 1000
    for key, lo, hi in apis:
        for v in range(lo, hi + 1):
            for body in SWEEP_BODIES:
                corr += 1
                frames.append(struct.pack(">hhih", key, v, corr, -1) + body)
    started = time.time()
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda f: (f, exchange(target.bootstrap, f)), frames))
    for f, (outcome, resp) in outcomes:
        if outcome == "answered":
            assert resp[:4] == f[4:8], f"frame {f.hex()}: answer with another correlation id {resp[:4].hex()}"
    closed = sum(1 for _, (o, _) in outcomes if o == "closed")
    print(f"{len(frames)} frames over {len(apis)} APIs in {time.time() - started:.1f}s: "
          f"{closed} closed, {len(frames) - closed} answered")
    assert closed > len(frames) // 2
    assert_serving(target, topic_name)


def test_malformed_frames(target, topic_name):
    bs = target.bootstrap
    # a negative size, a size over socket.request.max.bytes
    assert_closed(bs, struct.pack(">i", -5), prefix_len=False)
    assert_closed(bs, struct.pack(">i", 200 * 1024 * 1024) + b"x" * 10, prefix_len=False)
    # a truncated header, an unknown API key, an unsupported version of a known API
    assert_closed(bs, b"\x00\x03")
    assert_closed(bs, struct.pack(">hhi", 999, 0, 1) + b"\x00\x00")
    assert_closed(bs, struct.pack(">hhi", 3, 99, 1) + b"\x00\x00")
    # ApiVersions at an unsupported version is answered at v0 with UNSUPPORTED_VERSION (35).
    # Kafka reads its header as the newest (v2) header: client id, then tags.
    outcome, r = exchange(bs, struct.pack(">hhi", 18, 99, 7) + b"\x00\x00" + b"\x00")
    assert outcome == "answered"
    corr, err = struct.unpack(">ih", r[:6])
    assert (corr, err) == (7, 35)
    assert_serving(target, topic_name)

