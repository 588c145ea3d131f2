//! The broker's way to the active controller: a channel that follows the
//! metadata quorum's leader. A request is served by the local
//! [`Controller`] when this node leads, and otherwise forwarded over the
//! controller listener to the leader; on NOT_CONTROLLER, an unreachable
//! leader or no leader at all, it waits for the leadership to settle and
//! retries until its deadline (then REQUEST_TIMED_OUT, as a Kafka broker
//! answers when it cannot reach the controller).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use tokio::time::Instant;
use tracing::{debug, warn};
use uuid::Uuid;

use super::leaders::{ElectionResult, ElectionType};
use super::liveness::{AlterIsr, Heartbeat, HeartbeatReply};
use super::reassignments::ReassignResult;
use super::rpc::{ControllerRequest, ControllerResponse};
use super::{Controller, CreatedTopic, NewTopic};
use crate::error::ApiError;
use crate::metadata::{MetadataQuorum, MetadataRecord, PartitionImage, QuorumStatus};

/// How long one forwarded request may take on the wire.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// The least time one forwarded attempt gets, even at the caller's deadline.
const MIN_ATTEMPT: Duration = Duration::from_millis(500);

/// A handle every broker uses to reach the active controller.
#[derive(Clone)]
pub struct ControllerChannel {
    node_id: i32,
    quorum: MetadataQuorum,
    local: Arc<Controller>,
    deadline: Duration,
}

