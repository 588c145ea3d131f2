//! LeaveGroup: one member (v0-2) or a batch of members (v3+) leave.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::group::classic::GroupState;
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
    let leaving: Vec<(
        kafka_protocol::protocol::StrBytes,
        Option<kafka_protocol::protocol::StrBytes>,
    )> = if version >= 3 {
        body.members
            .iter()
            .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
            .collect()
    } else {
        vec![(body.member_id.clone(), None)]
    };
    let mut groups = state.groups.lock().await;
    let Some(g) = groups.classic.get_mut(&group_id) else {
        return Ok(Some(ResponseKind::LeaveGroup(
            LeaveGroupResponse::default().with_error_code(ResponseError::UnknownMemberId.code()),
        )));
    };
    let now = Instant::now();
    let ms = crate::clock::now_ms();
    let before = g.state;
    let mut members = Vec::with_capacity(leaving.len());
    for (id, inst) in leaving {
        let code = g.leave(id.as_str(), inst.as_ref().map(|s| s.as_str()), now, ms);
        members.push(
            MemberResponse::default()
                .with_member_id(id)
                .with_group_instance_id(inst)
                .with_error_code(code),
        );
    }
    if before != GroupState::Empty && g.state == GroupState::Empty {
        let _ = state.groups.persist_group(&state, g);
    }
    let resp = if version >= 3 {
        LeaveGroupResponse::default().with_members(members)
    } else {
        LeaveGroupResponse::default()
            .with_error_code(members.first().map(|m| m.error_code).unwrap_or(0))
    };
    Ok(Some(ResponseKind::LeaveGroup(resp)))
}
