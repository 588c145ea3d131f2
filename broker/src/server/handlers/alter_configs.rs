//! AlterConfigs (legacy): replaces a resource's whole dynamic config.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsResponse, ResponseKind};

use super::describe_configs::{broker_resource, RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::error::ApiError;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles AlterConfigs.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

/// Applies config changes to one resource (shared with IncrementalAlterConfigs).
pub async fn alter_resource(
    state: &BrokerState,
    resource_type: i8,
    name: &str,
    changes: BTreeMap<String, Option<String>>,
    replace: bool,
    validate_only: bool,
) -> Result<(), ApiError> {
    match resource_type {
        RESOURCE_TOPIC => {
            state
                .controller
                .alter_topic_configs(name, changes, replace, validate_only)
                .await
        }
        RESOURCE_BROKER => {
            let node = broker_resource(name)
                .map_err(|m| ApiError::new(ResponseError::InvalidRequest, m))?;
            if node.is_some_and(|n| n != state.node_id && !state.image().brokers.contains_key(&n)) {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Unknown broker {name}"),
                ));
            }
            state
                .controller
                .alter_broker_configs(node, changes, replace, validate_only)
                .await
        }
        RESOURCE_GROUP => {
            state
                .controller
                .alter_group_configs(name, changes, replace, validate_only)
                .await
        }
        other => Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!("Unsupported resource type {other}"),
        )),
    }
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, AlterConfigs);
    let mut out = Vec::with_capacity(body.resources.len());
    for r in body.resources {
        let changes: BTreeMap<String, Option<String>> = r
            .configs
            .iter()
            .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
            .collect();
        let res = alter_resource(
            &state,
            r.resource_type,
            r.resource_name.as_str(),
            changes,
            true,
            body.validate_only,
        )
        .await;
        let resp = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name);
        out.push(match res {
            // Kafka answers a success with a null message.
            Ok(()) => resp.with_error_message(None),
            Err(e) => resp
                .with_error_code(e.code)
                .with_error_message(e.message.as_deref().map(sb)),
        });
    }
    state.catch_up().await;
    Ok(Some(ResponseKind::AlterConfigs(
        AlterConfigsResponse::default().with_responses(out),
    )))
}
