//! ApiVersions: the advertised API surface, straight from the dispatch table.

use std::sync::Arc;

use kafka_protocol::messages::{ApiVersionsResponse, ResponseKind};

use crate::broker::BrokerState;
use crate::server::dispatch::{advertised, advertised_in, HandlerFuture, Request, Surface};

/// Handles ApiVersions.
pub fn handle(_state: Arc<BrokerState>, _req: Request) -> HandlerFuture {
    Box::pin(async move {
        Ok(Some(ResponseKind::ApiVersions(
            ApiVersionsResponse::default().with_api_keys(advertised()),
        )))
    })
}

/// Handles ApiVersions on the controller listener: only its APIs.
pub fn handle_controller(_state: Arc<BrokerState>, _req: Request) -> HandlerFuture {
    Box::pin(async move {
        Ok(Some(ResponseKind::ApiVersions(
            ApiVersionsResponse::default().with_api_keys(advertised_in(Surface::Controller)),
        )))
    })
}
