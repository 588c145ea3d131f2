//! The replication throttle of the operator's partition moves
//! (`spec.rebalance.throttleBytesPerSecond`), set as `kafka-reassign-partitions
//! --throttle` sets it and removed as its `--verify` does once no reassignment is in
//! progress:
//!
//! - on each topic with a moving partition, `leader.replication.throttled.replicas`
//!   lists `partition:broker` for the partition's current replicas (they serve the
//!   copy) and `follower.replication.throttled.replicas` its new replicas (they fetch
//!   it);
//! - on every broker of a move, `leader.replication.throttled.rate` and
//!   `follower.replication.throttled.rate` bound those bytes per second.
//!
//! Which configs to set is pure ([`plan`], unit-tested); [`apply`] and [`clear`] send
//! them. What was set is kept in `status.replicationThrottle`, so a restarted operator
//! still removes it.

use super::scale::Move;
use runnel_admin::{AdminClient, AdminError, AlterConfigOp};
use runnel_crds::cluster::ThrottleStatus;
use std::collections::{BTreeMap, BTreeSet};

/// The topic config listing the replicas that serve throttled traffic.
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
/// The topic config listing the replicas that fetch throttled traffic.
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";
/// The broker config bounding what a broker serves to throttled replicas.
pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
/// The broker config bounding what a broker fetches for throttled replicas.
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
/// Kafka's UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// What a reconcile did to `status.replicationThrottle`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ThrottleChange {
    /// Nothing: the status keeps what it showed.
    #[default]
    Keep,
    /// Set (or partly set): the status shows it.
    Set(ThrottleStatus),
    /// Removed: the status shows none.
    Cleared,
}

/// The union of two throttles' records (what must be removed later).
pub fn union(a: &ThrottleStatus, b: &ThrottleStatus) -> ThrottleStatus {
    let topics: BTreeSet<&String> = a.topics.iter().chain(&b.topics).collect();
    let brokers: BTreeSet<i32> = a.brokers.iter().chain(&b.brokers).copied().collect();
    ThrottleStatus {
        bytes_per_second: b.bytes_per_second,
        topics: topics.into_iter().cloned().collect(),
        brokers: brokers.into_iter().collect(),
    }
}

/// The throttle of a set of moves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Throttle {
    /// Bytes per second per broker.
    pub rate: i64,
    /// Topic → (leader list, follower list), each `p:b,p:b`.
    pub topics: BTreeMap<String, (String, String)>,
    /// The brokers of the moves.
    pub brokers: BTreeSet<i32>,
}

impl Throttle {
    /// What `status.replicationThrottle` shows of it.
    pub fn status(&self) -> ThrottleStatus {
        ThrottleStatus {
            bytes_per_second: self.rate,
            topics: self.topics.keys().cloned().collect(),
            brokers: self.brokers.iter().copied().collect(),
        }
    }
}

