"""Committed offsets and group state survive a broker restart: graceful
(SIGTERM) and kill -9, on the same data dir and ports.

What was acknowledged before the restart must read back exactly afterwards:
OffsetFetch (raw, v9) and AdminClient.list_consumer_group_offsets give the same
offsets, metadata and leader epochs; a classic member keeps its member id,
generation and assignment (its next heartbeat is accepted); deletions
(DeleteGroups, OffsetDelete) stay deleted; a consumer that stays up across the
restart carries on without reading anything twice.
"""

import time

import pytest

import compat_util as cu
import groups_util as gu
import rawproto as rp

P = 3


def _heartbeat_until_served(m, timeout=60):
    """After a restart: reconnect to the coordinator and heartbeat until it answers
    with something other than 'loading / not coordinator'."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            m.conn.close()
            m.coordinator = rp.find_coordinator(m.bootstrap, m.group, timeout=deadline - time.time())
            m.conn = rp.RawConn(m.coordinator, client_id="groups-raw", timeout=30)
            last = m.heartbeat()
            if last not in rp.RETRIABLE_COORD:
                return last
        except (ConnectionError, OSError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"heartbeat not served within {timeout}s after restart: {last}")


@pytest.mark.parametrize("kill", [False, True], ids=["graceful", "kill-9"])
def test_offsets_and_group_state_survive_restart(restartable_broker, workers, names, kill):
    b = restartable_broker
    bs = b.bootstrap
    topic = names("topic")
    cu.create_topic(bs, topic, P)
    pre = gu.values("pre", 30)
    gu.produce(bs, topic, pre, P)  # 10 records per partition

    # 1. standalone commits (generation -1, no member): offsets, metadata, leader epochs
    g_simple = names("simple")
    assert rp.commit_offsets(bs, g_simple, topic, {0: (3, "first", 0), 1: (10, "", 0), 2: (7, "m\u00e9ta 2", -1)}) \
        == {0: 0, 1: 0, 2: 0}
    assert rp.commit_offsets(bs, g_simple, topic, {0: (5, "second", 0)}) == {0: 0}  # the last commit wins
    want_simple = {(topic, 0): (5, "second", 0, 0), (topic, 1): (10, "", 0, 0), (topic, 2): (7, "m\u00e9ta 2", -1, 0)}
    assert rp.fetch_offsets(bs, g_simple) == (0, want_simple)

    # 2. a classic member (raw protocol) with a generation, an assignment and commits
    g_live = names("live")
    m = rp.RawMember(bs, g_live, [topic], session_timeout_ms=120000, rebalance_timeout_ms=10000,
                     client_id="durable-member")
    r = m.join()
    assert r.error_code == 0 and r.leader == m.member_id, rp.err_name(r.error_code)
    assignment = rp.assignment_bytes({topic: [0, 1, 2]})
    assert m.sync({m.member_id: assignment}).error_code == 0
    assert m.commit(topic, {0: (4, "live-0", 0), 1: (6, "live-1", 0)}) == {0: 0, 1: 0}
    gen, member_id = m.generation, m.member_id

    # 3. deletions that must stay deleted
    g_deleted = names("deleted")
    assert rp.commit_offsets(bs, g_deleted, topic, {0: (1, "", -1)}) == {0: 0}
    assert rp.delete_groups(bs, [g_deleted]) == {g_deleted: 0}
    g_partial = names("partial")
    assert rp.commit_offsets(bs, g_partial, topic, {0: (2, "a", -1), 1: (3, "b", -1)}) == {0: 0, 1: 0}
    assert rp.delete_offsets(bs, g_partial, topic, [1]) == (0, {1: 0})

    # 4. a real consumer that stays up across the restart
    g_worker = names("worker")
    # A session longer than the restart plus librdkafka's reconnect backoff
    # (which grows while the broker is down): this member is meant to
    # survive the restart, not to be expired by it.
    w = workers("ck", g_worker, topic, "survivor", session_timeout_ms=30000)
    w.wait(lambda w: w.assignment == set(range(P)), 60, "assignment")
    gu.wait_consumed([w], pre, 60)
    w.wait(lambda w: w.committed == {0: 10, 1: 10, 2: 10}, 30, "commits of everything")

    b.restart(kill=kill)

    # offsets read back exactly (raw OffsetFetch and the AdminClient)
    assert rp.fetch_offsets(bs, g_simple) == (0, want_simple)
    assert gu.committed_offsets(bs, g_simple) == {k: o for k, (o, _, _, _) in want_simple.items()}
    assert rp.fetch_offsets(bs, g_live) == (0, {(topic, 0): (4, "live-0", 0, 0), (topic, 1): (6, "live-1", 0, 0)})
    assert rp.fetch_offsets(bs, g_deleted) == (0, {}), "a deleted group's offsets came back"
    assert rp.fetch_offsets(bs, g_partial) == (0, {(topic, 0): (2, "a", -1, 0)}), "a deleted offset came back"

    # the classic member is still known, with the same generation and assignment
    assert _heartbeat_until_served(m) == rp.NONE
    d = rp.describe_groups(bs, [g_live])[g_live]
    assert (d.error_code, d.group_state, d.protocol_type, d.protocol_data) == (0, "Stable", "consumer", "range")
    assert [(x.member_id, x.client_id, x.member_assignment) for x in d.members] == \
        [(member_id, "durable-member", assignment)]
    # and the generation continues from where it was
    r = m.join()
    assert r.error_code == 0 and r.generation_id == gen + 1 and r.member_id == member_id, \
        (rp.err_name(r.error_code), r.generation_id, gen)
    assert m.sync({m.member_id: assignment}).error_code == 0
    assert m.leave() == (0, [0])

    listed = rp.list_groups(bs)
    assert g_deleted not in listed
    assert (listed[g_simple].group_state, listed[g_simple].group_type, listed[g_simple].protocol_type) == \
        ("Empty", "classic", "")
    assert (listed[g_live].group_state, listed[g_live].group_type, listed[g_live].protocol_type) == \
        ("Empty", "classic", "consumer")

    # the consumer carries on: new records are consumed, nothing is read twice
    post = gu.values("post", 30)
    gu.produce(bs, topic, post, P)
    gu.wait_consumed([w], pre + post, 90)
    gu.check_exactly_once([w], pre + post)
    w.wait(lambda w: w.committed == {0: 20, 1: 20, 2: 20}, 60, "commits after the restart")
    w.close()
    assert gu.committed_offsets(bs, g_worker, topic) == {(topic, p): 20 for p in range(P)}


def test_metadata_answered_during_a_graceful_shutdown_lists_the_broker(restartable_broker):
    """Every Metadata response a stopping broker still sends lists a broker
    to go back to. The controller fences a broker as its controlled shutdown
    completes, and the broker answers the requests it has already read until
    its connections close; a response listing no broker made librdkafka
    (2.10+) forget every broker it knew and wait minutes to re-bootstrap, so a
    consumer that stayed up across a restart never came back (the restart
    test above failed one run in four).

    This goes beyond Kafka: Apache Kafka 4.1.1 itself answers about 1% of the
    Metadata requests it gets during a graceful shutdown with no broker
    (measured here: 78 of 8,740 and 178 of 8,931), because its metadata
    publishers apply its own fencing before it stops processing requests. So
    the oracle run skips it, saying why."""
    from kafka.protocol.metadata import MetadataRequest
    import threading

    b = restartable_broker
    if b.kind == "apache":
        pytest.skip("Apache Kafka 4.1.1 lists no broker in ~1% of Metadata answers during its own "
                    "graceful shutdown; Runnel deliberately does better (see the docstring)")
    answers, stop = [], threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                with rp.RawConn(b.bootstrap, client_id="metadata-hammer", timeout=10) as c:
                    while not stop.is_set():
                        r = c.send(MetadataRequest, 12, topics=None, allow_auto_topic_creation=False,
                                   include_topic_authorized_operations=False)
                        answers.append(sorted(x.node_id for x in r.brokers))
            except (ConnectionError, OSError):
                time.sleep(0.001)

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(4):  # the window is short: a few restarts make a miss likely to show
        time.sleep(0.5)
        before = len(answers)
        b.restart(kill=False)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(15)
    assert before > 0 and len(answers) > before, (before, len(answers))
    empty = sum(1 for a in answers if not a)
    assert empty == 0, f"{empty} of {len(answers)} Metadata responses listed no broker"
