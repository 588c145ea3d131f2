//! AddOffsetsToTxn (v0–v4): adds the group's `__consumer_offsets`
//! partition to a transactional id's running transaction, so that the
//! transaction's markers are written there too and the group coordinator
//! makes its TxnOffsetCommit offsets visible (or drops them) with them, as
//! Kafka's `KafkaApis.handleAddOffsetsToTxnRequest` and
//! `TransactionCoordinator.handleAddOffsetsToTransaction`.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::group::OFFSETS_TOPIC;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles AddOffsetsToTxn.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, AddOffsetsToTxn);
    let tid = body.transactional_id.as_str().to_string();
    let group = body.group_id.as_str();
    let offsets_partition = state.groups.partition_for(group);
    let wanted: BTreeSet<(String, i32)> = [(OFFSETS_TOPIC.to_string(), offsets_partition)].into();
    let code = super::add_partitions_to_txn::add_to_txn(
        &state,
        &tid,
        body.producer_id.0,
        body.producer_epoch,
        &wanted,
        version,
    )
    .await;
    if code != 0 {
        tracing::debug!(transactional_id = %tid, group, code, "AddOffsetsToTxn refused");
    }
    Ok(Some(ResponseKind::AddOffsetsToTxn(
        AddOffsetsToTxnResponse::default().with_error_code(code),
    )))
}
