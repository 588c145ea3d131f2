//! Group changes that must be stored in `__consumer_offsets` count only
//! once they are: with the store failing, the group stays what the log
//! holds (so a restart reloads the same state) and the request gets the
//! append's error.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use crate::clock::now_ms;
use crate::config::BrokerConfig;
use crate::group::classic::{GroupState, JoinOutcome, JoinRequest};
use crate::group::consumer::{ConsumerGroup, HeartbeatRequest, TopicMeta};
use crate::group::coordinator::{GroupConfig, GroupCoordinator, GroupRecord, GroupStore};

#[derive(Default)]
struct FakeStore {
    fail: AtomicBool,
    appended: Mutex<Vec<(String, usize)>>,
}

impl FakeStore {
    fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    fn writes(&self) -> usize {
        self.appended.lock().map(|a| a.len()).unwrap_or(0)
    }
}

impl GroupStore for FakeStore {
    fn append(&self, _partition: i32, group: &str, recs: Vec<GroupRecord>) -> Result<(), i16> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        }
        if let Ok(mut a) = self.appended.lock() {
            a.push((group.to_string(), recs.len()));
        }
        Ok(())
    }
}

fn coordinator() -> GroupCoordinator {
    let mut props = BrokerConfig::default_props();
    props.insert("group.initial.rebalance.delay.ms".into(), "0".into());
    let (config, _) = BrokerConfig::from_props(props).expect("valid config");
    let c = GroupCoordinator::new(GroupConfig::from_broker(&config));
    c.activate_all_for_tests();
    c
}

fn join_req(member_id: &str, instance: Option<&str>, session_ms: i32) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "c".to_string(),
        client_host: "/127.0.0.1".to_string(),
        session_timeout_ms: session_ms,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".to_string(),
        protocols: vec![("range".to_string(), Bytes::from_static(b"m"))],
        require_known_member_id: false,
    }
}

/// A Stable classic group with one member; returns its member id.
async fn stable_group(
    c: &GroupCoordinator,
    store: &FakeStore,
    instance: Option<&str>,
    session_ms: i32,
) -> String {
    let out = c
        .join_classic(store, "g", join_req("", instance, session_ms), |p| {
            format!("{p}-1")
        })
        .await;
    let JoinOutcome::Wait(rx) = out else {
        panic!("a first join parks, got {out:?}");
    };
    let r = rx.await.expect("the join phase ended");
    assert_eq!(r.error, 0);
    let mut groups = c.lock().await;
    let g = groups.classic.get_mut("g").expect("group");
    let now = Instant::now();
    let assignment = vec![(r.member_id.clone(), Bytes::from_static(b"a"))];
    let (_, stable) = g.sync(
        &r.member_id,
        None,
        r.generation,
        None,
        None,
        assignment,
        now,
        now_ms(),
    );
    assert!(stable);
    g.finish_sync(Ok(()), now, now_ms());
    assert_eq!(g.state, GroupState::Stable);
    r.member_id
}

#[tokio::test]
async fn leave_that_cannot_be_stored_is_refused_and_undone() {
    let c = coordinator();
    let store = FakeStore::default();
    let id = stable_group(&c, &store, None, 10_000).await;
    store.set_failing(true);
    let leaving = [(id.clone(), None)];
    let r = c.leave_classic(&store, "g", &leaving).await;
    assert_eq!(r, Err(ResponseError::CoordinatorNotAvailable.code()));
    {
        let groups = c.lock().await;
        let g = &groups.classic["g"];
        assert_eq!(g.state, GroupState::Stable);
        assert!(g.has_member(&id), "the member stays: the log still has it");
    }
    store.set_failing(false);
    assert_eq!(c.leave_classic(&store, "g", &leaving).await, Ok(vec![0]));
    assert_eq!(c.lock().await.classic["g"].state, GroupState::Empty);
    assert_eq!(store.writes(), 1, "the Empty group's record");
}

#[tokio::test]
async fn session_expiry_that_cannot_be_stored_is_retried() {
    let c = coordinator();
    let store = FakeStore::default();
    let id = stable_group(&c, &store, None, 50).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.set_failing(true);
    c.tick(&store).await;
    {
        let groups = c.lock().await;
        let g = &groups.classic["g"];
        assert_eq!(g.state, GroupState::Stable);
        assert!(g.has_member(&id));
    }
    store.set_failing(false);
    c.tick(&store).await;
    assert_eq!(c.lock().await.classic["g"].state, GroupState::Empty);
    assert_eq!(store.writes(), 1);
}

#[tokio::test]
async fn static_member_replacement_that_cannot_be_stored_keeps_the_old_id() {
    let c = coordinator();
    let store = FakeStore::default();
    let old = stable_group(&c, &store, Some("i1"), 10_000).await;
    store.set_failing(true);
    let out = c
        .join_classic(&store, "g", join_req("", Some("i1"), 10_000), |p| {
            format!("{p}-2")
        })
        .await;
    let JoinOutcome::Now(r) = out else {
        panic!("answered at once, got {out:?}");
    };
    assert_eq!(r.error, ResponseError::CoordinatorNotAvailable.code());
    assert_eq!((r.member_id.as_str(), r.generation), ("", 1));
    {
        let groups = c.lock().await;
        let g = &groups.classic["g"];
        assert!(g.has_member(&old) && !g.has_member("i1-2"));
    }
    store.set_failing(false);
    let out = c
        .join_classic(&store, "g", join_req("", Some("i1"), 10_000), |p| {
            format!("{p}-3")
        })
        .await;
    let JoinOutcome::Now(r) = out else {
        panic!("answered at once, got {out:?}");
    };
    assert_eq!((r.error, r.member_id.as_str()), (0, "i1-3"));
    assert_eq!(store.writes(), 1);
}

#[tokio::test]
async fn consumer_group_expiry_that_cannot_be_stored_is_retried() {
    let c = coordinator();
    let store = FakeStore::default();
    let topics: BTreeMap<String, TopicMeta> = [(
        "t".to_string(),
        TopicMeta {
            id: uuid::Uuid::from_u128(7),
            name: "t".to_string(),
            partitions: 2,
        },
    )]
    .into_iter()
    .collect();
    let mut cfg = c.config.consumer.clone();
    cfg.session_timeout_ms = 50;
    let mut g = ConsumerGroup::new("cg");
    let req = HeartbeatRequest {
        member_id: "m1".to_string(),
        rebalance_timeout_ms: 10_000,
        subscribed_topic_names: Some(vec!["t".to_string()]),
        owned_partitions: Some(vec![]),
        ..HeartbeatRequest::default()
    };
    let r = g.heartbeat(req, &topics, Instant::now(), &cfg, || unreachable!());
    assert_eq!(r.error_code, 0);
    {
        let mut groups = c.lock().await;
        groups.consumer.insert("cg".to_string(), g);
        c.persist_consumer(&store, &mut groups, "cg")
            .expect("stored");
    }
    let stored = store.writes();
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.set_failing(true);
    c.tick(&store).await;
    assert!(c.lock().await.consumer["cg"].member("m1").is_some());
    store.set_failing(false);
    c.tick(&store).await;
    assert!(c.lock().await.consumer["cg"].member("m1").is_none());
    assert_eq!(store.writes(), stored + 1);
}
