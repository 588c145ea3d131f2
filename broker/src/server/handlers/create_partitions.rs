//! CreatePartitions: grow a topic's partition count.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsResponse, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles CreatePartitions.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, CreatePartitions);
    let mut results = Vec::with_capacity(body.topics.len());
    for t in body.topics {
        let assignments = t.assignments.map(|a| {
            a.into_iter()
                .map(|x| x.broker_ids.into_iter().map(|b| b.0).collect())
                .collect()
        });
        let r = state
            .controller
            .create_partitions(t.name.0.as_str(), t.count, assignments, body.validate_only)
            .await;
        let res = CreatePartitionsTopicResult::default().with_name(t.name);
        results.push(match r {
            Ok(()) => res,
            Err(e) => res
                .with_error_code(e.code)
                .with_error_message(e.message.as_deref().map(sb)),
        });
    }
    state.catch_up().await;
    Ok(Some(ResponseKind::CreatePartitions(
        CreatePartitionsResponse::default().with_results(results),
    )))
}
