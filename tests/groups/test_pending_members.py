"""Classic groups and member ids handed out with MEMBER_ID_REQUIRED (KIP-394)
that never come back (a client that subscribed and unsubscribed quickly).

Kafka ends a new group's first join phase on the initial-rebalance timer
(`group.initial.rebalance.delay.ms`, 0 in this suite) without waiting for
pending member ids, and drops a pending member id after the session timeout
of the JoinGroup that got it.
"""

from __future__ import annotations

import time

import rawproto as rp


def _abandon_member_id(bootstrap, group, session_timeout_ms=6000):
    """A JoinGroup whose MEMBER_ID_REQUIRED answer is thrown away."""
    m = rp.RawMember(bootstrap, group, ["t"], session_timeout_ms=session_timeout_ms)
    try:
        r = m.join_request()
        assert r.error_code == rp.MEMBER_ID_REQUIRED, rp.err_name(r.error_code)
    finally:
        m.close()


def test_first_rebalance_does_not_wait_for_abandoned_member_ids(bootstrap, names):
    group = names("group")
    rp.fetch_offsets(bootstrap, group)  # waits until the coordinator is ready
    _abandon_member_id(bootstrap, group)
    _abandon_member_id(bootstrap, group)
    m = rp.RawMember(bootstrap, group, ["t"], session_timeout_ms=6000, rebalance_timeout_ms=60000)
    try:
        start = time.time()
        r = m.join(timeout=90)
        took = time.time() - start
        assert (r.error_code, r.generation_id, r.leader) == (rp.NONE, 1, m.member_id), rp.err_name(r.error_code)
        # Kafka: at once (delay 0). Waiting for the pending ids would take the rebalance timeout (60 s).
        assert took < 10, f"the first join took {took:.1f} s"
    finally:
        m.close()


def test_pending_member_id_expires_after_its_session_timeout(bootstrap, names):
    group = names("group")
    rp.fetch_offsets(bootstrap, group)  # waits until the coordinator is ready
    a = rp.RawMember(bootstrap, group, ["t"], session_timeout_ms=30000, rebalance_timeout_ms=120000)
    try:
        r = a.join(timeout=30)
        assert r.error_code == rp.NONE, rp.err_name(r.error_code)
        assert a.sync({a.member_id: rp.assignment_bytes({"t": [0]})}).error_code == rp.NONE
        # A second client gets a member id (session timeout 6 s) and never returns.
        _abandon_member_id(bootstrap, group, session_timeout_ms=6000)
        start = time.time()
        # The first member rejoins with new metadata: a rebalance that waits for
        # every member and pending member id, until the pending id expires.
        r = a.join_request(protocols=[("range", rp.subscription_bytes(["t", "u"]))], timeout=150)
        took = time.time() - start
        assert (r.error_code, r.generation_id) == (rp.NONE, 2), rp.err_name(r.error_code)
        assert took < 30, f"the rebalance took {took:.1f} s (rebalance timeout 120 s, pending session 6 s)"
    finally:
        a.close()
