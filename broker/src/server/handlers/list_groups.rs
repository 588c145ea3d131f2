//! ListGroups: every group this coordinator owns, with state and type filters.

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsResponse, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles ListGroups.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, ListGroups);
    if state.groups.is_loading() {
        return Ok(Some(ResponseKind::ListGroups(
            ListGroupsResponse::default().with_error_code(
                kafka_protocol::error::ResponseError::CoordinatorLoadInProgress.code(),
            ),
        )));
    }
    let states: Vec<String> = body
        .states_filter
        .iter()
        .map(|s| s.to_string().to_ascii_lowercase())
        .collect();
    let types: Vec<String> = body
        .types_filter
        .iter()
        .map(|s| s.to_string().to_ascii_lowercase())
        .collect();
    let groups = state.groups.lock().await;
    let mut listed: Vec<ListedGroup> = groups
        .values()
        .filter(|g| states.is_empty() || states.contains(&g.state.name().to_ascii_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|g| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(sb(&g.id)))
                .with_protocol_type(sb(g.protocol_type.as_deref().unwrap_or("")));
            if version >= 4 {
                l = l.with_group_state(sb(g.state.name()));
            }
            if version >= 5 {
                l = l.with_group_type(sb("classic"));
            }
            l
        })
        .collect();
    listed.sort_by(|a, b| a.group_id.0.as_str().cmp(b.group_id.0.as_str()));
    Ok(Some(ResponseKind::ListGroups(
        ListGroupsResponse::default().with_groups(listed),
    )))
}
