//! Replication throttles (Kafka's `ReplicationQuotaManager`, KIP-73): a
//! byte-rate bound for the replica traffic of throttled partitions, one on
//! the leader side (what this broker serves to followers) and one on the
//! follower side (what this broker's fetchers pull).
//!
//! - The bound is the broker config `leader.replication.throttled.rate` /
//!   `follower.replication.throttled.rate` (bytes per second, dynamic, per
//!   broker or as the cluster default; unbounded by default).
//! - The throttled partitions are the topic config
//!   `leader.replication.throttled.replicas` /
//!   `follower.replication.throttled.replicas`: `*` (every partition) or
//!   `partition:broker` pairs, of which this broker takes the partitions
//!   listed with its own id.
//! - The rate is measured over `replication.quota.window.num` samples of
//!   `replication.quota.window.size.seconds` (Kafka's `SimpleRate`: the sum
//!   of the live samples over the time since the oldest one began, at least
//!   one window).
//! - As in Kafka, a replica is held back only while it is out of the ISR
//!   (throttling an in-sync replica would only shrink the ISR); the bytes of
//!   every throttled partition count toward the rate.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::TopicConfigResolver;
use crate::metadata::ClusterImage;

/// Which partitions of a topic are throttled on this broker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Throttled {
    All,
    Some(HashSet<i32>),
}

/// Which side of replication a quota bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaSide {
    /// Bytes this broker serves to followers.
    Leader,
    /// Bytes this broker's fetchers take from leaders.
    Follower,
}

impl QuotaSide {
    fn rate_key(self) -> &'static str {
        match self {
            QuotaSide::Leader => "leader.replication.throttled.rate",
            QuotaSide::Follower => "follower.replication.throttled.rate",
        }
    }

    fn replicas_key(self) -> &'static str {
        match self {
            QuotaSide::Leader => "leader.replication.throttled.replicas",
            QuotaSide::Follower => "follower.replication.throttled.replicas",
        }
    }
}

#[derive(Debug)]
struct Inner {
    /// Bytes per second; `None` is unbounded.
    bound: Option<u64>,
    window: Duration,
    samples: usize,
    /// `(sample start, bytes)`, oldest first.
    recorded: VecDeque<(Instant, u64)>,
    throttled: HashMap<String, Throttled>,
}

/// One side's replication quota.
#[derive(Debug)]
pub struct ReplicationQuota {
    side: QuotaSide,
    inner: Mutex<Inner>,
}

/// `partition:broker` pairs (or `*`) → this broker's throttled partitions,
/// as Kafka's `ConfigHandler.parseThrottledPartitions`; `None` when the
/// value throttles nothing here.
fn parse_throttled(value: &str, node_id: i32) -> Option<Throttled> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v == "*" {
        return Some(Throttled::All);
    }
    let parts: HashSet<i32> = v
        .split(',')
        .filter_map(|pair| {
            let (p, b) = pair.trim().split_once(':')?;
            let (p, b) = (p.trim().parse::<i32>().ok()?, b.trim().parse::<i32>().ok()?);
            (b == node_id).then_some(p)
        })
        .collect();
    Some(Throttled::Some(parts))
}

