//! LeaveGroup: one member (v0-2) or a batch of members (v3+) leave.

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupResponse, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles LeaveGroup.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, LeaveGroup);
    let group_id = body.group_id.0.to_string();
    if let Err(code) = state.groups.check_coordinator(&state, &group_id) {
        return Ok(Some(ResponseKind::LeaveGroup(
            LeaveGroupResponse::default().with_error_code(code),
        )));
    }
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        body.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(body.member_id.to_string(), None)]
    };
    // Answered once a group that became Empty is stored (Kafka's leave
    // answers after its records are written, or with the append's error).
    let write = state.groups.writer(&state, &group_id);
    let left = match state
        .groups
        .leave_classic(&write, &group_id, &leaving)
        .await
    {
        Ok(codes) => write.replicated().await.map(|()| codes),
        e => e,
    };
    let codes = match left {
        Ok(codes) => codes,
        Err(code) => {
            return Ok(Some(ResponseKind::LeaveGroup(
                LeaveGroupResponse::default().with_error_code(code),
            )))
        }
    };
    let members: Vec<MemberResponse> = leaving
        .into_iter()
        .zip(codes)
        .map(|((id, inst), code)| {
            MemberResponse::default()
                .with_member_id(sb(&id))
                .with_group_instance_id(inst.as_deref().map(sb))
                .with_error_code(code)
        })
        .collect();
    let resp = if version >= 3 {
        LeaveGroupResponse::default().with_members(members)
    } else {
        LeaveGroupResponse::default()
            .with_error_code(members.first().map(|m| m.error_code).unwrap_or(0))
    };
    Ok(Some(ResponseKind::LeaveGroup(resp)))
}
