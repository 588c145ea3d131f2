//! AddPartitionsToTxn, the client form (v0–v3): adds partitions to a
//! transactional id's running transaction on its coordinator
//! (`txn::TxnCoordinator::add_partitions`), as Kafka's `KafkaApis` and
//! `TransactionCoordinator.handleAddPartitionsToTransaction` answer it.
//!
//! The broker form (v4+, KIP-890): a batch of transactions, each verified
//! (VerifyOnly, `txn::verify`) or added; partitions that do not exist
//! fail their transaction (UNKNOWN_TOPIC_OR_PARTITION, the others
//! OPERATION_NOT_ATTEMPTED), as Kafka's `handleAddPartitionsToTxnRequest`.
//!
//! Served (and advertised) only once `txn::TRANSACTIONS_ENABLED`.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};
use crate::txn::state::TxnPartition;

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
        .add_partitions(
            state,
            tid,
            producer_id,
            producer_epoch,
            wanted,
            // AddPartitionsToTxn v5 comes from transaction.version 2.
            if version >= 5 { 2 } else { 0 },
        )
        .await
    {
        Ok(()) => 0,
        Err(c) if version < 2 && c == ResponseError::ProducerFenced.code() => {
            ResponseError::InvalidProducerEpoch.code()
        }
        Err(c) => c,
    }
}

/// The partitions of `topics` that exist and those that do not.
fn split_known(
    state: &BrokerState,
    topics: &[AddPartitionsToTxnTopic],
) -> (BTreeSet<TxnPartition>, BTreeSet<TxnPartition>) {
    let image = state.image();
    let mut wanted: BTreeSet<TxnPartition> = BTreeSet::new();
    let mut unknown: BTreeSet<TxnPartition> = BTreeSet::new();
    for t in topics {
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
    (wanted, unknown)
}

/// `topics`' partitions with the code `code_of` gives each.
fn results(
    topics: &[AddPartitionsToTxnTopic],
    code_of: impl Fn(&(String, i32)) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            let name = t.name.as_str().to_string();
            let by_partition = t
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code_of(&(name.clone(), *p)))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(by_partition)
        })
        .collect()
}

/// The broker form (v4+): every transaction of the batch, verified or
/// added.
async fn run_batch(
    state: Arc<BrokerState>,
    version: i16,
    body: kafka_protocol::messages::AddPartitionsToTxnRequest,
) -> Result<Option<ResponseKind>, String> {
    let mut out = Vec::with_capacity(body.transactions.len());
    for txn in &body.transactions {
        let tid = txn.transactional_id.as_str().to_string();
        let (wanted, unknown) = split_known(&state, &txn.topics);
        let topic_results = if !unknown.is_empty() {
            results(&txn.topics, |k| {
                if unknown.contains(k) {
                    ResponseError::UnknownTopicOrPartition.code()
                } else {
                    ResponseError::OperationNotAttempted.code()
                }
            })
        } else if txn.verify_only {
            let answer = state
                .txns
                .verify_partitions(&state, &tid, txn.producer_id.0, txn.producer_epoch, &wanted)
                .await;
            results(&txn.topics, |k| match &answer {
                Ok(codes) => codes.get(k).copied().unwrap_or(0),
                Err(code) => *code,
            })
        } else {
            let code = add_to_txn(
                &state,
                &tid,
                txn.producer_id.0,
                txn.producer_epoch,
                &wanted,
                version,
            )
            .await;
            results(&txn.topics, |_| code)
        };
        out.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id.clone())
                .with_topic_results(topic_results),
        );
    }
    Ok(Some(ResponseKind::AddPartitionsToTxn(
        AddPartitionsToTxnResponse::default().with_results_by_transaction(out),
    )))
}

/// The code every partition answers, or per partition the unknown ones
/// (UNKNOWN_TOPIC_OR_PARTITION) and the rest (OPERATION_NOT_ATTEMPTED).
async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, AddPartitionsToTxn);
    if version >= 4 {
        return run_batch(state, version, body).await;
    }
    let tid = body.v3_and_below_transactional_id.as_str().to_string();
    let (wanted, unknown) = split_known(&state, &body.v3_and_below_topics);
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
    let topics = results(&body.v3_and_below_topics, |k| match common {
        Some(code) => code,
        None if unknown.contains(k) => ResponseError::UnknownTopicOrPartition.code(),
        None => ResponseError::OperationNotAttempted.code(),
    });
    Ok(Some(ResponseKind::AddPartitionsToTxn(
        AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics),
    )))
}
