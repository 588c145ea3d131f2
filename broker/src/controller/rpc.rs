//! The typed protocol between brokers and the active controller: what a
//! broker asks ([`ControllerRequest`]) and what it gets back
//! ([`ControllerResponse`]). A request is served by the local [`Controller`]
//! when this node leads the metadata quorum, and otherwise travels to the
//! leader over the controller listener (`ControllerChannel`).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::leaders::{ElectionResult, ElectionType};
use super::liveness::{AlterIsr, Heartbeat, HeartbeatReply};
use super::reassignments::ReassignResult;
use super::{Controller, CreatedTopic, NewTopic};
use crate::error::ApiError;
use crate::metadata::features::{self, FeatureUpdate};
use crate::metadata::{MetadataRecord, PartitionImage, QuorumStatus};

/// A request for the active controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// Register (or re-register) a broker: a `RegisterBroker` record.
    RegisterBroker(MetadataRecord),
    /// The bootstrap records of a newly formatted cluster.
    BootstrapClusterDefaults,
    /// The bootstrap records of a newly formatted cluster, with the
    /// `metadata.version` level it was formatted at.
    BootstrapCluster {
        /// The `metadata.version` level.
        metadata_version: i16,
    },
    /// UnregisterBroker.
    UnregisterBroker {
        /// The broker.
        node_id: i32,
    },
    /// UpdateFeatures (all or nothing).
    UpdateFeatures {
        /// The changes.
        updates: Vec<FeatureUpdate>,
        /// Validate only.
        validate_only: bool,
    },
    /// CreateTopics.
    CreateTopics {
        /// The topics.
        topics: Vec<NewTopic>,
        /// Validate only.
        validate_only: bool,
    },
    /// DeleteTopics (one topic).
    DeleteTopic {
        /// The topic id.
        topic_id: Uuid,
    },
    /// CreatePartitions (one topic).
    CreatePartitions {
        /// Topic name.
        name: String,
        /// New total count.
        count: i32,
        /// Explicit assignments of the new partitions.
        assignments: Option<Vec<Vec<i32>>>,
        /// Validate only.
        validate_only: bool,
    },
    /// Topic config changes.
    AlterTopicConfigs {
        /// Topic name.
        name: String,
        /// Key to value, `None` deletes.
        changes: BTreeMap<String, Option<String>>,
        /// Legacy AlterConfigs replace semantics.
        replace: bool,
        /// Validate only.
        validate_only: bool,
    },
    /// Broker config changes (`node_id` `None`: the cluster default).
    AlterBrokerConfigs {
        /// The broker, or the cluster default.
        node_id: Option<i32>,
        /// Key to value, `None` deletes.
        changes: BTreeMap<String, Option<String>>,
        /// Legacy AlterConfigs replace semantics.
        replace: bool,
        /// Validate only.
        validate_only: bool,
    },
    /// Group config changes (KIP-848 GROUP resources).
    AlterGroupConfigs {
        /// The group id.
        group: String,
        /// Key to value, `None` deletes.
        changes: BTreeMap<String, Option<String>>,
        /// Legacy AlterConfigs replace semantics.
        replace: bool,
        /// Validate only.
        validate_only: bool,
    },
    /// A block of producer ids for a broker (Kafka's AllocateProducerIds).
    AllocateProducerIds {
        /// The broker.
        node_id: i32,
    },
    /// A broker's heartbeat (Kafka's BrokerHeartbeat).
    BrokerHeartbeat(Heartbeat),
    /// An ISR change from a partition leader (Kafka's AlterPartition).
    AlterPartition(AlterIsr),
    /// The quorum's state as its leader sees it (DescribeQuorum).
    DescribeQuorum,
    /// AddRaftVoter (KIP-853): promote an observing controller.
    AddRaftVoter {
        /// Its node id.
        voter_id: i32,
        /// Its metadata directory id.
        directory_id: Uuid,
        /// Its controller listeners, `(name, host, port)`.
        endpoints: Vec<(String, String, u16)>,
    },
    /// RemoveRaftVoter (KIP-853).
    RemoveRaftVoter {
        /// Its node id.
        voter_id: i32,
        /// Its metadata directory id.
        directory_id: Uuid,
    },
    /// AlterPartitionReassignments: `Some(target)` starts, `None` cancels.
    AlterReassignments(Vec<(String, i32, Option<Vec<i32>>)>),
    /// ElectLeaders (`None`: every partition).
    ElectLeaders {
        /// Preferred or unclean.
        kind: ElectionType,
        /// Topic and partition pairs.
        partitions: Option<Vec<(String, i32)>>,
    },
}

/// The active controller's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerResponse {
    /// Done (or refused) as a whole.
    Done(Result<(), ApiError>),
    /// Per-topic results of CreateTopics.
    CreateTopics(Vec<Result<CreatedTopic, ApiError>>),
    /// A producer id block `[first, first + size)`.
    ProducerIds(Result<(i64, i64), ApiError>),
    /// The answer to a heartbeat.
    Heartbeat(Result<HeartbeatReply, ApiError>),
    /// The partition as committed after an AlterPartition.
    Partition(Result<PartitionImage, ApiError>),
    /// The quorum's state.
    Quorum(Result<QuorumStatus, ApiError>),
    /// Per-partition election results.
    Elections(Vec<ElectionResult>),
    /// Per-partition reassignment results.
    Reassignments(Vec<ReassignResult>),
}

