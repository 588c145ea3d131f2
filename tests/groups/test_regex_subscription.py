"""KIP-848 regex subscriptions (ConsumerGroupHeartbeat SubscribedTopicRegex), raw.

Kafka compiles the regex with RE2J and keeps a topic when the *whole* name
matches (`Matcher.matches()`), over every topic of the metadata image,
internal topics included. It resolves regexes asynchronously, so a member
heartbeats until its assignment arrives.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

import compat_util as cu
import rawproto as rp


def _heartbeat_until_assigned(conn, group, member_id, *, regex, timeout=30.0):
    """Join with `regex`, heartbeat until a non-empty assignment arrives, then a few
    more times (so a wrong extra topic would show up). Returns {topic_id: partitions}."""
    r = rp.consumer_heartbeat(conn, group, member_id, 0, regex=regex, rebalance_timeout_ms=30000, owned=[])
    assert r.error_code == rp.NONE, (rp.err_name(r.error_code), r.error_message)
    epoch, assigned = r.member_epoch, {}
    if r.assignment is not None:
        assigned = {t.topic_id: sorted(t.partitions) for t in r.assignment.topic_partitions}
    deadline, settle_until = time.time() + timeout, None
    while time.time() < deadline:
        if assigned and settle_until is None:
            settle_until = time.time() + 3
        if settle_until is not None and time.time() >= settle_until:
            break
        time.sleep(0.5)
        owned = [(t, ps) for t, ps in assigned.items()]
        r = rp.consumer_heartbeat(conn, group, member_id, epoch, owned=owned)
        assert r.error_code == rp.NONE, (rp.err_name(r.error_code), r.error_message)
        epoch = r.member_epoch
        if r.assignment is not None:
            assigned = {t.topic_id: sorted(t.partitions) for t in r.assignment.topic_partitions}
    rp.consumer_heartbeat(conn, group, member_id, -1)
    return assigned


@pytest.mark.kip848
def test_regex_matches_whole_topic_names(bootstrap, names):
    """A regex naming `orders` gets `orders`, not `orders-v2` (whole-name match)."""
    orders = names("orders")
    cu.create_topic(bootstrap, orders, 3)
    cu.create_topic(bootstrap, orders + "-v2", 5)
    cu.create_topic(bootstrap, "x" + orders, 2)
    group = names("group")
    rp.fetch_offsets(bootstrap, group)  # waits until the coordinator is ready
    with rp.RawConn(rp.find_coordinator(bootstrap, group)) as conn:
        assigned = _heartbeat_until_assigned(conn, group, str(uuid.uuid4()), regex=re.escape(orders))
    assert len(assigned) == 1, f"expected only {orders}, got {assigned}"
    assert list(assigned.values()) == [[0, 1, 2]]


@pytest.mark.kip848
def test_regex_can_match_internal_topics(bootstrap, names):
    """Kafka matches regexes against every topic, `__consumer_offsets` included."""
    group = names("group")
    rp.fetch_offsets(bootstrap, group)  # creates __consumer_offsets, waits for the coordinator
    coordinator = rp.find_coordinator(bootstrap, group)
    n = len(cu.admin_client(bootstrap).list_topics(timeout=15).topics["__consumer_offsets"].partitions)
    with rp.RawConn(coordinator) as conn:
        assigned = _heartbeat_until_assigned(conn, group, str(uuid.uuid4()), regex="__consumer_off.*")
    assert len(assigned) == 1, assigned
    assert list(assigned.values()) == [list(range(n))]


@pytest.mark.kip848
def test_invalid_regex_answer(bootstrap, names):
    """INVALID_REGULAR_EXPRESSION with Kafka's message (RE2J's description)."""
    group = names("group")
    cases = {
        "orders-(": "missing closing )",
        "a**": "invalid nested repetition operator",
        "(?=x)": "invalid or unsupported Perl syntax",
        "[z-a]": "invalid character class range",
    }
    rp.fetch_offsets(bootstrap, group)  # waits until the coordinator is ready
    with rp.RawConn(rp.find_coordinator(bootstrap, group)) as conn:
        for regex, why in cases.items():
            r = rp.consumer_heartbeat(conn, group, str(uuid.uuid4()), 0, regex=regex,
                                      rebalance_timeout_ms=30000, owned=[])
            assert (r.error_code, r.error_message) == (
                rp.INVALID_REGULAR_EXPRESSION,
                f"SubscribedTopicRegex `{regex}` is not a valid regular expression: {why}."), regex
