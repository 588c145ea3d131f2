//! EndTxn: commit or abort a transactional id's running transaction on
//! its coordinator, answered once `PrepareCommit`/`PrepareAbort` is
//! replicated; the markers and the completion follow in the background, as
//! on Kafka. v0–v4 with transaction.version 1 rules
//! (`txn::end_txn::end_txn`), v5 with transaction.version 2's
//! (`txn::end_txn::end_txn_v2`: the epoch is bumped and answered).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{EndTxnResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles EndTxn.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, EndTxn);
    let tid = body.transactional_id.as_str().to_string();
    let mut answered = (-1i64, -1i16);
    let code = if tid.is_empty() {
        ResponseError::InvalidRequest.code()
    } else if version >= 5 {
        match crate::txn::end_txn::end_txn_v2(
            &state,
            &tid,
            body.producer_id.0,
            body.producer_epoch,
            body.committed,
        )
        .await
        {
            Ok(p) => {
                answered = p;
                0
            }
            Err(code) => code,
        }
    } else {
        match crate::txn::end_txn::end_txn(
            &state,
            &tid,
            body.producer_id.0,
            body.producer_epoch,
            body.committed,
            true,
        )
        .await
        {
            Ok(()) => 0,
            Err(code) => code,
        }
    };
    // Before v2 (KIP-360) clients know INVALID_PRODUCER_EPOCH, not
    // PRODUCER_FENCED (Kafka's EndTxnResponse).
    let code = if version < 2 && code == ResponseError::ProducerFenced.code() {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        code
    };
    if code != 0 {
        tracing::debug!(transactional_id = %tid, code, "EndTxn refused");
    }
    Ok(Some(ResponseKind::EndTxn(
        EndTxnResponse::default()
            .with_error_code(code)
            .with_producer_id(kafka_protocol::messages::ProducerId(answered.0))
            .with_producer_epoch(answered.1),
    )))
}
