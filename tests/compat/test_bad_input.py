"""Hostile and malformed frames: each gets its connection closed (or an
error answer), the broker stays up, and other clients are unaffected.

The hex frames below are requests the cargo-fuzz target decode_request found
to make kafka-protocol 0.18 allocate from an untrusted array length (one asks
for ~100 GB); before the allocation guard, each one aborted the broker."""
import socket
import struct

import pytest

import compat_util as cu

FUZZ_FOUND = [
    "0001000800000007000966757a7a2d73656564ffffffff000001f400000001032000000000000000ffffffff0000000100066f726465727300000001000000000000000000000005000000000000000effffffff40ffffff0010000000000000",
    "0003000009000007000009070000",
    "00200003002d0000000004000000",
    "00210001000000f9ffff3cfffffe",
    "0014000300000500000007000909",
    "001400010008ff00000007000000",
    "000300000000000000007573ffff",
]


def _send_raw(bootstrap, payload: bytes, prefix_len=True):
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall((struct.pack(">i", len(payload)) if prefix_len else b"") + payload)
        s.settimeout(5)
        try:
            return s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return b""


def _assert_serving(bootstrap, topic):
    # a real client still works: produce and read back
    cu.create_topic(bootstrap, topic, 1)
    from confluent_kafka import Producer, Consumer, TopicPartition
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(topic, key=b"k", value=b"still-alive")
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bad-input-check", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    m = c.poll(30)
    c.close()
    assert m is not None and m.error() is None and m.value() == b"still-alive"


@pytest.mark.parametrize("frame", FUZZ_FOUND, ids=[f"fuzz{i}" for i in range(len(FUZZ_FOUND))])
def test_fuzz_found_frames_do_not_kill_the_broker(bootstrap, topic_name, frame):
    _send_raw(bootstrap, bytes.fromhex(frame))
    _assert_serving(bootstrap, topic_name)


def test_malformed_frames(bootstrap, topic_name):
    # negative size, a size over socket.request.max.bytes, a truncated header,
    # an unknown API key, an unsupported version of a known API
    assert _send_raw(bootstrap, struct.pack(">i", -5), prefix_len=False) == b""
    assert _send_raw(bootstrap, struct.pack(">i", 200 * 1024 * 1024) + b"x" * 10, prefix_len=False) == b""
    assert _send_raw(bootstrap, b"\x00\x03") == b""
    assert _send_raw(bootstrap, struct.pack(">hhi", 999, 0, 1) + b"\x00\x00") == b""
    assert _send_raw(bootstrap, struct.pack(">hhi", 3, 99, 1) + b"\x00\x00") == b""
    # ApiVersions at an unsupported version is answered at v0 with UNSUPPORTED_VERSION (35)
    r = _send_raw(bootstrap, struct.pack(">hhi", 18, 99, 7) + b"\x00\x00")
    size, corr, err = struct.unpack(">iih", r[:10])
    assert (corr, err) == (7, 35)
    _assert_serving(bootstrap, topic_name)
