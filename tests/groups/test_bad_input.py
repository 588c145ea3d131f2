"""Bad group requests get Kafka's exact error codes, and the group they target
keeps working for its real members.

The requests are sent raw (rawproto.py: kafka-python 3's protocol classes on a
socket) at the newest versions Kafka 4.1.1 offers: JoinGroup v9, SyncGroup v5,
Heartbeat v4, OffsetCommit v9, LeaveGroup v5, OffsetFetch v9, DescribeGroups v5.
"""


import pytest

import compat_util as cu
import groups_util as gu
import rawproto as rp

P = 4


@pytest.fixture
def live_group(bootstrap, names, workers):
    """Two confluent-kafka consumers sharing a 4-partition topic, plus a raw member R
    subscribed to a 1-partition side topic (so the real leader assigns R only that)."""
    topic, side, group = names("topic"), names("side"), names("group")
    cu.create_topic(bootstrap, topic, P)
    cu.create_topic(bootstrap, side, 1)
    ws = [workers("ck", group, topic, f"ck-{i}") for i in range(2)]
    gu.wait_assignment(ws, P, timeout=60)
    first = gu.values("first", 200)
    gu.produce(bootstrap, topic, first, P)
    gu.wait_consumed(ws, first, 60)

    r = rp.RawMember(bootstrap, group, [side], session_timeout_ms=30000, rebalance_timeout_ms=20000,
                     client_id="raw-member")
    j = r.join(timeout=60)  # completes once the two consumers have rejoined
    assert j.error_code == rp.NONE, rp.err_name(j.error_code)
    assert j.leader != r.member_id, "a real consumer should stay the leader"
    s = r.sync(timeout=60)
    assert s.error_code == rp.NONE, rp.err_name(s.error_code)
    assert rp.parse_assignment(s.assignment) == {side: [0]}
    gu.wait_assignment(ws, P, timeout=60, what="the consumers settled after the raw member joined")
    try:
        yield {"topic": topic, "side": side, "group": group, "workers": ws, "raw": r, "first": first}
    finally:
        try:
            r.leave()
        except Exception:  # noqa: BLE001
            pass
        r.close()


def _still_healthy(bootstrap, g, mark, produced, tag):
    """No rebalance happened (no callbacks, R's generation still current) and the
    consumers keep consuming: new records are all read exactly once."""
    ws, r = g["workers"], g["raw"]
    assert r.heartbeat() == rp.NONE, "the raw member lost its membership/generation"
    for w in ws:
        assert w.callbacks_since(mark[w.name]) == [], f"{w.name} was rebalanced: {w.callbacks_since(mark[w.name])}"
    more = gu.values(tag, 200)
    gu.produce(bootstrap, g["topic"], more, P)
    gu.wait_consumed(ws, produced + more, 60)
    gu.check_exactly_once(ws, produced + more)
    return produced + more


def test_unknown_member_and_stale_generation(bootstrap, live_group):
    g = live_group
    r, group, topic = g["raw"], g["group"], g["topic"]
    mark = {w.name: len(w.events) for w in g["workers"]}
    gen = r.generation
    before = rp.fetch_offsets(bootstrap, group)[1]

    # unknown member id: heartbeat, sync, commit, leave
    assert r.heartbeat(member_id="no-such-member") == rp.UNKNOWN_MEMBER_ID
    assert r.sync(member_id="no-such-member").error_code == rp.UNKNOWN_MEMBER_ID
    bogus = {p: (999, "bogus", -1) for p in range(P)}
    assert r.commit(topic, bogus, member_id="no-such-member") == {p: rp.UNKNOWN_MEMBER_ID for p in range(P)}
    # a "simple" commit (generation -1, no member id) into a group that has members
    assert r.commit(topic, bogus, generation=-1, member_id="") == {p: rp.UNKNOWN_MEMBER_ID for p in range(P)}
    L = rp.LeaveGroupRequest
    lr = r.conn.send(L, rp.V_LEAVE, group_id=group, members=[
        L.MemberIdentity(member_id="no-such-member", group_instance_id=None, reason=None)])
    assert (lr.error_code, [(m.member_id, m.error_code) for m in lr.members]) == \
        (rp.NONE, [("no-such-member", rp.UNKNOWN_MEMBER_ID)])
    assert r.conn.send(L, 0, group_id=group, member_id="no-such-member").error_code == rp.UNKNOWN_MEMBER_ID

    # stale (and future) generation with a real member id
    assert r.heartbeat(generation=gen - 1) == rp.ILLEGAL_GENERATION
    assert r.heartbeat(generation=gen + 1) == rp.ILLEGAL_GENERATION
    assert r.sync(generation=gen - 1).error_code == rp.ILLEGAL_GENERATION
    assert r.commit(topic, bogus, generation=gen - 1) == {p: rp.ILLEGAL_GENERATION for p in range(P)}
    assert r.commit(topic, bogus, generation=gen + 1) == {p: rp.ILLEGAL_GENERATION for p in range(P)}

    # none of that changed the group's offsets
    after = rp.fetch_offsets(bootstrap, group)[1]
    assert all(v[0] != 999 for v in after.values()), f"a rejected commit was stored: {after}"
    assert set(after) >= set(before)
    _still_healthy(bootstrap, g, mark, g["first"], "after-bad-members")


