//! ListPartitionReassignments (KIP-455): the reassignments in progress,
//! from the cluster image.

use std::sync::Arc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{ListPartitionReassignmentsResponse, ResponseKind};

use super::{broker, topic_name};
use crate::body;
use crate::broker::BrokerState;
use crate::metadata::PartitionImage;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles ListPartitionReassignments.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

fn ongoing(index: i32, p: &PartitionImage) -> Option<OngoingPartitionReassignment> {
    if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
        return None;
    }
    let ids = |v: &[i32]| v.iter().copied().map(broker).collect();
    Some(
        OngoingPartitionReassignment::default()
            .with_partition_index(index)
            .with_replicas(ids(&p.replicas))
            .with_adding_replicas(ids(&p.adding_replicas))
            .with_removing_replicas(ids(&p.removing_replicas)),
    )
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, ListPartitionReassignments);
    state.catch_up().await;
    let image = state.image();
    let topics: Vec<OngoingTopicReassignment> = match body.topics {
        None => image
            .topics
            .values()
            .filter_map(|t| {
                let ps: Vec<_> = t
                    .partitions
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| ongoing(i as i32, p))
                    .collect();
                (!ps.is_empty()).then(|| {
                    OngoingTopicReassignment::default()
                        .with_name(topic_name(&t.name))
                        .with_partitions(ps)
                })
            })
            .collect(),
        Some(wanted) => wanted
            .into_iter()
            .filter_map(|w| {
                let t = image.topics.get(w.name.0.as_str())?;
                let ps: Vec<_> = w
                    .partition_indexes
                    .iter()
                    .filter_map(|&i| {
                        let p = usize::try_from(i).ok().and_then(|x| t.partitions.get(x))?;
                        ongoing(i, p)
                    })
                    .collect();
                (!ps.is_empty()).then(|| {
                    OngoingTopicReassignment::default()
                        .with_name(w.name)
                        .with_partitions(ps)
                })
            })
            .collect(),
    };
    Ok(Some(ResponseKind::ListPartitionReassignments(
        ListPartitionReassignmentsResponse::default().with_topics(topics),
    )))
}
