"""Group APIs answered exactly as Kafka 4.1.1 answers them: the edge cases that
client libraries and tools rely on (raw requests, see rawproto.py)."""

import pytest

import compat_util as cu
import rawproto as rp


def test_find_coordinator(bootstrap, names):
    group = names("group")
    md = cu.admin_client(bootstrap).list_topics(timeout=15)
    b = md.brokers[sorted(md.brokers)[0]]
    with rp.RawConn(bootstrap) as c:
        r = c.send(rp.FindCoordinatorRequest, 4, key_type=0, coordinator_keys=[group, group + "-2"])
        assert [(x.key, x.node_id, x.host, x.port, x.error_code) for x in r.coordinators] == \
            [(group, b.id, b.host, b.port, 0), (group + "-2", b.id, b.host, b.port, 0)]
        r = c.send(rp.FindCoordinatorRequest, 3, key=group, key_type=0)
        assert (r.error_code, r.node_id, r.host, r.port) == (0, b.id, b.host, b.port)
        r = c.send(rp.FindCoordinatorRequest, 0, key=group)
        assert (r.error_code, r.node_id, r.host, r.port) == (0, b.id, b.host, b.port)
        r = c.send(rp.FindCoordinatorRequest, 4, key_type=5, coordinator_keys=[group])  # no such key type
        assert [(x.error_code, x.node_id, x.host, x.port) for x in r.coordinators] == \
            [(rp.INVALID_REQUEST, -1, "", -1)]


def test_unknown_group(bootstrap, names):
    group, topic = names("group"), names("topic")
    cu.create_topic(bootstrap, topic, 2)
    d = rp.describe_groups(bootstrap, [group], version=5)[group]
    assert (d.error_code, d.group_state, d.protocol_type, d.protocol_data, d.members) == (0, "Dead", "", "", [])
    d = rp.describe_groups(bootstrap, [group], version=6)[group]  # KIP-1043: v6 says so
    assert (d.error_code, d.error_message, d.group_state) == \
        (rp.GROUP_ID_NOT_FOUND, f"Group {group} not found.", "Dead")
    assert rp.fetch_offsets(bootstrap, group) == (0, {})
    assert rp.fetch_offsets(bootstrap, group, {topic: [0, 1]}) == \
        (0, {(topic, 0): (-1, "", -1, 0), (topic, 1): (-1, "", -1, 0)})
    assert rp.delete_groups(bootstrap, [group]) == {group: rp.GROUP_ID_NOT_FOUND}
    assert rp.delete_offsets(bootstrap, group, topic, [0]) == (rp.GROUP_ID_NOT_FOUND, {})
    assert group not in rp.list_groups(bootstrap)