def test_inconsistent_group_protocol(bootstrap, live_group):
    g = live_group
    r, group, side = g["raw"], g["group"], g["side"]
    mark = {w.name: len(w.events) for w in g["workers"]}
    sub = rp.subscription_bytes([side])

    stranger = rp.RawMember(bootstrap, group, [side], client_id="stranger")
    try:
        # a new member with another protocol type ("connect" vs the group's "consumer")
        j = stranger.join_request(protocol_type="connect", protocols=[("default", sub)])
        assert (j.error_code, j.member_id, j.generation_id) == (rp.INCONSISTENT_GROUP_PROTOCOL, "", -1)
        # the same protocol type, but no assignor in common with the group
        j = stranger.join_request(protocols=[("no-such-assignor", sub)])
        assert (j.error_code, j.member_id, j.generation_id) == (rp.INCONSISTENT_GROUP_PROTOCOL, "", -1)
        # an unknown member id with a foreign protocol type: the protocol check comes first
        j = stranger.join_request(protocol_type="connect", protocols=[("range", sub)], member_id="stranger-1")
        assert j.error_code == rp.INCONSISTENT_GROUP_PROTOCOL
    finally:
        stranger.close()
    # an existing member rejoining with a foreign protocol type is refused, and stays a member
    j = r.join_request(protocol_type="connect")
    assert (j.error_code, j.member_id) == (rp.INCONSISTENT_GROUP_PROTOCOL, r.member_id)
    # SyncGroup naming another protocol type / protocol name than the group's
    assert r.conn.send(rp.SyncGroupRequest, rp.V_SYNC, group_id=group, generation_id=r.generation,
                       member_id=r.member_id, group_instance_id=None, protocol_type="connect",
                       protocol_name="range", assignments=[]).error_code == rp.INCONSISTENT_GROUP_PROTOCOL
    assert r.conn.send(rp.SyncGroupRequest, rp.V_SYNC, group_id=group, generation_id=r.generation,
                       member_id=r.member_id, group_instance_id=None, protocol_type="consumer",
                       protocol_name="roundrobin", assignments=[]).error_code == rp.INCONSISTENT_GROUP_PROTOCOL
    d = rp.describe_groups(bootstrap, [group])[group]
    assert (d.group_state, d.protocol_type, d.protocol_data, len(d.members)) == ("Stable", "consumer", "range", 3)
    _still_healthy(bootstrap, g, mark, g["first"], "after-inconsistent")


# Kafka stores a classic group's members (their subscription metadata included)
# in one record in __consumer_offsets; a group whose record exceeds the max
# message size (message.max.bytes, 1 MiB by default) cannot complete its
# rebalance: JoinGroup succeeds, the leader's SyncGroup gets UNKNOWN_SERVER_ERROR
# and the group goes back to PreparingRebalance.
OVERSIZED = {
    "user-data-1.1MB": lambda topics: rp.subscription_bytes(topics, user_data=b"u" * 1_100_000),
    "100k-topic-subscription": lambda topics: rp.subscription_bytes(
        topics + [f"no-such-topic-{i:06d}" for i in range(100_000)]),
}