impl ControllerChannel {
    /// A channel over this node's quorum member and controller, and
    /// installs the controller as the handler of requests forwarded here.
    pub fn new(node_id: i32, quorum: MetadataQuorum, local: Arc<Controller>) -> Self {
        let served = local.clone();
        quorum.set_forward_handler(Arc::new(move |v| {
            let c = served.clone();
            Box::pin(async move {
                let resp = match serde_json::from_value::<ControllerRequest>(v) {
                    Ok(req) => c.handle(req).await,
                    Err(e) => ControllerResponse::Done(Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        format!("malformed controller request: {e}"),
                    ))),
                };
                serde_json::to_value(&resp).unwrap_or(serde_json::Value::Null)
            })
        }));
        Self {
            node_id,
            quorum,
            local,
            deadline: Duration::from_secs(30),
        }
    }

    /// This node's controller (active only while it leads the quorum).
    pub fn local(&self) -> &Arc<Controller> {
        &self.local
    }

    /// The quorum.
    pub fn quorum(&self) -> &MetadataQuorum {
        &self.quorum
    }

    /// Sends `req` to the active controller, following the leader.
    pub async fn call(&self, req: ControllerRequest) -> ControllerResponse {
        self.call_within(req, self.deadline).await
    }

    /// As [`Self::call`], giving up after `deadline`.
    pub async fn call_within(
        &self,
        req: ControllerRequest,
        deadline: Duration,
    ) -> ControllerResponse {
        let until = Instant::now() + deadline;
        let mut last = String::from("no active controller");
        loop {
            match self.quorum.leader() {
                Some(l) if l == self.node_id => {
                    let resp = self.local.handle(req.clone()).await;
                    if !resp.is_not_controller() {
                        return resp;
                    }
                    last = "lost the controller role".into();
                }
                Some(l) => {
                    let payload = match serde_json::to_value(&req) {
                        Ok(p) => p,
                        Err(e) => return timed_out(&req, &format!("cannot encode: {e}")),
                    };
                    // Bounded by the caller's deadline: a leader that
                    // hangs (paused, or its port still accepting while the
                    // process stops) must not hold a heartbeat past the
                    // broker's session while another node takes over.
                    let left = until.saturating_duration_since(Instant::now());
                    let timeout = left.clamp(MIN_ATTEMPT, RPC_TIMEOUT);
                    match self.quorum.forward(l, payload, timeout).await {
                        Ok(Some(v)) => match serde_json::from_value::<ControllerResponse>(v) {
                            Ok(resp) if !resp.is_not_controller() => return resp,
                            Ok(_) => last = format!("node {l} is no longer the controller"),
                            Err(e) => last = format!("bad answer from controller {l}: {e}"),
                        },
                        Ok(None) => last = format!("controller {l} is not serving yet"),
                        Err(e) => last = e.to_string(),
                    }
                }
                None => {}
            }
            if Instant::now() >= until {
                warn!(error = %last, "giving up on the active controller");
                return timed_out(&req, &last);
            }
            debug!(reason = %last, "retrying the controller request");
            self.quorum.leader_changed(Duration::from_millis(200)).await;
        }
    }

    /// Registers a broker.
    pub async fn register_broker(&self, record: MetadataRecord) -> Result<(), ApiError> {
        done(self.call(ControllerRequest::RegisterBroker(record)).await)
    }

    /// The bootstrap records of a newly formatted cluster.
    pub async fn bootstrap_cluster_defaults(&self, metadata_version: i16) -> Result<(), ApiError> {
        done(
            self.call(ControllerRequest::BootstrapCluster { metadata_version })
                .await,
        )
    }

    /// UnregisterBroker.
    pub async fn unregister_broker(&self, node_id: i32) -> Result<(), ApiError> {
        done(
            self.call(ControllerRequest::UnregisterBroker { node_id })
                .await,
        )
    }

    /// UpdateFeatures (all or nothing).
    pub async fn update_features(
        &self,
        updates: Vec<crate::metadata::features::FeatureUpdate>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        done(
            self.call(ControllerRequest::UpdateFeatures {
                updates,
                validate_only,
            })
            .await,
        )
    }

    /// CreateTopics.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<CreatedTopic, ApiError>> {
        let n = topics.len();
        match self
            .call(ControllerRequest::CreateTopics {
                topics,
                validate_only,
            })
            .await
        {
            ControllerResponse::CreateTopics(r) if r.len() == n => r,
            ControllerResponse::Done(Err(e)) => (0..n).map(|_| Err(e.clone())).collect(),
            other => (0..n).map(|_| Err(unexpected(&other))).collect(),
        }
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, topic_id: Uuid) -> Result<(), ApiError> {
        done(self.call(ControllerRequest::DeleteTopic { topic_id }).await)
    }

    /// CreatePartitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        done(
            self.call(ControllerRequest::CreatePartitions {
                name: name.to_string(),
                count,
                assignments,
                validate_only,
            })
            .await,
        )
    }

    /// Topic config changes.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: BTreeMap<String, Option<String>>,
        replace: bool,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        done(
            self.call(ControllerRequest::AlterTopicConfigs {
                name: name.to_string(),
                changes,
                replace,
                validate_only,
            })
            .await,
        )
    }

    /// Broker config changes.
    pub async fn alter_broker_configs(
        &self,
        node_id: Option<i32>,
        changes: BTreeMap<String, Option<String>>,
        replace: bool,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        done(
            self.call(ControllerRequest::AlterBrokerConfigs {
                node_id,
                changes,
                replace,
                validate_only,
            })
            .await,
        )
    }

    /// Group config changes.
    pub async fn alter_group_configs(
        &self,
        group: &str,
        changes: BTreeMap<String, Option<String>>,
        replace: bool,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        done(
            self.call(ControllerRequest::AlterGroupConfigs {
                group: group.to_string(),
                changes,
                replace,
                validate_only,
            })
            .await,
        )
    }

    /// A block of producer ids for `node_id`: `(first, size)`.
    pub async fn allocate_producer_ids(&self, node_id: i32) -> Result<(i64, i64), ApiError> {
        match self
            .call(ControllerRequest::AllocateProducerIds { node_id })
            .await
        {
            ControllerResponse::ProducerIds(r) => r,
            ControllerResponse::Done(Err(e)) => Err(e),
            other => Err(unexpected(&other)),
        }
    }
}

