"""Rebalancing with real clients: three consumers share a 6-partition topic.

Each consumer is its own process (workers/ck_worker.py for confluent-kafka,
java/GroupWorker.java for the Java client), commits synchronously after every
batch and in its revoke callback, and reports every record it processed. So
with no failure every record must be consumed exactly once; after a kill -9
only records the killed member had processed but not committed may repeat.
"""

import time

import pytest

import compat_util as cu
import groups_util as gu

P = 6
SESSION_MS = 6000          # classic session.timeout.ms (Kafka's default minimum)
SLACK_MS = 10000           # rebalance + heartbeat interval + a loaded 2-core machine
STATIC_SESSION_MS = 12000  # static members: long enough to restart a JVM within it

KINDS = [
    pytest.param("ck", "classic", id="confluent-classic"),
    pytest.param("java", "classic", id="java-classic"),
    pytest.param("java", "consumer", id="java-consumer-kip848", marks=pytest.mark.kip848),
]


def _handover_ms(survivors, moved, since_ms):
    """When (epoch ms) the last of `moved` was assigned to a survivor after since_ms."""
    when = {}
    for w in survivors:
        for e in w.events:
            if e["ev"] == "assigned" and e["t"] >= since_ms:
                for p in e["parts"]:
                    if p in moved and (p not in when or e["t"] < when[p]):
                        when[p] = e["t"]
    assert set(when) == set(moved), f"partitions {sorted(set(moved) - set(when))} never handed over"
    return max(when.values())


def _check_describe(bootstrap, group, ws, *, type_name, instance_ids=None):
    """The broker's view (DescribeGroups / ConsumerGroupDescribe through the
    AdminClient) matches what the members were told."""
    def matches():
        d = gu.describe_group(bootstrap, group)
        got = {m.client_id: sorted(tp.partition for tp in m.assignment.topic_partitions) for m in d.members}
        want = {w.name: sorted(w.assignment) for w in ws}
        return d if (d.state.name == "STABLE" and got == want) else None
    d = gu.wait_until(matches, 30, f"describe {group}: STABLE with the members' assignments",
                      detail=lambda: repr(gu.describe_group(bootstrap, group)) + f"\nworkers: {gu.assignment_map(ws)}")
    assert d.type.name == type_name, f"group type {d.type.name}, want {type_name}"
    assert not d.is_simple_consumer_group
    assert len(d.members) == len(ws)
    for m in d.members:
        assert m.host.lstrip("/") == "127.0.0.1", f"member host {m.host!r}"
        assert m.member_id, "empty member id"
    if instance_ids is not None:
        assert sorted(m.group_instance_id for m in d.members) == sorted(instance_ids)
    return d


@pytest.mark.parametrize("kind,protocol", KINDS)
def test_leave_and_kill_hand_over_partitions(bootstrap, workers, names, kind, protocol):
    topic, group = names("topic"), names("group")
    cu.create_topic(bootstrap, topic, P)
    session = gu.CONSUMER_SESSION_TIMEOUT_MS if protocol == "consumer" else SESSION_MS
    vals1 = gu.values("one", 300)
    gu.produce(bootstrap, topic, vals1, P)

    ws = [workers(kind, group, topic, f"{kind}-{i}", protocol=protocol, session_timeout_ms=SESSION_MS)
          for i in range(3)]
    gu.wait_assignment(ws, P, timeout=90)
    gu.wait_consumed(ws, vals1, 60)
    _check_describe(bootstrap, group, ws, type_name="CONSUMER" if protocol == "consumer" else "CLASSIC")

    # 1. a member closes: LeaveGroup (or the KIP-848 leave heartbeat) hands its
    #    partitions over at once, well before its session would expire
    leaver, rest = ws[2], ws[:2]
    moved = set(leaver.assignment)
    t_close = gu.now_ms()
    leaver.close()
    gu.wait_assignment(rest, P, timeout=30, what="the leaver's partitions handed to the other two")
    took = _handover_ms(rest, moved, t_close) - t_close
    assert took < session, f"partitions of a member that left were handed over after {took} ms (session {session} ms)"
    vals2 = gu.values("two", 300)
    gu.produce(bootstrap, topic, vals2, P)
    gu.wait_consumed(ws, vals1 + vals2, 60)

    # 2. a member is killed (kill -9): its partitions move once its session expires
    victim, survivor = rest[1], rest[0]
    moved = set(victim.assignment)
    t_kill = victim.kill9()
    survivor.wait(lambda w: w.assignment == set(range(P)), session / 1000 + SLACK_MS / 1000 + 10,
                  "all partitions after the kill")
    took = _handover_ms([survivor], moved, t_kill) - t_kill
    assert took <= session + SLACK_MS, f"handover took {took} ms > session {session} + slack {SLACK_MS}"
    # Kafka does not act on the closed connection: the member lives until its
    # session times out, counted from its last heartbeat (1 s interval; half the
    # session leaves room for late heartbeats on a loaded machine)
    assert took >= session // 2, f"handover after {took} ms, long before the {session} ms session timeout"
    vals3 = gu.values("three", 300)
    gu.produce(bootstrap, topic, vals3, P)
    gu.wait_consumed(ws, vals1 + vals2 + vals3, 60)
    gu.check_exactly_once(ws, vals1 + vals2 + vals3, killed=[victim])

    # everything processed is committed: committed offsets == log end offsets
    survivor.close()
    ends = gu.end_offsets(bootstrap, topic, P)
    committed = gu.committed_offsets(bootstrap, group, topic)
    assert {p: committed.get((topic, p)) for p in range(P)} == ends