/// The throttle for `moves` at `rate` bytes per second. A move that adds no replica
/// (a reorder for leadership) copies nothing and is left out; `None` when no move
/// copies data.
pub fn plan(moves: &[Move], rate: i64) -> Option<Throttle> {
    let mut leaders: BTreeMap<&str, BTreeSet<(i32, i32)>> = BTreeMap::new();
    let mut followers: BTreeMap<&str, BTreeSet<(i32, i32)>> = BTreeMap::new();
    let mut brokers = BTreeSet::new();
    for m in moves {
        let adding: Vec<i32> =
            m.to.iter()
                .copied()
                .filter(|b| !m.from.contains(b))
                .collect();
        if adding.is_empty() {
            continue;
        }
        let l = leaders.entry(&m.topic).or_default();
        for &b in &m.from {
            l.insert((m.partition, b));
            brokers.insert(b);
        }
        let f = followers.entry(&m.topic).or_default();
        for b in adding {
            f.insert((m.partition, b));
            brokers.insert(b);
        }
    }
    if leaders.is_empty() {
        return None;
    }
    let list = |s: &BTreeSet<(i32, i32)>| {
        s.iter()
            .map(|(p, b)| format!("{p}:{b}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let topics = leaders
        .iter()
        .map(|(t, l)| {
            let f = followers.get(t).map(list).unwrap_or_default();
            (t.to_string(), (list(l), f))
        })
        .collect();
    Some(Throttle {
        rate,
        topics,
        brokers,
    })
}

/// Sets `t` on its topics and brokers. Stops at the first error (what was set is
/// still removed by [`clear`] with `t.status()`).
pub async fn apply(admin: &AdminClient, t: &Throttle) -> Result<(), AdminError> {
    for (topic, (leader, follower)) in &t.topics {
        admin
            .incremental_alter_topic_configs(
                topic,
                &[
                    AlterConfigOp::Set(LEADER_REPLICAS.into(), leader.clone()),
                    AlterConfigOp::Set(FOLLOWER_REPLICAS.into(), follower.clone()),
                ],
                false,
            )
            .await?;
    }
    let rate = t.rate.to_string();
    for &b in &t.brokers {
        admin
            .incremental_alter_broker_configs(
                b,
                &[
                    AlterConfigOp::Set(LEADER_RATE.into(), rate.clone()),
                    AlterConfigOp::Set(FOLLOWER_RATE.into(), rate.clone()),
                ],
                false,
            )
            .await?;
    }
    Ok(())
}

/// Removes the throttle `s` lists. A topic deleted since, or a broker no longer in
/// the cluster, has nothing left to remove and is skipped.
pub async fn clear(admin: &AdminClient, s: &ThrottleStatus) -> Result<(), AdminError> {
    for topic in &s.topics {
        let r = admin
            .incremental_alter_topic_configs(
                topic,
                &[
                    AlterConfigOp::Delete(LEADER_REPLICAS.into()),
                    AlterConfigOp::Delete(FOLLOWER_REPLICAS.into()),
                ],
                false,
            )
            .await;
        match r {
            Err(e) if e.kafka_code() == Some(UNKNOWN_TOPIC_OR_PARTITION) => {}
            r => r?,
        }
    }
    let registered: BTreeSet<i32> = admin
        .describe_cluster()
        .await?
        .brokers
        .iter()
        .map(|b| b.id)
        .collect();
    for b in s.brokers.iter().filter(|b| registered.contains(b)) {
        admin
            .incremental_alter_broker_configs(
                *b,
                &[
                    AlterConfigOp::Delete(LEADER_RATE.into()),
                    AlterConfigOp::Delete(FOLLOWER_RATE.into()),
                ],
                false,
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(topic: &str, partition: i32, from: &[i32], to: &[i32]) -> Move {
        Move {
            topic: topic.into(),
            partition,
            from: from.to_vec(),
            to: to.to_vec(),
            reason: "test".into(),
        }
    }

    #[test]
    fn leaders_are_the_current_replicas_followers_the_new_ones() {
        let t = plan(
            &[
                mv("a", 0, &[0, 1], &[3, 1]),
                mv("a", 4, &[2, 0], &[2, 3]),
                mv("b", 1, &[1, 2], &[1, 4]),
            ],
            1_000_000,
        )
        .expect("throttle");
        assert_eq!(t.rate, 1_000_000);
        assert_eq!(
            t.topics["a"],
            ("0:0,0:1,4:0,4:2".to_string(), "0:3,4:3".to_string())
        );
        assert_eq!(t.topics["b"], ("1:1,1:2".to_string(), "1:4".to_string()));
        assert_eq!(t.brokers, BTreeSet::from([0, 1, 2, 3, 4]));
        let s = t.status();
        assert_eq!(s.topics, ["a", "b"]);
        assert_eq!(s.brokers, [0, 1, 2, 3, 4]);
        assert_eq!(s.bytes_per_second, 1_000_000);
        let other = ThrottleStatus {
            bytes_per_second: 5,
            topics: vec!["c".into(), "a".into()],
            brokers: vec![7, 0],
        };
        let u = union(&s, &other);
        assert_eq!(u.topics, ["a", "b", "c"]);
        assert_eq!(u.brokers, [0, 1, 2, 3, 4, 7]);
        assert_eq!(u.bytes_per_second, 5);
    }

    #[test]
    fn a_leadership_reorder_copies_nothing_and_is_not_throttled() {
        assert_eq!(plan(&[mv("a", 0, &[0, 1], &[1, 0])], 10), None);
        assert_eq!(plan(&[], 10), None);
        let t =
            plan(&[mv("a", 0, &[0, 1], &[1, 0]), mv("c", 2, &[0], &[1])], 10).expect("throttle");
        assert_eq!(t.topics.keys().collect::<Vec<_>>(), ["c"]);
        assert_eq!(t.topics["c"], ("2:0".to_string(), "2:1".to_string()));
    }
}