impl ReplicationQuota {
    /// An unbounded quota with nothing throttled.
    pub fn new(side: QuotaSide) -> Self {
        Self {
            side,
            inner: Mutex::new(Inner {
                bound: None,
                window: Duration::from_secs(1),
                samples: 11,
                recorded: VecDeque::new(),
                throttled: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the bound, the sample windows and the throttled partitions
    /// from `image` as this broker (`node_id`, `static_props`) sees them.
    pub fn update(
        &self,
        image: &ClusterImage,
        node_id: i32,
        static_props: &std::collections::BTreeMap<String, String>,
    ) {
        let resolver = TopicConfigResolver {
            static_props,
            cluster: &image.cluster_configs,
            node: image.broker_configs.get(&node_id),
        };
        let num = |key: &str| -> Option<i64> {
            resolver
                .broker_entry(key)
                .and_then(|e| e.value)
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let bound = num(self.side.rate_key())
            .filter(|r| *r >= 0 && *r < i64::MAX)
            .map(|r| r as u64);
        let samples = num("replication.quota.window.num")
            .filter(|n| *n >= 1)
            .unwrap_or(11) as usize;
        let window_s = num("replication.quota.window.size.seconds")
            .filter(|n| *n >= 1)
            .unwrap_or(1) as u64;
        let throttled: HashMap<String, Throttled> = image
            .topics
            .values()
            .filter_map(|t| {
                let v = t.configs.get(self.side.replicas_key())?;
                Some((t.name.clone(), parse_throttled(v, node_id)?))
            })
            .collect();
        let mut g = self.lock();
        if g.bound != bound || g.throttled != throttled {
            tracing::info!(
                side = ?self.side,
                rate = ?bound,
                throttled_topics = throttled.len(),
                "replication throttle changed"
            );
        }
        g.bound = bound;
        g.samples = samples;
        g.window = Duration::from_secs(window_s);
        g.throttled = throttled;
    }

    /// Whether `topic`'s `partition` is throttled on this broker.
    pub fn is_throttled(&self, topic: &str, partition: i32) -> bool {
        match self.lock().throttled.get(topic) {
            Some(Throttled::All) => true,
            Some(Throttled::Some(ps)) => ps.contains(&partition),
            None => false,
        }
    }

    /// Whether any partition is throttled (a cheap check before the rest).
    pub fn any_throttled(&self) -> bool {
        !self.lock().throttled.is_empty()
    }

    fn purge(g: &mut Inner, now: Instant) {
        let span = g.window * g.samples as u32;
        while let Some((start, _)) = g.recorded.front() {
            if now.duration_since(*start) >= span {
                g.recorded.pop_front();
            } else {
                break;
            }
        }
    }

    /// The measured rate under the lock held by the caller.
    fn rate_locked(g: &mut Inner, now: Instant) -> f64 {
        Self::purge(g, now);
        let Some((oldest, _)) = g.recorded.front() else {
            return 0.0;
        };
        let elapsed = now.duration_since(*oldest).max(g.window);
        let total: u64 = g.recorded.iter().map(|(_, b)| *b).sum();
        total as f64 / elapsed.as_secs_f64()
    }

    /// The measured rate, bytes per second.
    pub fn rate(&self, now: Instant) -> f64 {
        Self::rate_locked(&mut self.lock(), now)
    }

    /// Whether the measured rate is above the bound (never when unbounded).
    pub fn exceeded(&self, now: Instant) -> bool {
        let mut g = self.lock();
        match g.bound {
            Some(bound) => Self::rate_locked(&mut g, now) > bound as f64,
            None => false,
        }
    }

    /// Counts `bytes` of throttled-partition traffic toward the rate (even
    /// beyond the bound, as Kafka's `record(value, now, false)`).
    pub fn record(&self, bytes: u64, now: Instant) {
        if bytes == 0 {
            return;
        }
        let mut g = self.lock();
        Self::purge(&mut g, now);
        let window = g.window;
        match g.recorded.back_mut() {
            Some((start, b)) if now.duration_since(*start) < window => *b += bytes,
            _ => g.recorded.push_back((now, bytes)),
        }
    }

    /// Whether a replica of `topic`/`partition` that is `in_sync` (or not)
    /// should be held back now (Kafka's `shouldLeaderThrottle` and
    /// `shouldFollowerThrottle`).
    pub fn hold_back(&self, topic: &str, partition: i32, in_sync: bool, now: Instant) -> bool {
        !in_sync && self.is_throttled(topic, partition) && self.exceeded(now)
    }
}

/// Both sides' quotas of one broker.
#[derive(Debug)]
pub struct ReplicationQuotas {
    /// What this broker serves to followers.
    pub leader: ReplicationQuota,
    /// What this broker's fetchers take.
    pub follower: ReplicationQuota,
}

impl Default for ReplicationQuotas {
    fn default() -> Self {
        Self {
            leader: ReplicationQuota::new(QuotaSide::Leader),
            follower: ReplicationQuota::new(QuotaSide::Follower),
        }
    }
}

impl ReplicationQuotas {
    /// Updates both from a new image.
    pub fn update(
        &self,
        image: &ClusterImage,
        node_id: i32,
        static_props: &std::collections::BTreeMap<String, String>,
    ) {
        self.leader.update(image, node_id, static_props);
        self.follower.update(image, node_id, static_props);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::TopicImage;
    use std::collections::BTreeMap;

    #[test]
    fn throttled_replica_lists_name_this_brokers_partitions() {
        assert_eq!(parse_throttled("", 1), None);
        assert_eq!(parse_throttled("*", 1), Some(Throttled::All));
        assert_eq!(
            parse_throttled("0:1,1:2, 2:1", 1),
            Some(Throttled::Some(HashSet::from([0, 2])))
        );
        assert_eq!(
            parse_throttled("0:2", 1),
            Some(Throttled::Some(HashSet::new()))
        );
    }

    fn image_with(rate: Option<&str>, replicas: Option<&str>) -> ClusterImage {
        let mut image = ClusterImage::default();
        if let Some(r) = rate {
            image.broker_configs.insert(
                1,
                BTreeMap::from([("leader.replication.throttled.rate".into(), r.into())]),
            );
        }
        let mut configs = BTreeMap::new();
        if let Some(r) = replicas {
            configs.insert("leader.replication.throttled.replicas".into(), r.into());
        }
        image.topics.insert(
            "t".into(),
            TopicImage {
                name: "t".into(),
                topic_id: uuid::Uuid::new_v4(),
                partitions: vec![],
                configs,
            },
        );
        image
    }

    #[test]
    fn the_rate_is_bounded_only_when_set_and_only_for_throttled_out_of_sync_replicas() {
        let q = ReplicationQuota::new(QuotaSide::Leader);
        let none = BTreeMap::new();
        let t0 = Instant::now();
        q.update(&image_with(None, Some("0:1")), 1, &none);
        q.record(10_000_000, t0);
        assert!(!q.exceeded(t0), "unbounded by default");
        q.update(&image_with(Some("1000"), Some("0:1")), 1, &none);
        assert!(q.exceeded(t0));
        assert!(q.hold_back("t", 0, false, t0));
        assert!(
            !q.hold_back("t", 0, true, t0),
            "in-sync replicas are never held back"
        );
        assert!(!q.hold_back("t", 1, false, t0), "partition 1 is not listed");
        assert!(!q.hold_back("u", 0, false, t0), "another topic");
        // broker 2 sees no partition of its own in the list
        q.update(&image_with(Some("1000"), Some("0:1")), 2, &none);
        assert!(!q.is_throttled("t", 0));
    }

    #[test]
    fn samples_expire_after_the_windows_pass() {
        let q = ReplicationQuota::new(QuotaSide::Leader);
        let none = BTreeMap::new();
        q.update(&image_with(Some("1000"), Some("*")), 1, &none);
        let t0 = Instant::now();
        q.record(5_000, t0);
        // 5,000 bytes over at least one window: 5,000 B/s
        assert!((q.rate(t0) - 5_000.0).abs() < 1.0);
        assert!(q.exceeded(t0 + Duration::from_secs(4)));
        // after 11 one-second windows the sample is gone
        assert!(!q.exceeded(t0 + Duration::from_secs(12)));
        assert_eq!(q.rate(t0 + Duration::from_secs(12)), 0.0);
    }
}