@pytest.mark.parametrize("kind", ["ck", "java"], ids=["confluent", "java"])
def test_static_member_restart_keeps_assignment_without_rebalance(bootstrap, workers, names, kind):
    topic, group = names("topic"), names("group")
    cu.create_topic(bootstrap, topic, P)
    mk = lambda name, inst: workers(kind, group, topic, name, instance_id=inst,  # noqa: E731
                                    session_timeout_ms=STATIC_SESSION_MS)
    a = mk("a", "inst-a")
    a.wait(lambda w: w.assignment == set(range(P)), 60, "first member owns everything")  # a leads
    b, c = mk("b", "inst-b"), mk("c", "inst-c")
    ws = [a, b, c]
    gu.wait_assignment(ws, P, timeout=60)
    vals1 = gu.values("one", 300)
    gu.produce(bootstrap, topic, vals1, P)
    gu.wait_consumed(ws, vals1, 60)
    d1 = _check_describe(bootstrap, group, ws, type_name="CLASSIC", instance_ids=["inst-a", "inst-b", "inst-c"])
    old_member = {m.group_instance_id: m.member_id for m in d1.members}
    gens = {w.name: w.status()["gen"] for w in ws}
    if kind == "java":
        assert len(set(gens.values())) == 1, f"members disagree on the generation: {gens}"
    mark = {w.name: len(w.events) for w in ws}
    c_parts = set(c.assignment)

    # restart c within its session timeout: a static member sends no LeaveGroup
    t_close = gu.now_ms()
    c.close()
    c2 = mk("c", "inst-c")
    c2.wait(lambda w: w.count("assigned") > 0, STATIC_SESSION_MS / 1000, "the restarted static member's assignment")
    assert c2.assignment == c_parts, f"restarted static member got {sorted(c2.assignment)}, had {sorted(c_parts)}"

    vals2 = gu.values("two", 300)
    gu.produce(bootstrap, topic, vals2, P)
    gu.wait_consumed([a, b, c, c2], vals1 + vals2, 60)
    # stay past the old member's session timeout: replacing it must not leave a
    # stale member behind whose expiry would rebalance the group later
    time.sleep(max(0, (t_close + STATIC_SESSION_MS + 2000 - gu.now_ms()) / 1000))
    for w in (a, b):
        assert w.callbacks_since(mark[w.name]) == [], \
            f"{w.name} saw a rebalance after the static restart: {w.callbacks_since(mark[w.name])}"
    ws2 = [a, b, c2]
    d2 = _check_describe(bootstrap, group, ws2, type_name="CLASSIC", instance_ids=["inst-a", "inst-b", "inst-c"])
    new_member = {m.group_instance_id: m.member_id for m in d2.members}
    assert new_member["inst-a"] == old_member["inst-a"] and new_member["inst-b"] == old_member["inst-b"]
    assert new_member["inst-c"] != old_member["inst-c"], "the restarted static member kept its old member id"
    if kind == "java":
        now = {w.name: w.status()["gen"] for w in ws2}
        assert now == gens, f"generation changed across a static restart: before {gens}, after {now}"
    gu.check_exactly_once([a, b, c, c2], vals1 + vals2)


@pytest.mark.parametrize("kind", ["ck", "java"], ids=["confluent", "java"])
def test_cooperative_sticky_join_moves_only_needed_partitions(bootstrap, workers, names, kind):
    topic, group = names("topic"), names("group")
    cu.create_topic(bootstrap, topic, P)
    mk = lambda name: workers(kind, group, topic, name, assignor="cooperative-sticky")  # noqa: E731
    a, b = mk("a"), mk("b")
    gu.wait_assignment([a, b], P, timeout=60)
    vals1 = gu.values("one", 300)
    gu.produce(bootstrap, topic, vals1, P)
    gu.wait_consumed([a, b], vals1, 60)
    before = {w.name: set(w.assignment) for w in (a, b)}
    mark = {w.name: len(w.events) for w in (a, b)}

    c = mk("c")
    vals2 = gu.values("two", 600)
    gu.produce(bootstrap, topic, vals2, P)  # keep records flowing during the rebalance
    gu.wait_assignment([a, b, c], P, timeout=60)
    d = _check_describe(bootstrap, group, [a, b, c], type_name="CLASSIC")
    assert d.partition_assignor == "cooperative-sticky", d.partition_assignor

    moved_to_c = set()
    for w in (a, b):
        evs = w.callbacks_since(mark[w.name])
        revoked = set().union(*[set(e["parts"]) for e in evs if e["ev"] == "revoked"])
        added = set().union(*[set(e["parts"]) for e in evs if e["ev"] == "assigned"])
        assert not [e for e in evs if e["ev"] == "lost"], f"{w.name} lost partitions: {evs}"
        assert w.assignment <= before[w.name], f"{w.name} gained partitions {sorted(w.assignment - before[w.name])}"
        assert revoked == before[w.name] - w.assignment, \
            f"{w.name}: revoked {sorted(revoked)}, but only {sorted(before[w.name] - w.assignment)} moved ({evs})"
        assert not (revoked & added), f"{w.name}: partitions {sorted(revoked & added)} revoked and assigned back"
        assert len(revoked) == 1, f"{w.name}: revoked {sorted(revoked)}; one of its 3 partitions should move"
        moved_to_c |= revoked
    assert c.assignment == moved_to_c
    gu.wait_consumed([a, b, c], vals1 + vals2, 60)
    gu.check_exactly_once([a, b, c], vals1 + vals2)
