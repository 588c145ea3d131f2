//! DeleteGroups: removes empty groups and their committed offsets.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::group::GroupCoordinator;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles DeleteGroups.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, DeleteGroups);
    let mut results = Vec::with_capacity(body.groups_names.len());
    for gid in body.groups_names {
        let id = gid.0.to_string();
        let code = match state.groups.check_coordinator(&state, &id) {
            Err(code) => code,
            Ok(()) => {
                let write = state.groups.writer(&state, &id);
                let mut groups = state.groups.lock().await;
                let code = if !groups.exists(&id) {
                    ResponseError::GroupIdNotFound.code()
                } else if !groups.is_empty_group(&id) {
                    ResponseError::NonEmptyGroup.code()
                } else {
                    let recs: Result<Vec<_>, i16> = groups
                        .offsets
                        .get(&id)
                        .into_iter()
                        .flat_map(|o| o.keys())
                        .map(|(t, p)| GroupCoordinator::offset_record(&id, t, *p, None))
                        .chain(std::iter::once(GroupCoordinator::group_tombstone(&id)))
                        .collect();
                    match recs.and_then(|r| state.groups.persist(&write, &id, r)) {
                        Ok(()) => {
                            groups.remove(&id);
                            tracing::info!(group = %id, "deleted group");
                            0
                        }
                        Err(code) => code,
                    }
                };
                drop(groups);
                if code == 0 {
                    // Deleted once the tombstones are replicated.
                    write.replicated().await.err().unwrap_or(0)
                } else {
                    code
                }
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(gid)
                .with_error_code(code),
        );
    }
    Ok(Some(ResponseKind::DeleteGroups(
        DeleteGroupsResponse::default().with_results(results),
    )))
}
