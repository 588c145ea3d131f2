//! DeleteTopics: by name (v0-5) or by name or id (v6+).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsResponse, ResponseKind};
use uuid::Uuid;

use super::{sb, topic_name};
use crate::body;
use crate::broker::BrokerState;
use crate::error::ApiError;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles DeleteTopics.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, DeleteTopics);
    let wanted: Vec<(Option<String>, Uuid)> = if version >= 6 {
        body.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        body.topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let enabled = state.config.get_bool("delete.topic.enable", true);
    let mut out = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let image = state.image();
        let found = match &name {
            Some(n) => image.topics.get(n),
            None => image.topic_by_id(&id),
        };
        let result = match found {
            _ if !enabled => Err(ApiError::new(
                ResponseError::TopicDeletionDisabled,
                "Topic deletion is disabled.",
            )),
            None if name.is_some() => Err(ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                "This server does not host this topic-partition.",
            )),
            None => Err(ApiError::code(ResponseError::UnknownTopicId)),
            Some(t) if super::is_internal(&t.name) => Err(ApiError::new(
                ResponseError::InvalidTopicException,
                format!(
                    "Topic {} is an internal topic and cannot be deleted",
                    t.name
                ),
            )),
            Some(t) => {
                let (tid, tname) = (t.topic_id, t.name.clone());
                state
                    .controller
                    .delete_topic(tid)
                    .await
                    .map(|()| (tid, tname))
            }
        };
        out.push(match result {
            Ok((tid, tname)) => {
                tracing::info!(topic = %tname, "deleted topic");
                DeletableTopicResult::default()
                    .with_name(Some(topic_name(&tname)))
                    .with_topic_id(tid)
            }
            Err(e) => DeletableTopicResult::default()
                .with_name(name.as_deref().map(topic_name))
                .with_topic_id(id)
                .with_error_code(e.code)
                .with_error_message(e.message.as_deref().map(sb)),
        });
    }
    state.catch_up().await;
    Ok(Some(ResponseKind::DeleteTopics(
        DeleteTopicsResponse::default().with_responses(out),
    )))
}
