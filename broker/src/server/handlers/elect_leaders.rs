//! ElectLeaders (KIP-460): preferred or unclean leader elections, as
//! `kafka-leader-election` asks for them; decided by the active controller.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersResponse, ResponseKind};

use super::{sb, topic_name};
use crate::body;
use crate::broker::BrokerState;
use crate::controller::leaders::ElectionType;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles ElectLeaders.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, ElectLeaders);
    let kind = match body.election_type {
        0 => ElectionType::Preferred,
        1 => ElectionType::Unclean,
        other => {
            return Ok(Some(ResponseKind::ElectLeaders(
                ElectLeadersResponse::default()
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_replica_election_results(
                        body.topic_partitions
                            .unwrap_or_default()
                            .into_iter()
                            .map(|t| {
                                ReplicaElectionResult::default()
                                    .with_topic(t.topic)
                                    .with_partition_result(
                                        t.partitions
                                            .iter()
                                            .map(|p| {
                                                PartitionResult::default()
                                                    .with_partition_id(*p)
                                                    .with_error_code(
                                                        ResponseError::InvalidRequest.code(),
                                                    )
                                                    .with_error_message(Some(sb(&format!(
                                                        "unknown election type {other}"
                                                    ))))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
            )))
        }
    };
    let partitions = body.topic_partitions.map(|ts| {
        ts.into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect::<Vec<_>>()
    });
    let results = match state.controller.elect_leaders(kind, partitions).await {
        Ok(r) => r,
        Err(e) => {
            // Version 0 has no top-level error code: Kafka answers per
            // partition there; with none named, the answer is empty.
            let resp = ElectLeadersResponse::default();
            return Ok(Some(ResponseKind::ElectLeaders(if version >= 1 {
                resp.with_error_code(e.code)
            } else {
                resp
            })));
        }
    };
    state.catch_up().await;
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for (topic, p, r) in results {
        let pr = PartitionResult::default().with_partition_id(p);
        let pr = match r {
            Ok(()) => pr,
            Err(e) => pr
                .with_error_code(e.code)
                .with_error_message(e.message.as_deref().map(sb)),
        };
        by_topic.entry(topic).or_default().push(pr);
    }
    Ok(Some(ResponseKind::ElectLeaders(
        ElectLeadersResponse::default().with_replica_election_results(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    ReplicaElectionResult::default()
                        .with_topic(topic_name(&t))
                        .with_partition_result(ps)
                })
                .collect(),
        ),
    )))
}
