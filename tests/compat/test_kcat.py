"""kcat (librdkafka 2.0.2 on Debian bookworm): produce with keys, NULL values,
headers and every compression codec, consume back with -f, query metadata and
offsets by timestamp."""

import json
import shutil

import pytest

import compat_util as cu

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")

KCAT_TIMEOUT = 60
# Fields separated by \x1f (unit separator) so that payloads may contain anything printable.
SEP = "\x1f"
FMT = SEP.join(["%p", "%o", "%k", "%K", "%s", "%S", "%h", "%T"]) + "\n"
LINES = ["k1:v1", "k2:", ":v3", "k4:value four with spaces", "k5:" + "z" * 3000, "k6:last"]
# what each line must read back as: (key, value) with None for NULL (-Z)
EXPECTED = [("k1", "v1"), ("k2", None), (None, "v3"), ("k4", "value four with spaces"),
            ("k5", "z" * 3000), ("k6", "last")]
HEADERS = [("h1", "x"), ("h2", "y"), ("h1", "z")]  # duplicate key on purpose


def kcat(*args, input=None, timeout=KCAT_TIMEOUT, check=True):
    return cu.run(["kcat", *map(str, args)], input=input, timeout=timeout, check=check)


def consume(bootstrap, topic, partition, *extra):
    p = kcat("-C", "-b", bootstrap, "-t", topic, "-p", partition, "-e", "-Z", "-q",
             "-f", FMT, *extra)
    rows = []
    for line in p.stdout_text.split("\n"):
        if not line:
            continue
        f = line.split(SEP)
        assert len(f) == 8, f"unparseable kcat line {line!r}\nfull output:\n{p.stdout_text}"
        rows.append({"partition": int(f[0]), "offset": int(f[1]), "key": f[2], "klen": int(f[3]),
                     "value": f[4], "vlen": int(f[5]), "headers": f[6], "ts": int(f[7])})
    return rows


def test_kcat_metadata(bootstrap, broker_id, topic_name):
    cu.create_topic(bootstrap, topic_name, partitions=3)
    # JSON metadata
    p = kcat("-L", "-J", "-b", bootstrap, "-t", topic_name)
    md = json.loads(p.stdout_text)
    host_port = bootstrap
    assert [b["name"] for b in md["brokers"]] == [host_port], md
    assert md["brokers"][0]["id"] == broker_id, md
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic_name in topics, md
    t = topics[topic_name]
    assert "error" not in t, t
    parts = sorted(t["partitions"], key=lambda x: x["partition"])
    assert [x["partition"] for x in parts] == [0, 1, 2], t
    for x in parts:
        assert x["leader"] == broker_id, x
        assert x["replicas"] == [{"id": broker_id}], x
        assert x["isrs"] == [{"id": broker_id}], x
    # human-readable listing
    p = kcat("-L", "-b", bootstrap, "-t", topic_name)
    out = p.stdout_text
    assert f"broker {broker_id} at {host_port}" in out, out
    assert f'topic "{topic_name}" with 3 partitions:' in out, out
    for i in range(3):
        assert f"partition {i}, leader {broker_id}, replicas: {broker_id}, isrs: {broker_id}" in out, out
    # full listing (no -t) includes our topic
    p = kcat("-L", "-J", "-b", bootstrap)
    assert topic_name in {t["topic"] for t in json.loads(p.stdout_text)["topics"]}


@pytest.mark.parametrize("codec", cu.COMPRESSIONS)
def test_kcat_produce_consume(bootstrap, topic_name, codec):
    cu.create_topic(bootstrap, topic_name, partitions=2)
    t0 = cu.now_ms()
    hargs = [a for k, v in HEADERS for a in ("-H", f"{k}={v}")]
    zargs = [] if codec == "none" else ["-z", codec]
    # everything into partition 1 (partition 0 must stay empty)
    kcat("-P", "-b", bootstrap, "-t", topic_name, "-p", 1, "-K:", "-Z", *hargs, *zargs,
         "-X", "linger.ms=50", "-X", "acks=all", input="\n".join(LINES) + "\n")
    t1 = cu.now_ms()

    rows = consume(bootstrap, topic_name, 1, "-o", "beginning")
    got = [(r["key"], r["value"]) for r in rows]
    want = [(("NULL" if k is None else k), ("NULL" if v is None else v)) for k, v in EXPECTED]
    assert got == want, f"kcat read back {got}"
    for i, (r, (k, v)) in enumerate(zip(rows, EXPECTED)):
        assert r["partition"] == 1 and r["offset"] == i, r
        assert r["klen"] == (-1 if k is None else len(k)), r
        assert r["vlen"] == (-1 if v is None else len(v)), r
        assert r["headers"] == ",".join(f"{hk}={hv}" for hk, hv in HEADERS), r
        # CreateTime set by librdkafka at produce time, kept by the broker
        assert t0 - 1000 <= r["ts"] <= t1 + 1000, (r, t0, t1)

    # partition 0 is empty
    assert consume(bootstrap, topic_name, 0, "-o", "beginning") == []

    # start in the middle of a (possibly compressed) batch: offset 2, one message
    mid = consume(bootstrap, topic_name, 1, "-o", 2, "-c", 1)
    assert [(r["offset"], r["key"], r["value"]) for r in mid] == [(2, "NULL", "v3")], mid
    # negative offset = relative to the end: the last two messages
    tail = consume(bootstrap, topic_name, 1, "-o", -2)
    assert [(r["offset"], r["key"]) for r in tail] == [(4, "k5"), (5, "k6")], tail


def test_kcat_offsets_for_times(bootstrap, topic_name):
    """kcat -Q: offset lookup by timestamp (ListOffsets with a timestamp)."""
    cu.create_topic(bootstrap, topic_name, partitions=1)
    kcat("-P", "-b", bootstrap, "-t", topic_name, "-p", 0, "-K:", input="a:1\nb:2\nc:3\n")
    rows = consume(bootstrap, topic_name, 0, "-o", "beginning")
    assert [r["key"] for r in rows] == ["a", "b", "c"], rows
    ts_first = rows[0]["ts"]
    p = kcat("-Q", "-b", bootstrap, "-t", f"{topic_name}:0:{ts_first}")
    # kcat prints: "<topic> [0] offset 0"
    assert f"{topic_name} [0] offset 0" in p.stdout_text, p.stdout_text
    p = kcat("-Q", "-b", bootstrap, "-t", f"{topic_name}:0:{rows[-1]['ts'] + 3_600_000}")
    # no message at or after that time: offset -1 (end)
    assert f"{topic_name} [0] offset -1" in p.stdout_text, p.stdout_text
