//! OffsetDelete: removes committed offsets of partitions the group no
//! longer consumes.

use std::collections::HashSet;
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
    let write = state.groups.writer(&state, &id);
    let mut groups = state.groups.lock().await;
    if !groups.exists(&id) {
        return top(ResponseError::GroupIdNotFound.code());
    }
    // Topics the live members consume; None: every topic is in use.
    let busy: Option<HashSet<String>> = if groups.is_empty_group(&id) {
        Some(HashSet::new())
    } else if let Some(g) = groups.consumer.get(&id) {
        Some(g.subscribed_topics().into_iter().collect())
    } else if let Some(g) = groups.classic.get(&id) {
        if g.state == GroupState::Dead {
            return top(ResponseError::GroupIdNotFound.code());
        }
        if g.protocol_type.as_deref() != Some("consumer") {
            return top(ResponseError::NonEmptyGroup.code());
        }
        g.subscribed_topics()
    } else {
        None
    };
    let committed = groups.offsets.get(&id);
    let mut recs = Vec::new();
    let mut doomed = Vec::new();
    let topics: Vec<OffsetDeleteResponseTopic> = body
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let subscribed = busy.as_ref().is_none_or(|s| s.contains(&name));
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let key = (name.clone(), p.partition_index);
                            let code = if subscribed {
                                ResponseError::GroupSubscribedToTopic.code()
                            } else if committed.is_some_and(|o| o.contains_key(&key)) {
                                match GroupCoordinator::offset_record(
                                    &id,
                                    &name,
                                    p.partition_index,
                                    None,
                                ) {
                                    Ok(r) => {
                                        recs.push(r);
                                        doomed.push(key);
                                        0
                                    }
                                    Err(code) => code,
                                }
                            } else {
                                0
                            };
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    if let Err(code) = state.groups.persist(&write, &id, recs) {
        return top(code);
    }
    if let Some(o) = groups.offsets.get_mut(&id) {
        for k in doomed {
            o.remove(&k);
        }
    }
    drop(groups);
    if let Err(code) = write.replicated().await {
        return top(code);
    }
    Ok(Some(ResponseKind::OffsetDelete(
        OffsetDeleteResponse::default().with_topics(topics),
    )))
}
