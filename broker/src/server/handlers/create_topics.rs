//! CreateTopics: validate-only, configs, explicit assignments.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsResponse, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::config::defs::TOPIC_CONFIGS;
use crate::config::TopicConfigResolver;
use crate::controller::NewTopic;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles CreateTopics.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, CreateTopics);
    let new: Vec<NewTopic> = body
        .topics
        .iter()
        .map(|t| NewTopic {
            name: t.name.0.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect(),
            configs: t
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect::<BTreeMap<_, _>>(),
        })
        .collect();
    let results = state
        .controller
        .create_topics(new.clone(), body.validate_only)
        .await;
    state.catch_up().await;
    let image = state.image();
    let resolver = TopicConfigResolver {
        static_props: &state.config.props,
        cluster: &image.cluster_configs,
        node: image.broker_configs.get(&state.node_id),
    };
    let topics = new
        .iter()
        .zip(results)
        .map(|(t, r)| {
            let base = CreatableTopicResult::default().with_name(super::topic_name(&t.name));
            match r {
                Ok(created) => {
                    let configs = (version >= 5).then(|| {
                        TOPIC_CONFIGS
                            .iter()
                            .map(|d| {
                                let e = resolver.topic_entry(d, &t.configs);
                                CreatableTopicConfigs::default()
                                    .with_name(sb(&e.name))
                                    .with_value(e.value.as_deref().map(sb))
                                    .with_read_only(e.read_only)
                                    .with_config_source(e.source as i8)
                                    .with_is_sensitive(e.sensitive)
                            })
                            .collect()
                    });
                    // As Kafka 4.1, validate_only answers with the (throwaway)
                    // id it drew too, never the nil UUID.
                    base.with_topic_id(created.topic_id)
                        .with_num_partitions(created.num_partitions)
                        .with_replication_factor(created.replication_factor)
                        .with_configs(configs)
                }
                Err(e) => base
                    .with_error_code(e.code)
                    .with_error_message(e.message.as_deref().map(sb))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            }
        })
        .collect();
    Ok(Some(ResponseKind::CreateTopics(
        CreateTopicsResponse::default().with_topics(topics),
    )))
}
