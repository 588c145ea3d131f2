//! Leader and ISR decisions as pure functions of the cluster image: which
//! `ChangePartition` records bring every partition in line with which
//! brokers are live. The controller commits what these return; the same
//! image always gives the same records.
//!
//! Rules (Kafka's `PartitionChangeBuilder`, without unclean election and
//! without eligible leader replicas):
//! - a broker that is fenced or shutting down leaves every ISR, unless it
//!   is the last member (the ISR then keeps it, so that the partition comes
//!   back when it does);
//! - a partition whose leader is not usable gets the first replica, in
//!   replica order, that is in the ISR and usable; if there is none, its
//!   leader becomes -1 (offline) and its ISR is left as it was;
//! - an offline partition gets a leader as soon as an ISR member is usable.

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::metadata::{ClusterImage, MetadataRecord, PartitionImage};

/// The leader and ISR `p` should have, given which brokers are usable.
/// `None` when it already has them.
pub fn desired(p: &PartitionImage, usable: impl Fn(i32) -> bool) -> Option<(i32, Vec<i32>)> {
    let mut isr: Vec<i32> = p.isr.iter().copied().filter(|&r| usable(r)).collect();
    if isr.is_empty() {
        // Nobody in the ISR is live: keep it whole (those members hold
        // every committed record), and the partition has no leader.
        isr = p.isr.clone();
    }
    let leader = if p.leader >= 0 && usable(p.leader) && isr.contains(&p.leader) {
        p.leader
    } else {
        p.replicas
            .iter()
            .copied()
            .find(|&r| isr.contains(&r) && usable(r))
            .unwrap_or(-1)
    };
    (leader != p.leader || isr != p.isr).then_some((leader, isr))
}

/// Every `ChangePartition` that brings the image's partitions in line with
/// the brokers' liveness (see the module rules), in topic and partition order.
pub fn reconcile(image: &ClusterImage) -> Vec<MetadataRecord> {
    let usable = |b: i32| image.broker_usable(b);
    let mut out = Vec::new();
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            if let Some((leader, isr)) = desired(p, usable) {
                out.push(change(t.topic_id, i as i32, p, leader, isr));
            }
        }
    }
    out
}

/// The record that sets `p`'s leader and ISR (bumping the leader epoch
/// when the leader changes).
pub fn change(
    topic_id: Uuid,
    partition: i32,
    p: &PartitionImage,
    leader: i32,
    isr: Vec<i32>,
) -> MetadataRecord {
    MetadataRecord::ChangePartition {
        topic_id,
        partition,
        leader,
        isr,
        replicas: None,
        bump_leader_epoch: leader != p.leader,
    }
}

/// A preferred-replica election for `p` (ElectLeaders PREFERRED, and the
/// automatic leader rebalance): the preferred replica (the first) takes
/// over when it is live and in the ISR. Kafka's errors otherwise:
/// ELECTION_NOT_NEEDED when it already leads, PREFERRED_LEADER_NOT_AVAILABLE
/// when it cannot.
pub fn preferred(p: &PartitionImage, usable: impl Fn(i32) -> bool) -> Result<i32, ResponseError> {
    let Some(&first) = p.replicas.first() else {
        return Err(ResponseError::PreferredLeaderNotAvailable);
    };
    if p.leader == first {
        return Err(ResponseError::ElectionNotNeeded);
    }
    if p.isr.contains(&first) && usable(first) {
        Ok(first)
    } else {
        Err(ResponseError::PreferredLeaderNotAvailable)
    }
}

/// An unclean election for `p` (ElectLeaders UNCLEAN, an operator's
/// explicit choice): only for a partition without a leader, the first live
/// replica leads with itself as the whole ISR (records only the old ISR had
/// are lost). ELECTION_NOT_NEEDED when it has a leader,
/// ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live.
pub fn unclean(
    p: &PartitionImage,
    usable: impl Fn(i32) -> bool,
) -> Result<(i32, Vec<i32>), ResponseError> {
    if p.leader >= 0 {
        return Err(ResponseError::ElectionNotNeeded);
    }
    if let Some((leader, isr)) = desired(p, &usable) {
        if leader >= 0 {
            return Ok((leader, isr));
        }
    }
    p.replicas
        .iter()
        .copied()
        .find(|&r| usable(r))
        .map(|r| (r, vec![r]))
        .ok_or(ResponseError::EligibleLeadersNotAvailable)
}