def test_join_validation(bootstrap, names):
    group, topic = names("group"), names("topic")
    m = rp.RawMember(bootstrap, group, [topic], client_id="validator")
    try:
        # session timeout outside [group.min.session.timeout.ms, group.max.session.timeout.ms]
        m.session_timeout_ms = 5999
        r = m.join_request()
        assert (r.error_code, r.member_id) == (rp.INVALID_SESSION_TIMEOUT, "")
        m.session_timeout_ms = 1800001
        assert m.join_request().error_code == rp.INVALID_SESSION_TIMEOUT
        m.session_timeout_ms = 6000
        # empty group id
        c = m.conn
        J = rp.JoinGroupRequest
        r = c.send(J, rp.V_JOIN, group_id="", session_timeout_ms=6000, rebalance_timeout_ms=6000, member_id="",
                   group_instance_id=None, protocol_type="consumer",
                   protocols=[J.JoinGroupRequestProtocol(name="range", metadata=rp.subscription_bytes([topic]))],
                   reason=None)
        assert r.error_code == rp.INVALID_GROUP_ID
        assert c.send(rp.SyncGroupRequest, rp.V_SYNC, group_id="", generation_id=1, member_id="x",
                      group_instance_id=None, protocol_type="consumer", protocol_name="range",
                      assignments=[]).error_code == rp.INVALID_GROUP_ID
        assert c.send(rp.HeartbeatRequest, rp.V_HEARTBEAT, group_id="", generation_id=1, member_id="x",
                      group_instance_id=None).error_code == rp.INVALID_GROUP_ID
        # KIP-394: from v4 a new member first gets MEMBER_ID_REQUIRED and its id (client id + "-" + uuid)
        r = m.join_request()
        assert (r.error_code, r.generation_id) == (rp.MEMBER_ID_REQUIRED, -1)
        assert r.member_id.startswith("validator-") and len(r.member_id) == len("validator-") + 36, r.member_id
        assert rp.describe_groups(bootstrap, [group])[group].members == [], "a pending member is not a member"
        m.member_id = r.member_id
        r = m.join_request()
        assert (r.error_code, r.generation_id, r.member_id, r.leader, r.protocol_type, r.protocol_name) == \
            (0, 1, m.member_id, m.member_id, "consumer", "range")
        assert [(x.member_id, x.group_instance_id, x.metadata) for x in r.members] == \
            [(m.member_id, None, m.protocols[0][1])]
    finally:
        m.close()
    # before v4 the member id comes with the first JoinGroup
    group2 = names("group-v3")
    with rp.RawConn(rp.find_coordinator(bootstrap, group2)) as c:
        J = rp.JoinGroupRequest
        r = c.send(J, 3, group_id=group2, session_timeout_ms=6000, rebalance_timeout_ms=6000, member_id="",
                   protocol_type="consumer",
                   protocols=[J.JoinGroupRequestProtocol(name="range", metadata=rp.subscription_bytes([topic]))])
        assert (r.error_code, r.generation_id) == (0, 1) and r.member_id.startswith("groups-raw-")
        assert r.leader == r.member_id
    # a static member skips the round trip; its member id starts with the instance id
    s = rp.RawMember(bootstrap, names("group-static"), [topic], instance_id="instance-7")
    try:
        r = s.join()
        assert (r.error_code, r.generation_id) == (0, 1) and r.member_id.startswith("instance-7-"), r
        assert [(x.member_id, x.group_instance_id) for x in r.members] == [(r.member_id, "instance-7")]
        assert s.sync({s.member_id: rp.assignment_bytes({topic: [0]})}).error_code == 0
        assert s.leave() == (0, [0])
    finally:
        s.close()


def test_commit_validation(bootstrap, names):
    group, topic = names("group"), names("topic")
    cu.create_topic(bootstrap, topic, 2)
    # offset metadata over offset.metadata.max.bytes (4096) fails per partition
    assert rp.commit_offsets(bootstrap, group, topic, {0: (3, "m" * 4097, -1), 1: (4, "m" * 4096, -1)}) == \
        {0: rp.OFFSET_METADATA_TOO_LARGE, 1: 0}
    # unknown topic / partition
    assert rp.commit_offsets(bootstrap, group, topic, {99: (1, "", -1)}) == {99: 3}  # UNKNOWN_TOPIC_OR_PARTITION
    assert rp.commit_offsets(bootstrap, group, topic + "-nope", {0: (1, "", -1)}) == {0: 3}
    assert rp.fetch_offsets(bootstrap, group) == (0, {(topic, 1): (4, "m" * 4096, -1, 0)})
    # a group that does not exist yet only takes "simple" commits (generation -1, no member)
    other = names("group-2")
    assert rp.commit_offsets(bootstrap, other, topic, {0: (1, "", -1)}, generation=1, member_id="m-1") == \
        {0: rp.GROUP_ID_NOT_FOUND}
    assert rp.commit_offsets(bootstrap, other, topic, {0: (1, "", -1)}, generation=1, member_id="") == \
        {0: rp.GROUP_ID_NOT_FOUND}
    assert other not in rp.list_groups(bootstrap)


