//! Heartbeat: keeps a member's session alive and tells it of rebalances.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles Heartbeat.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, Heartbeat);
    let group_id = body.group_id.0.to_string();
    let code = match state.groups.check_coordinator(&state, &group_id) {
        Err(code) => code,
        Ok(()) => {
            let mut groups = state.groups.lock().await;
            match groups.classic.get_mut(&group_id) {
                None => ResponseError::UnknownMemberId.code(),
                Some(g) => g.heartbeat(
                    body.member_id.as_str(),
                    body.group_instance_id.as_ref().map(|s| s.as_str()),
                    body.generation_id,
                    Instant::now(),
                ),
            }
        }
    };
    Ok(Some(ResponseKind::Heartbeat(
        HeartbeatResponse::default().with_error_code(code),
    )))
}
