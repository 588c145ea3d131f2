//! EndTxn (v0–v4, transaction.version < 2): commit or abort a
//! transactional id's running transaction on its coordinator
//! (`txn::end_txn::end_txn`), answered once `PrepareCommit`/`PrepareAbort`
//! is replicated; the markers and the completion follow in the background,
//! as on Kafka.

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
    let code = if tid.is_empty() {
        ResponseError::InvalidRequest.code()
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
        EndTxnResponse::default().with_error_code(code),
    )))
}
