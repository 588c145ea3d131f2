//! InitProducerId for idempotent (non-transactional) producers, and, once
//! `txn::TRANSACTIONS_ENABLED`, for transactional ones on their coordinator.
//!
//! Until then a transactional one (a `transactional_id`) is refused with the
//! non-retriable UNSUPPORTED_VERSION, as FindCoordinator(TRANSACTION) is: the
//! Java producer fails `initTransactions()` with it at once. The response has
//! no message field, so the reason goes to the broker's log.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdResponse, ProducerId, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles InitProducerId.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, InitProducerId);
    let resp = InitProducerIdResponse::default();
    if let Some(tid) = body
        .transactional_id
        .as_ref()
        .filter(|_| crate::txn::TRANSACTIONS_ENABLED)
    {
        let expected = (body.producer_id.0 != -1 || body.producer_epoch != -1)
            .then_some((body.producer_id.0, body.producer_epoch));
        let resp = match state
            .txns
            .init_producer_id(&state, tid.as_str(), body.transaction_timeout_ms, expected)
            .await
        {
            Ok((pid, epoch)) => resp
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch),
            Err(code) => {
                // Before v4 a fenced producer is told INVALID_PRODUCER_EPOCH (KIP-588).
                let code = if version < 4 && code == ResponseError::ProducerFenced.code() {
                    ResponseError::InvalidProducerEpoch.code()
                } else {
                    code
                };
                resp.with_error_code(code)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
            }
        };
        return Ok(Some(ResponseKind::InitProducerId(resp)));
    }
    if let Some(tid) = &body.transactional_id {
        tracing::info!(
            transactional_id = %tid.as_str(),
            "InitProducerId refused: {}",
            super::find_coordinator::TRANSACTIONS_UNSUPPORTED
        );
        return Ok(Some(ResponseKind::InitProducerId(
            resp.with_error_code(ResponseError::UnsupportedVersion.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )));
    }
    let resp = match state.allocate_producer_id().await {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => resp
            .with_error_code(e.code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    };
    Ok(Some(ResponseKind::InitProducerId(resp)))
}
