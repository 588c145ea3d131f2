//! JoinGroup: the classic protocol's join phase, including the KIP-394
//! member id round trip and static membership (KIP-345).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupResponse, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::group::classic::{JoinOutcome, JoinRequest, JoinResult};
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles JoinGroup.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

fn response(r: JoinResult, version: i16) -> ResponseKind {
    let mut resp = JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_protocol_name(r.protocol_name.as_deref().map(sb))
        .with_leader(sb(&r.leader))
        .with_member_id(sb(&r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|(id, inst, meta)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(sb(&id))
                        .with_group_instance_id(if version >= 5 {
                            inst.as_deref().map(sb)
                        } else {
                            None
                        })
                        .with_metadata(meta)
                })
                .collect(),
        );
    if version >= 7 {
        resp = resp.with_protocol_type(r.protocol_type.as_deref().map(sb));
    }
    ResponseKind::JoinGroup(resp)
}

fn error(code: ResponseError, member_id: &str, version: i16) -> ResponseKind {
    response(
        JoinResult {
            error: code.code(),
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        },
        version,
    )
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let req_peer = req.peer;
    let client_id = req
        .header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let body = body!(req, JoinGroup);
    let group_id = body.group_id.0.to_string();
    let member_id = body.member_id.to_string();
    if let Err(code) = state.groups.check_coordinator(&state, &group_id) {
        return Ok(Some(ResponseKind::JoinGroup(
            JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1)
                .with_member_id(body.member_id),
        )));
    }
    let cfg = &state.groups.config;
    if body.session_timeout_ms < cfg.min_session_ms || body.session_timeout_ms > cfg.max_session_ms
    {
        return Ok(Some(error(
            ResponseError::InvalidSessionTimeout,
            &member_id,
            version,
        )));
    }
    let join = JoinRequest {
        member_id: member_id.clone(),
        instance_id: body.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client_id.clone(),
        client_host: format!("/{}", req_peer.ip()),
        session_timeout_ms: body.session_timeout_ms,
        // v0 has no rebalance timeout: it equals the session timeout.
        rebalance_timeout_ms: if version == 0 {
            body.session_timeout_ms
        } else {
            body.rebalance_timeout_ms
        },
        protocol_type: body.protocol_type.to_string(),
        protocols: body
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let write = state.groups.writer(&state, &group_id);
    let outcome = state
        .groups
        .join_classic(&write, &group_id, join, |prefix: &str| {
            format!("{prefix}-{}", uuid::Uuid::new_v4())
        })
        .await;
    let mut result = match outcome {
        JoinOutcome::Now(r) | JoinOutcome::AfterStore(r) => r,
        JoinOutcome::Wait(rx) => match rx.await {
            Ok(r) => r,
            Err(_) => JoinResult {
                error: state.groups.group_gone_error(&state, &group_id),
                generation: -1,
                member_id: member_id.clone(),
                ..Default::default()
            },
        },
    };
    if result.error == 0 {
        // The new generation counts once the group record holding it is
        // replicated.
        if let Err(code) = write.replicated().await {
            result = JoinResult {
                error: code,
                generation: -1,
                member_id,
                ..Default::default()
            };
        }
    }
    Ok(Some(response(result, version)))
}
