//! DescribeConfigs: topic, broker and group resources, with sources and
//! synonyms.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsResponse, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::config::defs::{broker_defs, BROKER_QUOTA_CONFIGS, TOPIC_CONFIGS};
use crate::config::{ConfigEntry, TopicConfigResolver};
use crate::group::group_configs;
use crate::server::dispatch::{HandlerFuture, Request};

/// Kafka's `ConfigResource.Type` codes.
pub const RESOURCE_TOPIC: i8 = 2;
/// Broker resource.
pub const RESOURCE_BROKER: i8 = 4;
/// Group resource (KIP-848 group configs).
pub const RESOURCE_GROUP: i8 = 32;

/// Handles DescribeConfigs.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

fn to_result(e: ConfigEntry, synonyms: bool, version: i16) -> DescribeConfigsResourceResult {
    let value = if e.sensitive {
        None
    } else {
        e.value.as_deref().map(sb)
    };
    DescribeConfigsResourceResult::default()
        .with_name(sb(&e.name))
        .with_value(value)
        .with_read_only(e.read_only)
        .with_config_source(e.source as i8)
        .with_is_sensitive(e.sensitive)
        .with_config_type(if version >= 3 { e.ty.code() } else { 0 })
        .with_synonyms(if synonyms {
            e.synonyms
                .iter()
                .map(|(n, v, s)| {
                    DescribeConfigsSynonym::default()
                        .with_name(sb(n))
                        .with_value(v.as_deref().map(sb))
                        .with_source(*s as i8)
                })
                .collect()
        } else {
            vec![]
        })
}

/// A group config as Kafka's `ConfigHelper.createGroupConfigEntry` shows
/// it: one synonym, the override or the default.
fn group_result(
    e: group_configs::GroupConfigEntry,
    synonyms: bool,
    documentation: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(sb(e.name))
        .with_value(Some(sb(&e.value)))
        .with_read_only(false)
        .with_config_source(e.source)
        .with_is_sensitive(false)
        .with_config_type(if version >= 3 { e.ty.code() } else { 0 })
        .with_documentation(if documentation && version >= 3 {
            Some(sb(e.doc))
        } else {
            None
        })
        .with_synonyms(if synonyms {
            vec![DescribeConfigsSynonym::default()
                .with_name(sb(e.name))
                .with_value(Some(sb(&e.value)))
                .with_source(e.source)]
        } else {
            vec![]
        })
}

/// Parses a broker resource name: `""` is the cluster default, else a node id.
pub fn broker_resource(name: &str) -> Result<Option<i32>, String> {
    if name.is_empty() {
        return Ok(None);
    }
    name.parse::<i32>()
        .map(Some)
        .map_err(|_| format!("Broker id must be an integer, but it is: {name}"))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, DescribeConfigs);
    let image = state.image();
    let resolver = TopicConfigResolver {
        static_props: &state.config.props,
        cluster: &image.cluster_configs,
        node: image.broker_configs.get(&state.node_id),
    };
    let mut results = Vec::with_capacity(body.resources.len());
    for r in body.resources {
        let keys: Option<Vec<String>> = r
            .configuration_keys
            .map(|k| k.iter().map(|s| s.to_string()).collect());
        let wanted = |name: &str| keys.as_ref().is_none_or(|k| k.iter().any(|x| x == name));
        let base = DescribeConfigsResult::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        let name = r.resource_name.to_string();
        let result = match r.resource_type {
            RESOURCE_TOPIC => match image.topics.get(&name) {
                None => base
                    // Kafka sends a null message here.
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    .with_error_message(None),
                Some(t) => base.with_configs(
                    TOPIC_CONFIGS
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|d| {
                            to_result(
                                resolver.topic_entry(d, &t.configs),
                                body.include_synonyms,
                                version,
                            )
                        })
                        .collect(),
                ),
            },
            RESOURCE_BROKER => match broker_resource(&name) {
                Err(m) => base
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(sb(&m))),
                Ok(Some(id)) if id != state.node_id => base
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(sb(&format!(
                        "Unexpected broker id, expected {} or empty string, but received {id}",
                        state.node_id
                    )))),
                Ok(None) => base.with_configs(
                    image
                        .cluster_configs
                        .keys()
                        .filter(|k| wanted(k))
                        .filter_map(|k| resolver.broker_entry(k))
                        .map(|mut e| {
                            e.synonyms.retain(|s| {
                                s.2 == crate::config::ConfigSource::DynamicDefaultBroker
                            });
                            e.value = e.synonyms.first().and_then(|s| s.1.clone());
                            e.source = crate::config::ConfigSource::DynamicDefaultBroker;
                            to_result(e, body.include_synonyms, version)
                        })
                        .collect(),
                ),
                Ok(Some(_)) => base.with_configs(
                    broker_defs()
                        // the quota configs only where they are set, as Kafka
                        .chain(BROKER_QUOTA_CONFIGS.iter().filter(|d| {
                            resolver
                                .broker_entry(d.name)
                                .is_some_and(|e| e.source != crate::config::ConfigSource::Default)
                        }))
                        .filter(|d| wanted(d.name))
                        .filter_map(|d| resolver.broker_entry(d.name))
                        .map(|e| to_result(e, body.include_synonyms, version))
                        .collect(),
                ),
            },
            RESOURCE_GROUP if name.is_empty() => base
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(sb("Group name must not be empty"))),
            RESOURCE_GROUP => base.with_configs(
                group_configs::describe(image.group_configs.get(&name), &state.config)
                    .into_iter()
                    .filter(|e| wanted(e.name))
                    .map(|e| {
                        group_result(
                            e,
                            body.include_synonyms,
                            body.include_documentation,
                            version,
                        )
                    })
                    .collect(),
            ),
            other => base
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(sb(&format!("Unsupported resource type {other}")))),
        };
        results.push(result);
    }
    Ok(Some(ResponseKind::DescribeConfigs(
        DescribeConfigsResponse::default().with_results(results),
    )))
}