def test_list_groups_filters(bootstrap, names):
    topic = names("topic")
    cu.create_topic(bootstrap, topic, 1)
    simple, live = names("simple"), names("live")
    assert rp.commit_offsets(bootstrap, simple, topic, {0: (1, "", -1)}) == {0: 0}
    m = rp.RawMember(bootstrap, live, [topic])
    try:
        assert m.join().error_code == 0
        assert m.sync({m.member_id: rp.assignment_bytes({topic: [0]})}).error_code == 0
        every = rp.list_groups(bootstrap)
        assert (every[simple].protocol_type, every[simple].group_state, every[simple].group_type) == \
            ("", "Empty", "classic")
        assert (every[live].protocol_type, every[live].group_state, every[live].group_type) == \
            ("consumer", "Stable", "classic")
        stable = rp.list_groups(bootstrap, states=["Stable"])
        assert live in stable and simple not in stable
        empty = rp.list_groups(bootstrap, states=["Empty"])
        assert simple in empty and live not in empty
        assert {simple, live} <= set(rp.list_groups(bootstrap, types=["classic"]))
        assert not {simple, live} & set(rp.list_groups(bootstrap, types=["consumer"]))
        assert rp.list_groups(bootstrap, states=["NoSuchState"]) == {}
        # v4 has the states filter but no type
        with rp.RawConn(bootstrap) as c:
            r = c.send(rp.ListGroupsRequest, 4, states_filter=["Stable"])
        assert r.error_code == 0 and live in {g.group_id for g in r.groups}
        assert m.leave() == (0, [0])
        assert rp.list_groups(bootstrap)[live].group_state == "Empty"
    finally:
        m.close()


@pytest.mark.kip848
def test_describe_across_group_types(bootstrap, names, workers):
    """DescribeGroups and ConsumerGroupDescribe each describe only their own kind of group."""
    topic, group, classic = names("topic"), names("group"), names("classic")
    cu.create_topic(bootstrap, topic, 2)
    w = workers("ck", group, topic, "kip848-member", protocol="consumer")
    w.wait(lambda w: w.assignment == {0, 1}, 60, "assignment")
    m = rp.RawMember(bootstrap, classic, [topic])
    try:
        assert m.join().error_code == 0
        assert m.sync({m.member_id: rp.assignment_bytes({topic: [0]})}).error_code == 0

        d = rp.describe_groups(bootstrap, [group], version=5)[group]
        assert (d.error_code, d.group_state, d.members) == (0, "Dead", [])
        d = rp.describe_groups(bootstrap, [group], version=6)[group]
        assert (d.error_code, d.error_message) == (rp.GROUP_ID_NOT_FOUND, f"Group {group} is not a classic group.")
        listed = rp.list_groups(bootstrap)[group]
        assert (listed.protocol_type, listed.group_state, listed.group_type) == ("consumer", "Stable", "consumer")

        req = rp.extra_message("ConsumerGroupDescribeRequest")
        rp.extra_message("ConsumerGroupDescribeResponse")
        with rp.RawConn(rp.find_coordinator(bootstrap, group)) as c:
            r = c.send(req, 1, group_ids=[group, classic, group + "-none"], include_authorized_operations=False)
        by_id = {x.group_id: x for x in r.groups}  # (not necessarily in request order)
        g, cl, none = by_id[group], by_id[classic], by_id[group + "-none"]
        assert (g.error_code, g.group_state, g.assignor_name) == (0, "Stable", "uniform")
        assert g.group_epoch >= 1 and g.assignment_epoch == g.group_epoch
        assert [(x.client_id, x.client_host, x.subscribed_topic_names, x.member_epoch) for x in g.members] == \
            [("kip848-member", "/127.0.0.1", [topic], g.group_epoch)]
        assert (cl.error_code, cl.error_message) == (rp.GROUP_ID_NOT_FOUND, f"Group {classic} is not a consumer group.")
        assert (none.error_code, none.error_message) == (rp.GROUP_ID_NOT_FOUND, f"Group {group}-none not found.")
        assert m.leave() == (0, [0])
    finally:
        m.close()
