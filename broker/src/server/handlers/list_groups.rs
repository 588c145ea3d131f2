//! ListGroups: every group this coordinator owns (classic and consumer),
//! with state and type filters.

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
    // (id, protocol type, state, type)
    let all = groups
        .classic
        .values()
        .map(|g| {
            (
                g.id.clone(),
                g.protocol_type.clone().unwrap_or_default(),
                g.state.name(),
                "classic",
            )
        })
        .chain(groups.consumer.values().map(|g| {
            (
                g.group_id().to_string(),
                "consumer".to_string(),
                g.state_name(),
                "consumer",
            )
        }));
    let mut listed: Vec<ListedGroup> = all
        .filter(|(_, _, st, _)| states.is_empty() || states.contains(&st.to_ascii_lowercase()))
        .filter(|(_, _, _, ty)| types.is_empty() || types.iter().any(|t| t == ty))
        .map(|(id, pt, st, ty)| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(sb(&id)))
                .with_protocol_type(sb(&pt));
            if version >= 4 {
                l = l.with_group_state(sb(st));
            }
            if version >= 5 {
                l = l.with_group_type(sb(ty));
            }
            l
        })
        .collect();
    listed.sort_by(|a, b| a.group_id.0.as_str().cmp(b.group_id.0.as_str()));
    Ok(Some(ResponseKind::ListGroups(
        ListGroupsResponse::default().with_groups(listed),
    )))
}
