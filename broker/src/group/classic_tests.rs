//! Unit tests of the classic group state machine: the initial rebalance,
//! pending member ids, snapshots.

use super::*;

const DELAY: Duration = Duration::from_secs(3);

fn req(member_id: &str, session_ms: i32, rebalance_ms: i32) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        instance_id: None,
        client_id: "c".to_string(),
        client_host: "/127.0.0.1".to_string(),
        session_timeout_ms: session_ms,
        rebalance_timeout_ms: rebalance_ms,
        protocol_type: "consumer".to_string(),
        protocols: vec![("range".to_string(), Bytes::from_static(b"m"))],
        require_known_member_id: true,
    }
}

/// JoinGroup with an empty member id: returns the id handed out.
fn member_id_required(g: &mut ClassicGroup, now: Instant, n: usize) -> String {
    match g.join(req("", 10_000, 30_000), now, 0, DELAY, |p| {
        format!("{p}-{n}")
    }) {
        JoinOutcome::Now(r) => {
            assert_eq!(r.error, ResponseError::MemberIdRequired.code());
            r.member_id
        }
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    }
}

fn parked(g: &mut ClassicGroup, id: &str, now: Instant) -> oneshot::Receiver<JoinResult> {
    match g.join(req(id, 10_000, 30_000), now, 0, DELAY, |_| unreachable!()) {
        JoinOutcome::Wait(rx) => rx,
        other => panic!("expected a parked join, got {other:?}"),
    }
}

/// Runs the group's timers at `at` (as the coordinator's tick does).
fn tick(g: &mut ClassicGroup, at: Instant) {
    g.tick(at, 0);
}

#[test]
fn initial_rebalance_ends_after_the_delay_despite_pending_member_ids() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    // A client that unsubscribed: its member id is never used.
    let _abandoned = member_id_required(&mut g, t0, 1);
    let b = member_id_required(&mut g, t0, 2);
    let mut rx = parked(&mut g, &b, t0);
    tick(&mut g, t0 + DELAY - Duration::from_millis(1));
    assert!(rx.try_recv().is_err(), "the delay has not passed yet");
    tick(&mut g, t0 + DELAY);
    let r = rx
        .try_recv()
        .expect("the join phase ended after the initial delay");
    assert_eq!(
        (r.error, r.generation, r.leader.as_str()),
        (0, 1, b.as_str())
    );
    assert_eq!(g.state, GroupState::CompletingRebalance);
}

#[test]
fn initial_rebalance_is_extended_while_members_keep_joining() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    let a = member_id_required(&mut g, t0, 1);
    let mut ra = parked(&mut g, &a, t0);
    let b = member_id_required(&mut g, t0 + Duration::from_secs(1), 2);
    let mut rb = parked(&mut g, &b, t0 + Duration::from_secs(1));
    // A member joined during the delay: the timer is re-armed once.
    tick(&mut g, t0 + DELAY);
    assert!(ra.try_recv().is_err());
    tick(&mut g, t0 + DELAY * 2);
    let (ra, rb) = (ra.try_recv().expect("a"), rb.try_recv().expect("b"));
    assert_eq!((ra.generation, rb.generation), (1, 1));
    assert_eq!(ra.members.len(), 2, "the leader sees both members");
}

#[test]
fn pending_member_ids_expire_after_the_session_timeout() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    let a = member_id_required(&mut g, t0, 1);
    let _join = parked(&mut g, &a, t0);
    tick(&mut g, t0 + DELAY);
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let (out, stable) = g.sync(&a, None, 1, None, None, vec![], t0 + DELAY, 0);
    assert!(stable);
    g.finish_sync(Ok(()), t0 + DELAY, 0);
    drop(out);
    // A second client gets an id and never comes back; the first rejoins
    // with new metadata, which starts a (non-initial) rebalance.
    let t1 = t0 + DELAY + Duration::from_secs(1);
    let _abandoned = member_id_required(&mut g, t1, 2);
    let mut rejoin = req(&a, 10_000, 30_000);
    rejoin.protocols = vec![("range".to_string(), Bytes::from_static(b"changed"))];
    let JoinOutcome::Wait(mut rx) = g.join(rejoin, t1, 0, DELAY, |_| unreachable!()) else {
        panic!("a rejoin in Stable with new metadata parks");
    };
    tick(&mut g, t1 + Duration::from_millis(9_999));
    assert!(rx.try_recv().is_err(), "waits for the pending member id");
    // Its session timeout (10 s) passes long before the rebalance timeout (30 s).
    tick(&mut g, t1 + Duration::from_secs(10));
    let r = rx
        .try_recv()
        .expect("the join phase ended when the pending id expired");
    assert_eq!((r.error, r.generation), (0, 2));
}

#[test]
fn rollback_restores_members_and_keeps_parked_requests() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    let a = member_id_required(&mut g, t0, 1);
    let mut ra = parked(&mut g, &a, t0);
    let before = g.snapshot();
    assert_eq!(g.leave(&a, None, t0, 0), 0);
    assert_eq!(g.state, GroupState::Empty);
    // The leave was answered to the parked join; roll it back.
    assert_eq!(
        ra.try_recv().map(|r| r.error).ok(),
        Some(ResponseError::UnknownMemberId.code())
    );
    g.rollback(before);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert!(g.has_member(&a));
}

#[test]
fn static_member_rejoin_with_new_metadata_but_same_protocol_does_not_rebalance() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    let mut first = req("", 10_000, 30_000);
    first.instance_id = Some("i1".to_string());
    let JoinOutcome::Wait(mut rx) = g.join(first.clone(), t0, 0, DELAY, |p| format!("{p}-1"))
    else {
        panic!("a first join parks");
    };
    tick(&mut g, t0 + DELAY);
    let r = rx.try_recv().expect("joined");
    let (_, stable) = g.sync(
        &r.member_id,
        Some("i1"),
        1,
        None,
        None,
        vec![],
        t0 + DELAY,
        0,
    );
    assert!(stable);
    g.finish_sync(Ok(()), t0 + DELAY, 0);
    // A restarted consumer sends other user data (owned partitions, generation)
    // for the same protocol: Kafka keeps the group Stable.
    let mut again = first;
    again.protocols = vec![("range".to_string(), Bytes::from_static(b"other user data"))];
    match g.join(again, t0 + DELAY, 0, DELAY, |p| format!("{p}-2")) {
        JoinOutcome::AfterStore(r) => {
            assert_eq!(
                (r.error, r.generation, r.member_id.as_str()),
                (0, 1, "i1-2")
            )
        }
        other => panic!("expected no rebalance, got {other:?}"),
    }
    assert_eq!(g.state, GroupState::Stable);
}
