//! What a partition leader knows about its followers: their log end
//! offsets and when each was last caught up, the ISR as committed and as
//! requested, and from those the high watermark and the ISR changes to ask
//! the controller for. Pure logic, no I/O (Kafka's `Partition` and
//! `Replica` bookkeeping).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One follower's progress, as seen by the leader.
#[derive(Debug, Clone, Copy)]
pub struct FollowerProgress {
    /// The follower's log end offset (its last fetch offset), -1 unknown.
    pub leo: i64,
    /// The last time the follower was caught up to the leader's log end.
    pub last_caught_up: Instant,
    /// The leader's log end at the follower's previous fetch.
    last_fetch_leader_leo: i64,
    /// When the previous fetch came.
    last_fetch: Instant,
}

/// The leader's replication state of one partition.
#[derive(Debug, Clone)]
pub struct LeaderState {
    /// This broker.
    pub node_id: i32,
    /// The leader epoch this state belongs to.
    pub leader_epoch: i32,
    /// The partition epoch of the committed ISR.
    pub partition_epoch: i32,
    /// All replicas.
    pub replicas: Vec<i32>,
    /// The ISR as committed.
    pub isr: Vec<i32>,
    /// An ISR change sent to the controller and not yet answered.
    pub pending_isr: Option<Vec<i32>>,
    /// Each follower's progress.
    pub followers: HashMap<i32, FollowerProgress>,
    /// The leader's log end when it took this leadership: a follower joins
    /// the ISR only once it holds that much (Kafka's leader epoch start
    /// offset), since this leader's high watermark may still lag the
    /// previous leader's.
    pub epoch_start_offset: i64,
}

