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