@pytest.mark.parametrize("kind", list(OVERSIZED))
def test_oversized_member_metadata_alone(bootstrap, names, kind):
    group = names("group")
    topic = names("topic")
    meta = OVERSIZED[kind]([topic])
    assert len(meta) > 1_048_588
    m = rp.RawMember(bootstrap, group, [topic], protocols=[("range", meta)], rebalance_timeout_ms=5000)
    try:
        j = m.join()
        assert j.error_code == rp.NONE and j.leader == m.member_id, rp.err_name(j.error_code)
        assert [x.metadata for x in j.members] == [meta], "the leader must get the metadata back unchanged"
        s = m.sync({m.member_id: rp.assignment_bytes({topic: [0]})})
        assert s.error_code == rp.UNKNOWN_SERVER_ERROR, rp.err_name(s.error_code)
        d = rp.describe_groups(bootstrap, [group])[group]
        assert (d.error_code, d.group_state, len(d.members)) == (0, "PreparingRebalance", 1)
        assert m.leave() == (0, [0])
        d = rp.describe_groups(bootstrap, [group])[group]
        assert (d.error_code, d.group_state, len(d.members)) == (0, "Empty", 0)
    finally:
        m.close()


def test_large_member_metadata_below_limit(bootstrap, names):
    """900 kB of metadata still fits: the group stabilises and DescribeGroups returns it intact."""
    group, topic = names("group"), names("topic")
    meta = rp.subscription_bytes([topic], user_data=bytes(range(256)) * 3500)
    m = rp.RawMember(bootstrap, group, [topic], protocols=[("range", meta)])
    try:
        assert m.join().error_code == rp.NONE
        assignment = rp.assignment_bytes({topic: [0]})
        assert m.sync({m.member_id: assignment}).error_code == rp.NONE
        d = rp.describe_groups(bootstrap, [group])[group]
        assert (d.group_state, [(x.member_metadata, x.member_assignment) for x in d.members]) == \
            ("Stable", [(meta, assignment)])
        assert m.heartbeat() == rp.NONE
        assert m.leave() == (0, [0])
    finally:
        m.close()


def test_oversized_member_does_not_break_group(bootstrap, names, workers):
    """A member with oversized metadata joins a live group: the rebalance cannot
    complete while it is there; once it leaves, the real consumers rebalance and
    carry on, without losing or repeating a record."""
    topic, side, group = names("topic"), names("side"), names("group")
    cu.create_topic(bootstrap, topic, P)
    cu.create_topic(bootstrap, side, 1)
    ws = [workers("ck", group, topic, f"ck-{i}") for i in range(2)]
    gu.wait_assignment(ws, P, timeout=60)
    first = gu.values("first", 200)
    gu.produce(bootstrap, topic, first, P)
    gu.wait_consumed(ws, first, 60)

    big = rp.RawMember(bootstrap, group, [side], protocols=[("range", OVERSIZED["user-data-1.1MB"]([side]))],
                       session_timeout_ms=30000, rebalance_timeout_ms=20000, client_id="big-member")
    try:
        j = big.join(timeout=60)
        assert j.error_code == rp.NONE and j.leader != big.member_id, rp.err_name(j.error_code)
        s = big.sync(timeout=60)
        # Storing the group failed: a SyncGroup pending then gets the error;
        # one that arrives after the leader's (the store already failed and
        # the group went back to rebalancing, as Kafka's
        # resetAndPropagateAssignmentError + maybePrepareRebalance) gets
        # REBALANCE_IN_PROGRESS. Which one depends on who syncs first.
        assert s.error_code in (rp.UNKNOWN_SERVER_ERROR, rp.REBALANCE_IN_PROGRESS), rp.err_name(s.error_code)
        assert big.leave() == (0, [0])
    finally:
        big.close()
    gu.wait_assignment(ws, P, timeout=60, what="the consumers' rebalance after the big member left")
    more = gu.values("second", 200)
    gu.produce(bootstrap, topic, more, P)
    gu.wait_consumed(ws, first + more, 60)
    gu.check_exactly_once(ws, first + more)
    d = rp.describe_groups(bootstrap, [group])[group]
    assert (d.group_state, sorted(x.client_id for x in d.members)) == ("Stable", ["ck-0", "ck-1"])


