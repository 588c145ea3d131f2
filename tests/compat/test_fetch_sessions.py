"""Incremental fetch sessions (KIP-227), checked with raw Fetch v12 requests.

Epoch 0 creates a session (a non-zero session id, a full response); the
next requests (epochs 1, 2, ...) list only the partitions whose position
changed and are answered with only the partitions that have news (records,
a moved high watermark); a wrong epoch is INVALID_FETCH_SESSION_EPOCH, an
unknown id FETCH_SESSION_ID_NOT_FOUND; forgotten partitions are dropped;
epoch -1 fetches without a session and closes the one it names. The Java
consumers of the other suites (test_java_client, tests/groups,
tests/cluster) use sessions on their own; librdkafka does not use them.
"""

import sys
from pathlib import Path

import compat_util as cu

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "groups"))
import rawproto as rp  # noqa: E402  (tests/groups: frames kafka-python's messages)

from kafka.protocol.consumer import FetchRequest  # noqa: E402

FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
V = 12


def fetch(conn, topic, session_id, epoch, parts, forget=(), max_wait_ms=100):
    """parts: {partition: fetch offset} to send; returns (error, session id,
    {partition: (high watermark, record bytes)})."""
    req = FetchRequest[V]
    ft = req.FetchTopic
    topics = [ft(topic=topic, partitions=[ft.FetchPartition(partition=p, current_leader_epoch=-1,
                                                            fetch_offset=o, last_fetched_epoch=-1,
                                                            log_start_offset=-1,
                                                            partition_max_bytes=1 << 20)
                                          for p, o in sorted(parts.items())])] if parts else []
    forgotten = [req.ForgottenTopic(topic=topic, partitions=list(forget))] if forget else []
    r = conn.send(FetchRequest, V, replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=1,
                  max_bytes=50 << 20, isolation_level=0, session_id=session_id,
                  session_epoch=epoch, topics=topics, forgotten_topics_data=forgotten, rack_id="")
    got = {}
    for t in r.responses:
        for p in t.partitions:
            assert p.error_code == 0, (p.partition_index, p.error_code)
            got[p.partition_index] = (p.high_watermark, len(p.records or b""))
    return r.error_code, r.session_id, got


def produce(bootstrap, topic, partition, n):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(n):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=partition)
    assert p.flush(30) == 0


def test_an_incremental_session_answers_only_partitions_with_news(bootstrap, topic_name):
    cu.create_topic(bootstrap, topic_name, 3)
    produce(bootstrap, topic_name, 0, 5)
    with rp.RawConn(bootstrap, client_id="fetch-sessions") as c:
        err, sid, got = fetch(c, topic_name, 0, 0, {0: 0, 1: 0, 2: 0})
        assert err == 0 and sid > 0, (err, sid)
        assert sorted(got) == [0, 1, 2] and got[0][0] == 5 and got[0][1] > 0, got

        # epoch 1: partition 0 moved to 5; nothing new anywhere
        err, sid1, got = fetch(c, topic_name, sid, 1, {0: 5})
        assert (err, sid1, got) == (0, sid, {}), got

        # news on partition 2 only: it alone comes back, from the session's offset 0
        produce(bootstrap, topic_name, 2, 3)
        err, _, got = fetch(c, topic_name, sid, 2, {}, max_wait_ms=5000)
        assert err == 0 and list(got) == [2] and got[2][0] == 3 and got[2][1] > 0, got

        # a stale epoch and an unknown session
        assert fetch(c, topic_name, sid, 2, {})[0] == INVALID_FETCH_SESSION_EPOCH
        # (the session survives a bad epoch: the right one still works)
        err, _, got = fetch(c, topic_name, sid, 3, {2: 3})
        assert (err, got) == (0, {}), got
        assert fetch(c, topic_name, (sid % 1_000_000) + 1, 1, {})[0] == FETCH_SESSION_ID_NOT_FOUND

        # forget partition 0: its news no longer comes
        err, _, got = fetch(c, topic_name, sid, 4, {}, forget=[0])
        assert (err, got) == (0, {}), got
        produce(bootstrap, topic_name, 0, 2)
        produce(bootstrap, topic_name, 1, 1)
        err, _, got = fetch(c, topic_name, sid, 5, {}, max_wait_ms=5000)
        assert err == 0 and list(got) == [1], got

        # epoch -1 closes the session: a sessionless full answer, then the id is gone
        err, sid0, got = fetch(c, topic_name, sid, -1, {0: 0, 1: 0, 2: 0})
        assert err == 0 and sid0 == 0 and sorted(got) == [0, 1, 2], (err, sid0, got)
        assert fetch(c, topic_name, sid, 6, {})[0] == FETCH_SESSION_ID_NOT_FOUND

