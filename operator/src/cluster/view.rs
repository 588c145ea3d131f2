//! What the reconciler observed, as plain values: the pods (from the API server) and
//! the cluster as Kafka reports it (over the Admin API). The pure decisions (`roll`,
//! `status`) read these.

use super::render::Pool;
use std::collections::{BTreeMap, BTreeSet};

/// One broker or controller pod as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    /// Its pool.
    pub pool: Pool,
    /// Ordinal in its StatefulSet.
    pub ordinal: i32,
    /// Kafka node id ([`Pool::node_id`] of the ordinal).
    pub node_id: i32,
    /// Pod name.
    pub name: String,
    /// Pod Ready condition.
    pub ready: bool,
    /// Its StatefulSet revision (`controller-revision-hash` label).
    pub revision: Option<String>,
    /// It runs an older pod template than its StatefulSet's (or, while reconciliation is
    /// paused, than the one the spec renders): it needs a restart.
    pub outdated: bool,
    /// Being deleted.
    pub terminating: bool,
    /// The image its broker container runs, as the kubelet reports it
    /// (`status.containerStatuses[broker].image`); `None` until reported.
    pub image: Option<String>,
    /// The node is a KRaft voter (a dedicated controller, or a combined broker).
    pub voter: bool,
    /// The node hosts partitions (a broker, combined or not).
    pub broker: bool,
}

/// One partition's replica state with its topic's `min.insync.replicas`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Leader, if any.
    pub leader: Option<i32>,
    /// Assigned replicas; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// The topic's effective `min.insync.replicas`.
    pub min_isr: i32,
}

impl PartitionView {
    /// `topic-partition`, as Kafka's tools print it.
    pub fn name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
    /// Fewer in-sync replicas than `min.insync.replicas`, or no leader: acks=all
    /// produce to it fails.
    pub fn under_min_isr(&self) -> bool {
        self.leader.is_none() || (self.isr.len() as i32) < self.min_isr
    }
}

/// The partitions as far as they were read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partitions {
    /// Read.
    Known(Vec<PartitionView>),
    /// The brokers answered but could not describe every topic, or their configs: the
    /// state is unknown (why), and no restart may rely on it.
    Unknown(String),
}

/// The KRaft quorum (DescribeQuorum).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct QuorumView {
    /// The active controller (quorum leader).
    pub leader: Option<i32>,
    /// The voters, each with its log end offset.
    pub voters: BTreeMap<i32, i64>,
    /// The metadata log's high watermark.
    pub high_watermark: i64,
    /// The voters' metadata directory ids (KIP-853; none for static voters).
    pub directories: BTreeMap<i32, uuid::Uuid>,
    /// The observers that follow the metadata log: log end offset and directory id
    /// (a combined node of a dynamic quorum before it is a voter).
    pub observers: BTreeMap<i32, (i64, Option<uuid::Uuid>)>,
}

/// How far behind the high watermark a voter may be and still count as caught up.
pub const VOTER_MAX_LAG: i64 = 1000;

impl QuorumView {
    /// Voters whose log end is within [`VOTER_MAX_LAG`] of the high watermark.
    pub fn caught_up_voters(&self) -> BTreeSet<i32> {
        self.voters
            .iter()
            .filter(|(_, end)| **end >= 0 && **end + VOTER_MAX_LAG >= self.high_watermark)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// What the brokers say, queried over the Kafka protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaView {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Registered, unfenced broker ids (DescribeCluster lists only those).
    pub brokers: BTreeSet<i32>,
    /// Their `broker.rack`, for the brokers that set one.
    pub racks: BTreeMap<i32, String>,
    /// The quorum, or why it could not be described.
    pub quorum: Result<QuorumView, String>,
    /// The partitions with their ISR and min.insync.replicas.
    pub partitions: Partitions,
}

impl KafkaView {
    /// Partitions `broker` has a replica of but is not in the ISR of, when known.
    pub fn out_of_sync(&self, broker: i32) -> Option<Vec<&PartitionView>> {
        match &self.partitions {
            Partitions::Known(ps) => Some(
                ps.iter()
                    .filter(|p| p.replicas.contains(&broker) && !p.isr.contains(&broker))
                    .collect(),
            ),
            Partitions::Unknown(_) => None,
        }
    }

    /// How many partitions are under their `min.insync.replicas`, when known.
    pub fn under_min_isr(&self) -> Option<usize> {
        match &self.partitions {
            Partitions::Known(ps) => Some(ps.iter().filter(|p| p.under_min_isr()).count()),
            Partitions::Unknown(_) => None,
        }
    }

    /// Partitions whose preferred leader (first replica) is registered and in the ISR
    /// but does not lead: what a preferred leader election would move.
    pub fn preferred_leader_imbalance(&self) -> Vec<(String, i32)> {
        match &self.partitions {
            Partitions::Known(ps) => ps
                .iter()
                .filter(|p| {
                    p.replicas.first().is_some_and(|pref| {
                        p.leader != Some(*pref)
                            && p.isr.contains(pref)
                            && self.brokers.contains(pref)
                    })
                })
                .map(|p| (p.topic.clone(), p.partition))
                .collect(),
            Partitions::Unknown(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A partition 0 of `topic` (shared with `roll`'s tests).
    pub(crate) fn part(
        topic: &str,
        leader: Option<i32>,
        replicas: &[i32],
        isr: &[i32],
        min_isr: i32,
    ) -> PartitionView {
        PartitionView {
            topic: topic.into(),
            partition: 0,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            min_isr,
        }
    }

    fn view(parts: Vec<PartitionView>) -> KafkaView {
        KafkaView {
            cluster_id: None,
            brokers: [0, 1, 2].into(),
            racks: BTreeMap::new(),
            quorum: Ok(QuorumView::default()),
            partitions: Partitions::Known(parts),
        }
    }

    #[test]
    fn out_of_sync_under_min_isr_and_imbalance() {
        let v = view(vec![
            part("a", Some(0), &[0, 1, 2], &[0, 1, 2], 2),
            part("b", Some(1), &[0, 1, 2], &[1, 2], 2),
            part("c", Some(1), &[2, 1, 0], &[1], 2),
            part("d", None, &[1], &[], 1),
        ]);
        assert_eq!(
            v.out_of_sync(0)
                .expect("known")
                .iter()
                .map(|p| p.topic.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert_eq!(v.under_min_isr(), Some(2), "c (1 < 2) and d (no leader)");
        // b's preferred leader 0 is not in the ISR; c's (2) neither: nothing to elect.
        assert!(v.preferred_leader_imbalance().is_empty());
        let v = view(vec![part("e", Some(1), &[0, 1, 2], &[0, 1, 2], 2)]);
        assert_eq!(v.preferred_leader_imbalance(), [("e".to_string(), 0)]);
        let mut v = view(vec![]);
        v.partitions = Partitions::Unknown("boom".into());
        assert_eq!(v.out_of_sync(0), None);
        assert_eq!(v.under_min_isr(), None);
    }

    #[test]
    fn caught_up_voters() {
        let q = QuorumView {
            leader: Some(1000),
            voters: [(1000, 5000), (1001, 4500), (1002, 100), (1003, -1)].into(),
            high_watermark: 5000,
            ..Default::default()
        };
        assert_eq!(q.caught_up_voters(), [1000, 1001].into());
    }
}
