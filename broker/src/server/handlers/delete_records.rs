//! DeleteRecords: advance a partition's log start offset.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles DeleteRecords.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, DeleteRecords);
    let image = state.image();
    let mut topics = Vec::with_capacity(body.topics.len());
    for t in body.topics {
        let name = t.name.0.to_string();
        let parts = t
            .partitions
            .iter()
            .map(|p| {
                let res = DeleteRecordsPartitionResult::default()
                    .with_partition_index(p.partition_index)
                    .with_low_watermark(-1);
                let part = match state.replicas.leader_of(&image, &name, p.partition_index) {
                    Ok(part) => part,
                    Err(e) => return res.with_error_code(e.code),
                };
                let hw = part.high_watermark();
                // -1 means "up to the high watermark".
                let target = if p.offset == -1 { hw } else { p.offset };
                if target < 0 || target > hw {
                    return res.with_error_code(ResponseError::OffsetOutOfRange.code());
                }
                match part.with_log(|l| l.delete_records_before(target)) {
                    Ok(low) => res.with_low_watermark(low),
                    Err(e) => res.with_error_code(e.code()),
                }
            })
            .collect();
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(parts),
        );
    }
    Ok(Some(ResponseKind::DeleteRecords(
        DeleteRecordsResponse::default().with_topics(topics),
    )))
}
