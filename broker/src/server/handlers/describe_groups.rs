//! DescribeGroups: state, protocol and members of classic groups.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsResponse, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles DescribeGroups.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, DescribeGroups);
    let mut out = Vec::with_capacity(body.groups.len());
    for gid in body.groups {
        let id = gid.0.to_string();
        let base = DescribedGroup::default().with_group_id(gid.clone());
        if let Err(code) = state.groups.check_coordinator(&state, &id) {
            out.push(base.with_error_code(code).with_group_state(sb("")));
            continue;
        }
        let groups = state.groups.lock().await;
        if groups.consumer.contains_key(&id) {
            // Not a classic group: described as Dead, with a reason from v6.
            let dead = base.with_group_state(sb("Dead"));
            out.push(if version >= 6 {
                dead.with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(sb(&format!("Group {id} is not a classic group."))))
            } else {
                dead
            });
            continue;
        }
        let Some(g) = groups.classic.get(&id) else {
            let dead = base.with_group_state(sb("Dead"));
            out.push(if version >= 6 {
                dead.with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(sb(&format!("Group {id} not found."))))
            } else {
                dead
            });
            continue;
        };
        let protocol = g.protocol.clone().unwrap_or_default();
        let stable = g.state == crate::group::classic::GroupState::Stable;
        let members = g
            .members
            .values()
            .map(|m| {
                let meta = m
                    .protocols
                    .iter()
                    .find(|(n, _)| *n == protocol)
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                DescribedGroupMember::default()
                    .with_member_id(sb(&m.member_id))
                    .with_group_instance_id(if version >= 4 {
                        m.instance_id.as_deref().map(sb)
                    } else {
                        None
                    })
                    .with_client_id(sb(&m.client_id))
                    .with_client_host(sb(&m.client_host))
                    .with_member_metadata(meta)
                    .with_member_assignment(if stable {
                        m.assignment.clone()
                    } else {
                        Default::default()
                    })
            })
            .collect();
        out.push(
            base.with_group_state(sb(g.state.name()))
                .with_protocol_type(sb(g.protocol_type.as_deref().unwrap_or("")))
                .with_protocol_data(sb(&protocol))
                .with_members(members),
        );
    }
    Ok(Some(ResponseKind::DescribeGroups(
        DescribeGroupsResponse::default().with_groups(out),
    )))
}