impl ControllerChannel {
    /// A heartbeat, given up after `deadline` (the next one follows soon).
    pub async fn heartbeat(
        &self,
        hb: Heartbeat,
        deadline: Duration,
    ) -> Result<HeartbeatReply, ApiError> {
        match self
            .call_within(ControllerRequest::BrokerHeartbeat(hb), deadline)
            .await
        {
            ControllerResponse::Heartbeat(r) => r,
            ControllerResponse::Done(Err(e)) => Err(e),
            other => Err(unexpected(&other)),
        }
    }

    /// AlterPartitionReassignments.
    pub async fn alter_reassignments(
        &self,
        changes: Vec<(String, i32, Option<Vec<i32>>)>,
    ) -> Vec<ReassignResult> {
        let keys: Vec<(String, i32)> = changes.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        match self
            .call(ControllerRequest::AlterReassignments(changes))
            .await
        {
            ControllerResponse::Reassignments(r) => r,
            other => {
                let e = match other {
                    ControllerResponse::Done(Err(e)) => e,
                    o => unexpected(&o),
                };
                keys.into_iter()
                    .map(|(t, p)| (t, p, Err(e.clone())))
                    .collect()
            }
        }
    }

    /// ElectLeaders; a whole-request failure comes back as `Err`.
    pub async fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<ElectionResult>, ApiError> {
        let all = partitions.is_none();
        match self
            .call(ControllerRequest::ElectLeaders { kind, partitions })
            .await
        {
            ControllerResponse::Elections(r) => {
                if all {
                    // A failure of the whole request for "every partition".
                    if let Some((_, _, Err(e))) = r.first().filter(|x| x.0.is_empty()) {
                        return Err(e.clone());
                    }
                }
                Ok(r)
            }
            ControllerResponse::Done(Err(e)) => Err(e),
            other => Err(unexpected(&other)),
        }
    }

    /// DescribeQuorum, answered by the quorum's leader.
    pub async fn describe_quorum(&self) -> Result<QuorumStatus, ApiError> {
        match self.call(ControllerRequest::DescribeQuorum).await {
            ControllerResponse::Quorum(r) => r,
            ControllerResponse::Done(Err(e)) => Err(e),
            other => Err(unexpected(&other)),
        }
    }

    /// AddRaftVoter, on the active controller.
    pub async fn add_raft_voter(
        &self,
        voter_id: i32,
        directory_id: Uuid,
        endpoints: Vec<(String, String, u16)>,
    ) -> Result<(), ApiError> {
        done(
            self.call(ControllerRequest::AddRaftVoter {
                voter_id,
                directory_id,
                endpoints,
            })
            .await,
        )
    }

    /// RemoveRaftVoter, on the active controller.
    pub async fn remove_raft_voter(
        &self,
        voter_id: i32,
        directory_id: Uuid,
    ) -> Result<(), ApiError> {
        done(
            self.call(ControllerRequest::RemoveRaftVoter {
                voter_id,
                directory_id,
            })
            .await,
        )
    }

    /// AlterPartition: returns the partition as committed.
    pub async fn alter_partition(&self, req: AlterIsr) -> Result<PartitionImage, ApiError> {
        match self
            .call_within(
                ControllerRequest::AlterPartition(req),
                Duration::from_secs(10),
            )
            .await
        {
            ControllerResponse::Partition(r) => r,
            ControllerResponse::Done(Err(e)) => Err(e),
            other => Err(unexpected(&other)),
        }
    }
}

fn done(r: ControllerResponse) -> Result<(), ApiError> {
    match r {
        ControllerResponse::Done(r) => r,
        other => Err(unexpected(&other)),
    }
}

fn unexpected(r: &ControllerResponse) -> ApiError {
    ApiError::new(
        ResponseError::UnknownServerError,
        format!("unexpected controller answer: {r:?}"),
    )
}

fn timed_out(req: &ControllerRequest, why: &str) -> ControllerResponse {
    ControllerResponse::failed(
        req,
        ApiError::new(
            ResponseError::RequestTimedOut,
            format!("the active controller could not be reached: {why}"),
        ),
    )
}