/// How many partitions `node_id` leads.
pub fn leaderships(image: &ClusterImage, node_id: i32) -> usize {
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.leader == node_id)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionImage {
        PartitionImage {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            ..Default::default()
        }
    }

    #[test]
    fn a_dead_leader_hands_over_to_the_next_isr_member() {
        let p = part(&[1, 2, 3], &[1, 2, 3], 1);
        assert_eq!(desired(&p, |b| b != 1), Some((2, vec![2, 3])));
        // A follower out of the ISR is never elected.
        let p = part(&[1, 2, 3], &[1, 3], 1);
        assert_eq!(desired(&p, |b| b != 1), Some((3, vec![3])));
    }

    #[test]
    fn a_dead_follower_leaves_the_isr() {
        let p = part(&[1, 2, 3], &[1, 2, 3], 1);
        assert_eq!(desired(&p, |b| b != 3), Some((1, vec![1, 2])));
        assert_eq!(desired(&p, |_| true), None);
    }

    #[test]
    fn the_last_isr_member_stays_and_the_partition_goes_offline() {
        let p = part(&[1, 2, 3], &[2], 2);
        assert_eq!(desired(&p, |b| b == 1 || b == 3), Some((-1, vec![2])));
        // Unclean election is off: a live replica outside the ISR waits.
        let offline = part(&[1, 2, 3], &[2], -1);
        assert_eq!(desired(&offline, |b| b == 1 || b == 3), None);
        // The ISR member comes back: it leads again.
        assert_eq!(desired(&offline, |_| true), Some((2, vec![2])));
    }

    #[test]
    fn preferred_and_unclean_elections_answer_as_kafka() {
        let p = part(&[1, 2, 3], &[1, 2, 3], 2);
        assert_eq!(preferred(&p, |_| true), Ok(1));
        assert_eq!(
            preferred(&p, |b| b != 1),
            Err(ResponseError::PreferredLeaderNotAvailable)
        );
        let out = part(&[1, 2, 3], &[2, 3], 2);
        assert_eq!(
            preferred(&out, |_| true),
            Err(ResponseError::PreferredLeaderNotAvailable)
        );
        let led = part(&[1, 2, 3], &[1, 2], 1);
        assert_eq!(
            preferred(&led, |_| true),
            Err(ResponseError::ElectionNotNeeded)
        );
        assert_eq!(
            unclean(&led, |_| true),
            Err(ResponseError::ElectionNotNeeded)
        );
        let offline = part(&[1, 2, 3], &[1], -1);
        assert_eq!(unclean(&offline, |b| b == 3), Ok((3, vec![3])));
        assert_eq!(
            unclean(&offline, |_| false),
            Err(ResponseError::EligibleLeadersNotAvailable)
        );
        assert_eq!(
            unclean(&offline, |_| true),
            Ok((1, vec![1])),
            "a clean choice first"
        );
    }

    #[test]
    fn reconcile_bumps_the_leader_epoch_only_on_leader_changes() {
        let mut img = ClusterImage::default();
        let id = Uuid::new_v4();
        img.apply(&MetadataRecord::CreateTopic {
            name: "t".into(),
            topic_id: id,
            partitions: vec![crate::metadata::PartitionAssignment {
                partition: 0,
                replicas: vec![1, 2],
            }],
            configs: Default::default(),
        });
        for n in [1, 2] {
            img.last_applied = n as u64;
            img.apply(&MetadataRecord::RegisterBroker {
                node_id: n,
                incarnation_id: Uuid::new_v4(),
                endpoints: vec![],
                rack: None,
                features: Default::default(),
            });
        }
        // Both fenced after registering: offline, ISR kept.
        let recs = reconcile(&img);
        assert_eq!(recs.len(), 1);
        for r in &recs {
            img.apply(r);
        }
        let p = &img.topics["t"].partitions[0];
        assert_eq!(
            (p.leader, p.isr.clone(), p.leader_epoch),
            (-1, vec![1, 2], 1)
        );
        // Broker 2 becomes live: it leads; 1 stays in the ISR? No: it is
        // fenced, so it leaves.
        img.apply(&MetadataRecord::ChangeBroker {
            node_id: 2,
            epoch: 2,
            fenced: false,
            shutting_down: false,
        });
        for r in &reconcile(&img) {
            img.apply(r);
        }
        let p = &img.topics["t"].partitions[0];
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (2, vec![2], 2));
        assert!(reconcile(&img).is_empty(), "converged");
    }
}
