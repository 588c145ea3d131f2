//! OffsetDelete: removes committed offsets of partitions the group no
//! longer consumes.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::group::classic::GroupState;
use crate::group::GroupCoordinator;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles OffsetDelete.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, OffsetDelete);
    let id = body.group_id.0.to_string();
    let top = |code: i16| {
        Ok(Some(ResponseKind::OffsetDelete(
            OffsetDeleteResponse::default().with_error_code(code),
        )))
    };
    if let Err(code) = state.groups.check_coordinator(&state, &id) {
        return top(code);
    }
    let mut groups = state.groups.lock().await;
    let Some(g) = groups.get_mut(&id) else {
        return top(ResponseError::GroupIdNotFound.code());
    };
    if g.state == GroupState::Dead {
        return top(ResponseError::GroupIdNotFound.code());
    }
    let subscribed = g.subscribed_topics();
    if g.state != GroupState::Empty && g.protocol_type.as_deref() != Some("consumer") {
        return top(ResponseError::NonEmptyGroup.code());
    }
    let mut recs = Vec::new();
    let mut doomed = Vec::new();
    let topics: Vec<OffsetDeleteResponseTopic> = body
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let busy = g.state != GroupState::Empty
                && subscribed.as_ref().is_none_or(|s| s.contains(&name));
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let code = if busy {
                                ResponseError::GroupSubscribedToTopic.code()
                            } else {
                                if g.offsets.contains_key(&(name.clone(), p.partition_index)) {
                                    match GroupCoordinator::offset_record(
                                        &id,
                                        &name,
                                        p.partition_index,
                                        None,
                                    ) {
                                        Ok(r) => {
                                            recs.push(r);
                                            doomed.push((name.clone(), p.partition_index));
                                            0
                                        }
                                        Err(code) => code,
                                    }
                                } else {
                                    0
                                }
                            };
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    if let Err(code) = state.groups.persist(&state, &id, recs) {
        return top(code);
    }
    for k in doomed {
        g.offsets.remove(&k);
    }
    Ok(Some(ResponseKind::OffsetDelete(
        OffsetDeleteResponse::default().with_topics(topics),
    )))
}
