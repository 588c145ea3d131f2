//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT per key.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsResponse, ResponseKind};

use super::alter_configs::alter_resource;
use super::describe_configs::{RESOURCE_GROUP, RESOURCE_TOPIC};
use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::config::defs::{broker_def, topic_def, ConfigType};
use crate::config::TopicConfigResolver;
use crate::error::ApiError;
use crate::group::group_configs;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles IncrementalAlterConfigs.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

fn current_value(state: &BrokerState, resource_type: i8, name: &str, key: &str) -> Option<String> {
    let image = state.image();
    let resolver = TopicConfigResolver {
        static_props: &state.config.props,
        cluster: &image.cluster_configs,
        node: image.broker_configs.get(&state.node_id),
    };
    if resource_type == RESOURCE_TOPIC {
        let t = image.topics.get(name)?;
        resolver.topic_value(key, &t.configs)
    } else {
        resolver.broker_entry(key).and_then(|e| e.value)
    }
}

fn plan(
    state: &BrokerState,
    r: &kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
) -> Result<BTreeMap<String, Option<String>>, ApiError> {
    let mut changes = BTreeMap::new();
    let name = r.resource_name.as_str();
    for c in &r.configs {
        let key = c.name.to_string();
        if changes.contains_key(&key) {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("Duplicate config key {key}"),
            ));
        }
        let is_list = if r.resource_type == RESOURCE_GROUP {
            // No group config is a LIST.
            group_configs::is_group_config(&key).then_some(false)
        } else if r.resource_type == RESOURCE_TOPIC {
            topic_def(&key).map(|d| d.ty == ConfigType::List)
        } else {
            broker_def(&key).map(|d| d.ty == ConfigType::List)
        };
        let value = c.value.as_ref().map(|v| v.to_string());
        let new = match c.config_operation {
            0 => Some(value.ok_or_else(|| {
                ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Null value not supported for SET of {key}"),
                )
            })?),
            1 => None,
            op @ (2 | 3) => {
                if is_list != Some(true) {
                    // Kafka's ConfigurationControlManager, word for word.
                    let op_name = if op == 2 { "APPEND" } else { "SUBTRACT" };
                    return Err(ApiError::new(
                        ResponseError::InvalidConfig,
                        format!("Can't {op_name} to key {key} because its type is not LIST."),
                    ));
                }
                let cur = current_value(state, r.resource_type, name, &key).unwrap_or_default();
                let mut items: Vec<String> = cur
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                let delta: Vec<String> = value
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if op == 2 {
                    for d in delta {
                        if !items.contains(&d) {
                            items.push(d);
                        }
                    }
                } else {
                    items.retain(|i| !delta.contains(i));
                }
                Some(items.join(","))
            }
            other => {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Unknown config operation {other}"),
                ));
            }
        };
        changes.insert(key, new);
    }
    Ok(changes)
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, IncrementalAlterConfigs);
    let mut out = Vec::with_capacity(body.resources.len());
    for r in &body.resources {
        let res = match plan(&state, r) {
            Ok(changes) => {
                alter_resource(
                    &state,
                    r.resource_type,
                    r.resource_name.as_str(),
                    changes,
                    false,
                    body.validate_only,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let resp = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        out.push(match res {
            Ok(()) => resp,
            Err(e) => resp
                .with_error_code(e.code)
                .with_error_message(e.message.as_deref().map(sb)),
        });
    }
    state.catch_up().await;
    Ok(Some(ResponseKind::IncrementalAlterConfigs(
        IncrementalAlterConfigsResponse::default().with_responses(out),
    )))
}
