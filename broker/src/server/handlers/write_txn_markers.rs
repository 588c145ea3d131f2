//! WriteTxnMarkers (the transaction coordinator to a partition leader):
//! appends each marker to the partitions this broker leads and answers
//! once their in-sync replicas hold it (`txn::markers::write_local`), per
//! partition, as Kafka's `handleWriteTxnMarkersRequest`.

use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{ResponseKind, WriteTxnMarkersResponse};

use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};
use crate::txn::markers::{write_local, MarkerJob};

use super::topic_name;

/// Handles WriteTxnMarkers.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, WriteTxnMarkers);
    let writes = body.markers.iter().map(|m| {
        let state = state.clone();
        async move {
            let job = MarkerJob {
                producer_id: m.producer_id.0,
                producer_epoch: m.producer_epoch,
                commit: m.transaction_result,
                coordinator_epoch: m.coordinator_epoch,
            };
            let parts: Vec<(String, i32)> = m
                .topics
                .iter()
                .flat_map(|t| {
                    t.partition_indexes
                        .iter()
                        .map(|p| (t.name.as_str().to_string(), *p))
                })
                .collect();
            let results = write_local(&state, &job, &parts).await;
            let mut topics: Vec<WritableTxnMarkerTopicResult> = Vec::new();
            for ((t, p), code) in results {
                let r = WritableTxnMarkerPartitionResult::default()
                    .with_partition_index(p)
                    .with_error_code(code);
                match topics.last_mut() {
                    Some(last) if last.name.as_str() == t.as_str() => last.partitions.push(r),
                    _ => topics.push(
                        WritableTxnMarkerTopicResult::default()
                            .with_name(topic_name(&t))
                            .with_partitions(vec![r]),
                    ),
                }
            }
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics)
        }
    });
    let markers = futures::future::join_all(writes).await;
    Ok(Some(ResponseKind::WriteTxnMarkers(
        WriteTxnMarkersResponse::default().with_markers(markers),
    )))
}
