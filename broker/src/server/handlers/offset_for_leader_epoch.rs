//! OffsetForLeaderEpoch (KIP-101, KIP-320): the end offset of a leader
//! epoch on the partition leader, so a consumer (or a follower) that saw
//! an older leadership can tell whether its position was truncated away.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles OffsetForLeaderEpoch.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, OffsetForLeaderEpoch);
    let image = state.image();
    let topics = body
        .topics
        .into_iter()
        .map(|t| {
            let name = t.topic.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let part = match state.replicas.leader_of(&image, &name, p.partition) {
                        Ok(part) => part,
                        Err(e) => return out.with_error_code(e.code),
                    };
                    if let Err(e) = part.check_leader_epoch(p.current_leader_epoch) {
                        return out.with_error_code(e.code);
                    }
                    let (epoch, end) = part.end_offset_for_epoch(p.leader_epoch);
                    out.with_leader_epoch(epoch).with_end_offset(end)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    Ok(Some(ResponseKind::OffsetForLeaderEpoch(
        OffsetForLeaderEpochResponse::default().with_topics(topics),
    )))
}
