//! ApiVersions: the advertised API surface, straight from the dispatch table.

use std::sync::Arc;

use kafka_protocol::messages::{ApiVersionsResponse, ResponseKind};

use crate::broker::BrokerState;
use crate::server::dispatch::{advertised, HandlerFuture, Request};

/// Handles ApiVersions.
pub fn handle(_state: Arc<BrokerState>, _req: Request) -> HandlerFuture {
    Box::pin(async move {
        Ok(Some(ResponseKind::ApiVersions(
            ApiVersionsResponse::default().with_api_keys(advertised()),
        )))
    })
}
