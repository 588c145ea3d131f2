//! UnregisterBroker (64): removes a broker's registration (`kafka-cluster
//! unregister`, Admin `unregisterBroker`). A broker passes it to the active
//! controller, as Kafka's broker forwards it.

use std::sync::Arc;

use kafka_protocol::messages::{ResponseKind, UnregisterBrokerResponse};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles UnregisterBroker.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(async move {
        let body = body!(req, UnregisterBroker);
        let result = state.controller.unregister_broker(body.broker_id.0).await;
        if result.is_ok() && state.config.is_broker() {
            // DescribeCluster on this connection no longer lists it.
            state.catch_up().await;
        }
        let (code, message) = match result {
            Ok(()) => (0, None),
            Err(e) => (e.code, e.message),
        };
        Ok(Some(ResponseKind::UnregisterBroker(
            UnregisterBrokerResponse::default()
                .with_error_code(code)
                .with_error_message(message.as_deref().map(sb)),
        )))
    })
}
