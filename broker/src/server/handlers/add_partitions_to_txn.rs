//! AddPartitionsToTxn, the client form (v0–v3): adds partitions to a
//! transactional id's running transaction on its coordinator
//! (`txn::TxnCoordinator::add_partitions`), as Kafka's `KafkaApis` and
//! `TransactionCoordinator.handleAddPartitionsToTransaction` answer it.
//!
//! Served (and advertised) only once `txn::TRANSACTIONS_ENABLED`; the
//! broker-to-broker verification form (v4+, KIP-890) is not implemented.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles AddPartitionsToTxn.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

/// Adds `wanted` to `tid`'s transaction for a client request of `version`
/// (AddPartitionsToTxn v0–3, AddOffsetsToTxn): INVALID_REQUEST for an empty
/// transactional id, else the coordinator's answer, with PRODUCER_FENCED
/// told as INVALID_PRODUCER_EPOCH before v2 (KIP-588).
pub(super) async fn add_to_txn(
    state: &Arc<BrokerState>,
    tid: &str,
    producer_id: i64,
    producer_epoch: i16,
    wanted: &BTreeSet<(String, i32)>,
    version: i16,
) -> i16 {
    if tid.is_empty() {
        return ResponseError::InvalidRequest.code();
    }
    match state
        .txns
        .add_partitions(state, tid, producer_id, producer_epoch, wanted)
        .await
    {
        Ok(()) => 0,
        Err(c) if version < 2 && c == ResponseError::ProducerFenced.code() => {
            ResponseError::InvalidProducerEpoch.code()
        }
        Err(c) => c,
    }
}

/// The code every partition answers, or per partition the unknown ones
/// (UNKNOWN_TOPIC_OR_PARTITION) and the rest (OPERATION_NOT_ATTEMPTED).
async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, AddPartitionsToTxn);
    let tid = body.v3_and_below_transactional_id.as_str().to_string();
    let image = state.image();
    let mut wanted: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut unknown: BTreeSet<(String, i32)> = BTreeSet::new();
    for t in &body.v3_and_below_topics {
        let name = t.name.as_str().to_string();
        let count = image.topics.get(&name).map(|ti| ti.partitions.len());
        for p in &t.partitions {
            let key = (name.clone(), *p);
            if count.is_some_and(|c| *p >= 0 && (*p as usize) < c) {
                wanted.insert(key);
            } else {
                unknown.insert(key);
            }
        }
    }
    // None: some partitions are unknown (answered per partition).
    let common: Option<i16> = if !unknown.is_empty() {
        None
    } else {
        let code = add_to_txn(
            &state,
            &tid,
            body.v3_and_below_producer_id.0,
            body.v3_and_below_producer_epoch,
            &wanted,
            version,
        )
        .await;
        Some(code)
    };
    let code_of = |k: &(String, i32)| match common {
        Some(code) => code,
        None if unknown.contains(k) => ResponseError::UnknownTopicOrPartition.code(),
        None => ResponseError::OperationNotAttempted.code(),
    };
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for t in &body.v3_and_below_topics {
        let name = t.name.as_str().to_string();
        let results = t
            .partitions
            .iter()
            .map(|p| {
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(*p)
                    .with_partition_error_code(code_of(&(name.clone(), *p)))
            })
            .collect();
        topics.push(
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results),
        );
    }
    Ok(Some(ResponseKind::AddPartitionsToTxn(
        AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics),
    )))
}
