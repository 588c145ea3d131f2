//! SyncGroup: the leader's assignment reaches every member.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ResponseKind, SyncGroupResponse};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::group::classic::{SyncOutcome, SyncResult};
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles SyncGroup.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

fn response(r: SyncResult, version: i16) -> ResponseKind {
    let mut resp = SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_assignment(r.assignment);
    if version >= 5 {
        resp = resp
            .with_protocol_type(r.protocol_type.as_deref().map(sb))
            .with_protocol_name(r.protocol_name.as_deref().map(sb));
    }
    ResponseKind::SyncGroup(resp)
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, SyncGroup);
    let group_id = body.group_id.0.to_string();
    let fail = |code: i16| {
        Ok(Some(response(
            SyncResult {
                error: code,
                ..Default::default()
            },
            version,
        )))
    };
    if let Err(code) = state.groups.check_coordinator(&state, &group_id) {
        return fail(code);
    }
    let write = state.groups.writer(&state, &group_id);
    let outcome = {
        let mut groups = state.groups.lock().await;
        let Some(g) = groups.classic.get_mut(&group_id) else {
            return fail(ResponseError::UnknownMemberId.code());
        };
        let now_ms = crate::clock::now_ms();
        let (out, stable) = g.sync(
            body.member_id.as_str(),
            body.group_instance_id.as_ref().map(|s| s.as_str()),
            body.generation_id,
            body.protocol_type.as_ref().map(|s| s.as_str()),
            body.protocol_name.as_ref().map(|s| s.as_str()),
            body.assignments
                .iter()
                .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                .collect(),
            Instant::now(),
            now_ms,
        );
        if stable {
            let stored = state.groups.persist_group(&write, g);
            if let Err(code) = stored {
                tracing::warn!(group = %group_id, code, "cannot store the group's assignment");
            }
            g.finish_sync(stored, Instant::now(), now_ms);
        }
        out
    };
    let mut result = match outcome {
        SyncOutcome::Now(r) => r,
        SyncOutcome::Wait(rx) => match rx.await {
            Ok(r) => r,
            Err(_) => SyncResult {
                error: state.groups.group_gone_error(&state, &group_id),
                ..Default::default()
            },
        },
    };
    if result.error == 0 {
        // The assignment counts once the group record holding it is
        // replicated.
        if let Err(code) = write.replicated().await {
            result = SyncResult {
                error: code,
                ..Default::default()
            };
        }
    }
    Ok(Some(response(result, version)))
}
