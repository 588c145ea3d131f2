//! TxnOffsetCommit (v0–v5): a transactional producer's offset commit for a
//! consumer group (`sendOffsetsToTransaction`). As Kafka's
//! `OffsetMetadataManager.commitTransactionalOffset`: the member checks of
//! `group::txn_commit`, then the offsets are written to the group's
//! `__consumer_offsets` partition as one transactional batch of the
//! request's producer and kept pending (`Groups::txn`) until that
//! producer's COMMIT marker lands there (they become the committed offsets)
//! or its ABORT marker (dropped). Answered once the in-sync replicas hold
//! the batch. Before the write, the group's `__consumer_offsets` partition
//! is verified to be in the transaction (KIP-890 part 1, v0–v4) or, for
//! v5 (transaction.version 2), added to it (the implicit AddOffsetsToTxn),
//! through `txn::verify` as a produce would.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ResponseKind, TxnOffsetCommitResponse};

use crate::body;
use crate::broker::BrokerState;
use crate::clock::now_ms;
use crate::group::classic::ClassicGroup;
use crate::group::commit::{commit_entry, CommitPartition};
use crate::group::records::OffsetValue;
use crate::group::txn_commit::{validate_classic, validate_consumer};
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles TxnOffsetCommit.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

/// The checks before the write: the group's coordinator, then the member
/// (a group that does not exist is created as a simple group when the
/// request has no generation, else ILLEGAL_GENERATION, as Kafka).
fn check(
    groups: &mut crate::group::Groups,
    group_id: &str,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), i16> {
    if let Some(cg) = groups.consumer.get(group_id) {
        return validate_consumer(cg, member_id, instance_id, generation);
    }
    if !groups.classic.contains_key(group_id) {
        if generation >= 0 {
            return Err(ResponseError::IllegalGeneration.code());
        }
        groups
            .classic
            .insert(group_id.to_string(), ClassicGroup::new(group_id, now_ms()));
    }
    match groups.classic.get(group_id) {
        Some(g) => validate_classic(g, member_id, instance_id, generation),
        None => Ok(()),
    }
}

/// KIP-890: the group's `__consumer_offsets` partition is in the
/// producer's transaction (verified for v0–v4, added for v5), or the
/// coordinator's error (PRODUCER_FENCED told as INVALID_PRODUCER_EPOCH,
/// TRANSACTION_ABORTABLE as INVALID_TXN_STATE before v4, as Kafka's
/// `AddPartitionsToTxnManager`).
async fn in_transaction(
    state: &Arc<BrokerState>,
    body: &kafka_protocol::messages::TxnOffsetCommitRequest,
    group_id: &str,
    version: i16,
) -> Result<(), i16> {
    if !crate::txn::verify::enabled(state) && version < 5 {
        return Ok(());
    }
    state.groups.check_coordinator(state, group_id)?;
    let tp = (
        crate::group::OFFSETS_TOPIC.to_string(),
        state.groups.partition_for(group_id),
    );
    // The Produce version whose rules apply (Kafka's
    // `txnOffsetCommitRequestVersionToTransactionSupportedOperation`).
    let as_produce = match version {
        5.. => 12,
        4 => 11,
        _ => 10,
    };
    let codes = crate::txn::verify::verify_for_produce(
        state,
        body.transactional_id.as_str(),
        body.producer_id.0,
        body.producer_epoch,
        &std::collections::BTreeSet::from([tp.clone()]),
        as_produce,
    )
    .await;
    match codes.get(&tp).copied().unwrap_or(0) {
        0 => Ok(()),
        code => Err(code),
    }
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let req_version = req.version;
    let body = body!(req, TxnOffsetCommit);
    let group_id = body.group_id.0.to_string();
    let producer_id = body.producer_id.0;
    let image = state.image();
    // Per partition, in request order: Some(code) decided up front
    // (unknown topic, metadata too large), None: written.
    let mut decided: Vec<Option<i16>> = Vec::new();
    let mut records = Vec::new();
    let mut accepted = Vec::new();
    let max_meta = state.groups.config.max_metadata_bytes;
    let ts = now_ms();
    for t in &body.topics {
        for p in &t.partitions {
            let entry = CommitPartition {
                topic: t.name.as_str(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_deref(),
            };
            match commit_entry(&image, &group_id, &entry, ts, max_meta) {
                Ok((v, r)) => {
                    records.push(r);
                    accepted.push(((group_id.clone(), t.name.to_string(), p.partition_index), v));
                    decided.push(None);
                }
                Err(code) => decided.push(Some(code)),
            }
        }
    }
    let outcome: Result<(), i16> = if records.is_empty() {
        Ok(())
    } else {
        match in_transaction(&state, &body, &group_id, req_version).await {
            Ok(()) => write(&state, &body, &group_id, records, accepted).await,
            Err(code) => Err(code),
        }
    };
    if let Err(code) = outcome {
        tracing::debug!(group = %group_id, producer_id, code, "TxnOffsetCommit refused");
    }
    let mut codes = decided.into_iter();
    let topics = body
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let code = match codes.next().flatten() {
                                Some(c) => c,
                                None => outcome.err().unwrap_or(0),
                            };
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    Ok(Some(ResponseKind::TxnOffsetCommit(
        TxnOffsetCommitResponse::default().with_topics(topics),
    )))
}

/// The coordinator checks, the transactional write and the pending
/// offsets; the error every written partition answers.
async fn write(
    state: &BrokerState,
    body: &kafka_protocol::messages::TxnOffsetCommitRequest,
    group_id: &str,
    records: Vec<crate::group::GroupRecord>,
    accepted: Vec<(crate::group::txn_offsets::OffsetKey, OffsetValue)>,
) -> Result<(), i16> {
    state.groups.check_coordinator(state, group_id)?;
    let p = state.groups.partition_for(group_id);
    let write = state.groups.writer(state, group_id);
    let mut groups = state.groups.lock().await;
    check(
        &mut groups,
        group_id,
        body.member_id.as_str(),
        body.group_instance_id.as_ref().map(|s| s.as_str()),
        body.generation_id,
    )?;
    write.append_txn(
        p,
        group_id,
        body.producer_id.0,
        body.producer_epoch,
        records,
    )?;
    let pending = groups.txn_of(p);
    for (key, v) in accepted {
        pending.add(body.producer_id.0, key, v);
    }
    drop(groups);
    write.replicated().await
}
