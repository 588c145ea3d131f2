//! Partition reassignments (KIP-455): AlterPartitionReassignments to start or cancel
//! moving replicas, ListPartitionReassignments to see the moves still in progress.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest,
};

use crate::client::{message, topic_name};
use crate::error::AdminError;
use crate::AdminClient;

/// Per partition (topic, index), the outcome of its reassignment request: Kafka's
/// per-partition error (e.g. INVALID_REPLICA_ASSIGNMENT (39), UNKNOWN_TOPIC_OR_PARTITION
/// (3), NO_REASSIGNMENT_IN_PROGRESS (85) for a cancel with nothing to cancel).
pub type ReassignmentResults = BTreeMap<(String, i32), Result<(), AdminError>>;

/// One partition (topic, index) and its target replicas (`None`: cancel its
/// reassignment in progress).
pub type ReassignmentTarget = ((String, i32), Option<Vec<i32>>);

/// Targets grouped by topic.
type ByTopic<'a> = BTreeMap<&'a str, Vec<(i32, &'a Option<Vec<i32>>)>>;

/// A reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    /// The partition's current replica set (old and new replicas while moving).
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
}

/// Per partition (topic, index), its reassignment in progress.
pub type OngoingReassignments = BTreeMap<(String, i32), OngoingReassignment>;

impl AdminClient {
    /// Asks the controller (through any broker) to move each partition to its target
    /// replica list (the first is the preferred leader), or, for a `None` target, to
    /// cancel its reassignment in progress. The call returns once the controller
    /// accepted the moves; they complete when the new replicas are in sync (see
    /// [`AdminClient::list_partition_reassignments`]). A request-level error (e.g.
    /// NOT_CONTROLLER, CLUSTER_AUTHORIZATION_FAILED) is returned as the `Err`; each
    /// partition's own error is in its result.
    pub async fn alter_partition_reassignments(
        &self,
        targets: &[ReassignmentTarget],
    ) -> Result<ReassignmentResults, AdminError> {
        let mut by_topic: ByTopic<'_> = BTreeMap::new();
        for ((t, p), replicas) in targets {
            by_topic.entry(t).or_default().push((*p, replicas));
        }
        if by_topic.is_empty() {
            return Ok(ReassignmentResults::new());
        }
        let timeout_ms = self.timeout_ms();
        let (_, r) = self
            .call(0, |_| {
                Ok(AlterPartitionReassignmentsRequest::default()
                    .with_timeout_ms(timeout_ms)
                    .with_allow_replication_factor_change(true)
                    .with_topics(
                        by_topic
                            .iter()
                            .map(|(t, ps)| {
                                ReassignableTopic::default()
                                    .with_name(topic_name(t))
                                    .with_partitions(
                                        ps.iter()
                                            .map(|(p, rs)| {
                                                ReassignablePartition::default()
                                                    .with_partition_index(*p)
                                                    .with_replicas(rs.as_ref().map(|rs| {
                                                        rs.iter().map(|b| BrokerId(*b)).collect()
                                                    }))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ))
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka(
                "AlterPartitionReassignments",
                r.error_code,
                message(r.error_message),
            ));
        }
        let mut out = ReassignmentResults::new();
        for t in r.responses {
            for p in t.partitions {
                let result = match p.error_code {
                    0 => Ok(()),
                    code => Err(AdminError::kafka(
                        "AlterPartitionReassignments",
                        code,
                        message(p.error_message),
                    )),
                };
                out.insert((t.name.0.to_string(), p.partition_index), result);
            }
        }
        for ((t, p), _) in targets {
            out.entry((t.clone(), *p)).or_insert_with(|| {
                Err(AdminError::Protocol(format!(
                    "AlterPartitionReassignments response has no result for {t}-{p}"
                )))
            });
        }
        Ok(out)
    }

    /// The reassignments in progress, of every partition (`None`) or of the given
    /// ones. A partition that is not moving (or does not exist) is absent.
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<OngoingReassignments, AdminError> {
        let topics = partitions.map(|ps| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in ps {
                by_topic.entry(t).or_default().push(*p);
            }
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    ListPartitionReassignmentsTopics::default()
                        .with_name(topic_name(t))
                        .with_partition_indexes(ps)
                })
                .collect::<Vec<_>>()
        });
        let timeout_ms = self.timeout_ms();
        let (_, r) = self
            .call(0, |_| {
                Ok(ListPartitionReassignmentsRequest::default()
                    .with_timeout_ms(timeout_ms)
                    .with_topics(topics.clone()))
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka(
                "ListPartitionReassignments",
                r.error_code,
                message(r.error_message),
            ));
        }
        let ids = |v: Vec<BrokerId>| v.into_iter().map(|b| b.0).collect::<Vec<_>>();
        let mut out = OngoingReassignments::new();
        for t in r.topics {
            for p in t.partitions {
                out.insert(
                    (t.name.0.to_string(), p.partition_index),
                    OngoingReassignment {
                        replicas: ids(p.replicas),
                        adding: ids(p.adding_replicas),
                        removing: ids(p.removing_replicas),
                    },
                );
            }
        }
        Ok(out)
    }
}