@pytest.mark.kip848
def test_consumer_protocol_bad_heartbeats(bootstrap, names, workers):
    """ConsumerGroupHeartbeat (KIP-848) v1 errors, sent into a live consumer-protocol
    group of two confluent-kafka consumers (group.protocol=consumer)."""
    import uuid
    topic, side, group = names("topic"), names("side"), names("group")
    cu.create_topic(bootstrap, topic, P)
    cu.create_topic(bootstrap, side, 1)
    ws = [workers("ck", group, topic, f"ck-{i}", protocol="consumer") for i in range(2)]
    gu.wait_assignment(ws, P, timeout=60)
    first = gu.values("first", 200)
    gu.produce(bootstrap, topic, first, P)
    gu.wait_consumed(ws, first, 60)
    mark = {w.name: len(w.events) for w in ws}

    conn = rp.RawConn(rp.find_coordinator(bootstrap, group))
    try:
        def hb(member_id, epoch, **kw):
            r = rp.consumer_heartbeat(conn, group, member_id, epoch, **kw)
            return r.error_code

        join = dict(topics=[side], rebalance_timeout_ms=30000, owned=[])
        new = lambda: str(uuid.uuid4())  # noqa: E731
        assert hb(new(), 1) == rp.UNKNOWN_MEMBER_ID
        assert hb(new(), -1) == rp.UNKNOWN_MEMBER_ID  # an unknown member leaving
        assert hb(new(), 0, **dict(join, topics=None)) == rp.INVALID_REQUEST  # no subscription
        assert hb(new(), 0, **dict(join, rebalance_timeout_ms=-1)) == rp.INVALID_REQUEST
        assert hb("", 0, **join) == rp.INVALID_REQUEST  # v1: the client picks the member id
        assert hb(new(), -5, **join) == rp.INVALID_REQUEST
        assert hb(new(), 0, **dict(join, server_assignor="no-such-assignor")) == rp.UNSUPPORTED_ASSIGNOR
        assert hb(new(), 0, **dict(join, topics=None, regex="(")) == rp.INVALID_REGULAR_EXPRESSION
        # a subscription too big for the group's record in __consumer_offsets
        huge = [side] + [f"no-such-topic-{i:06d}" for i in range(100_000)]
        assert hb(new(), 0, **dict(join, topics=huge)) == rp.UNKNOWN_SERVER_ERROR

        # a real member (subscribed to the side topic only) and epoch fencing
        mid = new()
        r = rp.consumer_heartbeat(conn, group, mid, 0, **join)
        assert r.error_code == rp.NONE and r.member_id == mid and r.member_epoch >= 1, r
        assert r.heartbeat_interval_ms == int(gu.GROUP_OVERRIDES["group.consumer.heartbeat.interval.ms"])
        epoch = r.member_epoch
        assert hb(mid, epoch + 1) == rp.FENCED_MEMBER_EPOCH
        r = rp.consumer_heartbeat(conn, group, mid, epoch)
        assert (r.error_code, r.member_epoch) == (rp.NONE, epoch), "fencing a wrong epoch must not drop the member"
        r = rp.consumer_heartbeat(conn, group, mid, -1)  # leave
        assert (r.error_code, r.member_id, r.member_epoch) == (rp.NONE, mid, -1)
    finally:
        conn.close()

    for w in ws:
        assert not [e for e in w.callbacks_since(mark[w.name]) if e["ev"] in ("revoked", "lost")], \
            f"{w.name} lost partitions: {w.callbacks_since(mark[w.name])}"
    more = gu.values("second", 200)
    gu.produce(bootstrap, topic, more, P)
    gu.wait_consumed(ws, first + more, 60)
    gu.check_exactly_once(ws, first + more)