impl LeaderState {
    /// The state of a new leadership: followers' offsets unknown, and every
    /// follower counted as caught up now (as Kafka does on becoming
    /// leader), so none is dropped before it had a chance to fetch.
    pub fn new(
        node_id: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        epoch_start_offset: i64,
        now: Instant,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|&&r| r != node_id)
            .map(|&r| {
                (
                    r,
                    FollowerProgress {
                        leo: -1,
                        last_caught_up: now,
                        last_fetch_leader_leo: -1,
                        last_fetch: now,
                    },
                )
            })
            .collect();
        Self {
            node_id,
            leader_epoch,
            partition_epoch,
            replicas,
            isr,
            pending_isr: None,
            followers,
            epoch_start_offset,
        }
    }

    /// Takes a new replica set in the same leadership (a reassignment):
    /// new followers start unknown, removed ones are forgotten.
    pub fn set_replicas(&mut self, replicas: &[i32], now: Instant) {
        self.replicas = replicas.to_vec();
        let me = self.node_id;
        self.followers.retain(|r, _| replicas.contains(r));
        for &r in replicas.iter().filter(|&&r| r != me) {
            self.followers.entry(r).or_insert(FollowerProgress {
                leo: -1,
                last_caught_up: now,
                last_fetch_leader_leo: -1,
                last_fetch: now,
            });
        }
    }

    /// The committed ISR merged with a pending change ("maximal ISR"): the
    /// high watermark waits for every replica in either, so it is safe
    /// whichever way the controller decides.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut m = self.isr.clone();
        if let Some(p) = &self.pending_isr {
            for r in p {
                if !m.contains(r) {
                    m.push(*r);
                }
            }
        }
        m
    }

    /// The high watermark the replicas allow: the smallest log end among
    /// the leader (`leader_leo`) and every member of the maximal ISR. A
    /// member whose offset is not known yet holds it at `current`.
    pub fn high_watermark(&self, leader_leo: i64, current: i64) -> i64 {
        let mut hw = leader_leo;
        for r in self.maximal_isr() {
            if r == self.node_id {
                continue;
            }
            match self.followers.get(&r) {
                Some(f) if f.leo >= 0 => hw = hw.min(f.leo),
                _ => return current,
            }
        }
        hw.max(current)
    }

    /// Records a follower's fetch at `fetch_offset` while the leader's log
    /// ends at `leader_leo` (Kafka's `Replica.updateFetchStateOrThrow`).
    pub fn record_fetch(&mut self, replica: i32, fetch_offset: i64, leader_leo: i64, now: Instant) {
        let Some(f) = self.followers.get_mut(&replica) else {
            return;
        };
        if fetch_offset >= leader_leo {
            f.last_caught_up = now;
        } else if fetch_offset >= f.last_fetch_leader_leo {
            f.last_caught_up = f.last_caught_up.max(f.last_fetch);
        }
        f.leo = fetch_offset;
        f.last_fetch_leader_leo = leader_leo;
        f.last_fetch = now;
    }

    /// The ISR to request when `replica` has caught up to the high
    /// watermark and to this leadership's start offset but is not in the
    /// ISR (and no change is pending).
    pub fn expansion(&self, replica: i32, hw: i64) -> Option<Vec<i32>> {
        if self.pending_isr.is_some() || self.isr.contains(&replica) {
            return None;
        }
        let f = self.followers.get(&replica)?;
        (f.leo >= hw && f.leo >= self.epoch_start_offset).then(|| {
            let mut isr = self.isr.clone();
            isr.push(replica);
            isr
        })
    }

    /// The ISR to request when members have not caught up within `lag`
    /// (`replica.lag.time.max.ms`), if any, and no change is pending.
    pub fn shrink(&self, lag: Duration, now: Instant) -> Option<Vec<i32>> {
        if self.pending_isr.is_some() {
            return None;
        }
        let keep: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|&r| {
                r == self.node_id
                    || self
                        .followers
                        .get(&r)
                        .is_some_and(|f| now.saturating_duration_since(f.last_caught_up) <= lag)
            })
            .collect();
        (keep.len() < self.isr.len()).then_some(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_watermark_waits_for_every_isr_member() {
        let now = Instant::now();
        let mut s = LeaderState::new(1, 0, 0, vec![1, 2, 3], vec![1, 2, 3], 0, now);
        assert_eq!(s.high_watermark(10, 0), 0, "followers unknown");
        s.record_fetch(2, 10, 10, now);
        assert_eq!(s.high_watermark(10, 0), 0, "3 unknown");
        s.record_fetch(3, 7, 10, now);
        assert_eq!(s.high_watermark(10, 0), 7);
        assert_eq!(s.high_watermark(10, 8), 8, "never moves back");
        // 3 out of the ISR: the HW follows 1 and 2 only.
        s.isr = vec![1, 2];
        assert_eq!(s.high_watermark(10, 7), 10);
        // A pending expansion counts at once.
        s.pending_isr = Some(vec![1, 2, 3]);
        assert_eq!(s.high_watermark(12, 10), 10);
    }

    #[test]
    fn isr_expands_at_the_hw_and_shrinks_after_the_lag() {
        let t0 = Instant::now();
        let mut s = LeaderState::new(1, 0, 0, vec![1, 2, 3], vec![1, 2], 9, t0);
        s.record_fetch(3, 5, 10, t0);
        assert_eq!(s.expansion(3, 8), None, "behind the HW");
        s.record_fetch(3, 8, 10, t0);
        assert_eq!(
            s.expansion(3, 8),
            None,
            "at this leader's HW, but maybe not at the previous leader's: not before the epoch start"
        );
        s.record_fetch(3, 9, 10, t0);
        assert_eq!(s.expansion(3, 8), Some(vec![1, 2, 3]));
        let lag = Duration::from_secs(30);
        assert_eq!(s.shrink(lag, t0 + Duration::from_secs(10)), None);
        // 2 fetched once at the end, then stopped; 30 s later it goes.
        s.record_fetch(2, 10, 10, t0);
        assert_eq!(s.shrink(lag, t0 + Duration::from_secs(31)), Some(vec![1]));
        s.pending_isr = Some(vec![1]);
        assert_eq!(
            s.shrink(lag, t0 + Duration::from_secs(31)),
            None,
            "one change at a time"
        );
    }
}
