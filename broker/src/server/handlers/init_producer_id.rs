//! InitProducerId for idempotent (non-transactional) producers.

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
    let body = body!(req, InitProducerId);
    let resp = InitProducerIdResponse::default();
    if body.transactional_id.is_some() {
        // No transaction coordinator yet: a transactional producer cannot find one.
        return Ok(Some(ResponseKind::InitProducerId(
            resp.with_error_code(ResponseError::CoordinatorNotAvailable.code())
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
