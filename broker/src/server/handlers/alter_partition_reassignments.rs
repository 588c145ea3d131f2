//! AlterPartitionReassignments (KIP-455): start or cancel moving partition
//! replicas, as `kafka-reassign-partitions --execute`/`--cancel` ask. The
//! active controller adds the target replicas, and completes the move once
//! they are in sync.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsResponse, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles AlterPartitionReassignments.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, AlterPartitionReassignments);
    let image = state.image();
    let mut changes = Vec::new();
    let mut refused: Vec<(String, i32, i16, String)> = Vec::new();
    for t in &body.topics {
        let name = t.name.0.to_string();
        for p in &t.partitions {
            let target: Option<Vec<i32>> = p
                .replicas
                .as_ref()
                .map(|rs| rs.iter().map(|b| b.0).collect());
            // KIP-860: v1 lets the client forbid changing the replication factor.
            if version >= 1 && !body.allow_replication_factor_change {
                let current = image.topics.get(&name).and_then(|t| {
                    let pi = usize::try_from(p.partition_index)
                        .ok()
                        .and_then(|i| t.partitions.get(i))?;
                    Some(pi.replicas.len() - pi.adding_replicas.len())
                });
                if let (Some(target), Some(current)) = (&target, current) {
                    if target.len() != current {
                        refused.push((
                            name.clone(),
                            p.partition_index,
                            ResponseError::InvalidReplicationFactor.code(),
                            "The replication factor is changed from its current value, but allowReplicationFactorChange is false.".into(),
                        ));
                        continue;
                    }
                }
            }
            changes.push((name.clone(), p.partition_index, target));
        }
    }
    let results = if changes.is_empty() {
        Vec::new()
    } else {
        state.controller.alter_reassignments(changes).await
    };
    state.catch_up().await;
    let responses = body
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    if let Some((.., code, msg)) = refused
                        .iter()
                        .find(|x| x.0 == name && x.1 == p.partition_index)
                    {
                        return r.with_error_code(*code).with_error_message(Some(sb(msg)));
                    }
                    match results
                        .iter()
                        .find(|x| x.0 == name && x.1 == p.partition_index)
                    {
                        Some((_, _, Err(e))) => r
                            .with_error_code(e.code)
                            .with_error_message(e.message.as_deref().map(sb)),
                        _ => r,
                    }
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Ok(Some(ResponseKind::AlterPartitionReassignments(
        AlterPartitionReassignmentsResponse::default()
            .with_allow_replication_factor_change(body.allow_replication_factor_change)
            .with_responses(responses),
    )))
}