impl ControllerResponse {
    /// Whether the answer says this node is not (or no longer) the active
    /// controller, so the caller should find the leader and retry.
    pub fn is_not_controller(&self) -> bool {
        let nc = ResponseError::NotController.code();
        match self {
            Self::Done(Err(e))
            | Self::ProducerIds(Err(e))
            | Self::Heartbeat(Err(e))
            | Self::Partition(Err(e))
            | Self::Quorum(Err(e)) => e.code == nc,
            Self::CreateTopics(rs) => {
                !rs.is_empty() && rs.iter().all(|r| r.as_ref().is_err_and(|e| e.code == nc))
            }
            Self::Reassignments(rs) => {
                !rs.is_empty() && rs.iter().all(|r| r.2.as_ref().is_err_and(|e| e.code == nc))
            }
            Self::Elections(rs) => {
                !rs.is_empty() && rs.iter().all(|r| r.2.as_ref().is_err_and(|e| e.code == nc))
            }
            _ => false,
        }
    }
}

impl ControllerResponse {
    /// The answer that fails `req` as a whole with `e`, in the shape its
    /// caller expects (one error per topic for CreateTopics).
    pub fn failed(req: &ControllerRequest, e: ApiError) -> Self {
        match req {
            ControllerRequest::CreateTopics { topics, .. } => {
                Self::CreateTopics(topics.iter().map(|_| Err(e.clone())).collect())
            }
            ControllerRequest::AllocateProducerIds { .. } => Self::ProducerIds(Err(e)),
            ControllerRequest::BrokerHeartbeat(_) => Self::Heartbeat(Err(e)),
            ControllerRequest::AlterPartition(_) => Self::Partition(Err(e)),
            ControllerRequest::DescribeQuorum => Self::Quorum(Err(e)),
            ControllerRequest::AlterReassignments(ps) => Self::Reassignments(
                ps.iter()
                    .map(|(t, p, _)| (t.clone(), *p, Err(e.clone())))
                    .collect(),
            ),
            ControllerRequest::ElectLeaders { partitions, .. } => {
                Self::Elections(match partitions {
                    Some(ps) => ps
                        .iter()
                        .map(|(t, p)| (t.clone(), *p, Err(e.clone())))
                        .collect(),
                    // "Every partition": one entry with no topic carries the error.
                    None => vec![(String::new(), -1, Err(e))],
                })
            }
            _ => Self::Done(Err(e)),
        }
    }
}

impl Controller {
    /// Serves one request as the active controller. Validation runs only
    /// after this node, as leader, applied everything committed before.
    pub async fn handle(&self, req: ControllerRequest) -> ControllerResponse {
        if let Err(e) = self.quorum().ensure_caught_up().await {
            let e = super::quorum_error(e);
            return ControllerResponse::failed(&req, e);
        }
        match req {
            ControllerRequest::RegisterBroker(r) => {
                ControllerResponse::Done(self.register_broker(r).await)
            }
            ControllerRequest::BootstrapClusterDefaults => ControllerResponse::Done(
                self.bootstrap_cluster_defaults(features::LATEST_METADATA_VERSION)
                    .await,
            ),
            ControllerRequest::BootstrapCluster { metadata_version } => {
                ControllerResponse::Done(self.bootstrap_cluster_defaults(metadata_version).await)
            }
            ControllerRequest::UnregisterBroker { node_id } => {
                ControllerResponse::Done(self.unregister_broker(node_id).await)
            }
            ControllerRequest::UpdateFeatures {
                updates,
                validate_only,
            } => ControllerResponse::Done(self.update_features(updates, validate_only).await),
            ControllerRequest::CreateTopics {
                topics,
                validate_only,
            } => ControllerResponse::CreateTopics(self.create_topics(topics, validate_only).await),
            ControllerRequest::DeleteTopic { topic_id } => {
                ControllerResponse::Done(self.delete_topic(topic_id).await)
            }
            ControllerRequest::CreatePartitions {
                name,
                count,
                assignments,
                validate_only,
            } => ControllerResponse::Done(
                self.create_partitions(&name, count, assignments, validate_only)
                    .await,
            ),
            ControllerRequest::AlterTopicConfigs {
                name,
                changes,
                replace,
                validate_only,
            } => ControllerResponse::Done(
                self.alter_topic_configs(&name, changes, replace, validate_only)
                    .await,
            ),
            ControllerRequest::AlterBrokerConfigs {
                node_id,
                changes,
                replace,
                validate_only,
            } => ControllerResponse::Done(
                self.alter_broker_configs(node_id, changes, replace, validate_only)
                    .await,
            ),
            ControllerRequest::AlterGroupConfigs {
                group,
                changes,
                replace,
                validate_only,
            } => ControllerResponse::Done(
                self.alter_group_configs(&group, changes, replace, validate_only)
                    .await,
            ),
            ControllerRequest::AllocateProducerIds { node_id } => {
                ControllerResponse::ProducerIds(self.allocate_producer_ids(node_id).await)
            }
            ControllerRequest::BrokerHeartbeat(hb) => {
                ControllerResponse::Heartbeat(self.heartbeat(hb).await)
            }
            ControllerRequest::AlterPartition(req) => {
                ControllerResponse::Partition(self.alter_partition(req).await)
            }
            ControllerRequest::DescribeQuorum => {
                ControllerResponse::Quorum(Ok(self.quorum().status()))
            }
            ControllerRequest::AddRaftVoter {
                voter_id,
                directory_id,
                endpoints,
            } => ControllerResponse::Done(
                self.add_raft_voter(voter_id, directory_id, endpoints).await,
            ),
            ControllerRequest::RemoveRaftVoter {
                voter_id,
                directory_id,
            } => ControllerResponse::Done(self.remove_raft_voter(voter_id, directory_id).await),
            ControllerRequest::AlterReassignments(changes) => {
                ControllerResponse::Reassignments(self.alter_reassignments(changes).await)
            }
            ControllerRequest::ElectLeaders { kind, partitions } => {
                ControllerResponse::Elections(self.elect_leaders(kind, partitions).await)
            }
        }
    }
}
