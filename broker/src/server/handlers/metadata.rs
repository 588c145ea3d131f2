//! Metadata: brokers, topics and partition leadership, with topic
//! auto-creation when enabled.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataResponse, ResponseKind};
use uuid::Uuid;

use super::{broker, is_internal, sb, topic_name};
use crate::body;
use crate::broker::BrokerState;
use crate::controller::NewTopic;
use crate::metadata::{ClusterImage, TopicImage};
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles Metadata.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

/// Builds the response entry of one topic.
pub fn topic_entry(t: &TopicImage, image: &ClusterImage) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let offline: Vec<i32> = p
                .replicas
                .iter()
                .copied()
                // Not registered, or fenced: not alive to clients.
                .filter(|r| image.brokers.get(r).is_none_or(|b| b.fenced))
                .collect();
            MetadataResponsePartition::default()
                .with_error_code(if p.leader < 0 {
                    ResponseError::LeaderNotAvailable.code()
                } else {
                    0
                })
                .with_partition_index(i as i32)
                .with_leader_id(broker(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(broker).collect())
                .with_isr_nodes(p.isr.iter().copied().map(broker).collect())
                .with_offline_replicas(offline.into_iter().map(broker).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&t.name)))
        .with_topic_id(t.topic_id)
        .with_is_internal(is_internal(&t.name))
        .with_partitions(partitions)
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, Metadata);
    let auto_create =
        body.allow_auto_topic_creation && state.config.get_bool("auto.create.topics.enable", true);
    let mut image = state.image();
    // (name or id) requested; None means all topics.
    let requested: Option<Vec<(Option<String>, Uuid)>> = match body.topics {
        None => None,
        Some(ts) if ts.is_empty() && version == 0 => None,
        Some(ts) => Some(
            ts.into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    if let Some(req_topics) = &requested {
        let missing: Vec<String> = req_topics
            .iter()
            .filter_map(|(n, _)| n.clone())
            .filter(|n| !image.topics.contains_key(n))
            .collect();
        if auto_create && !missing.is_empty() {
            let new: Vec<NewTopic> = missing
                .iter()
                .filter(|n| crate::controller::validate_topic_name(n).is_ok())
                .map(|n| NewTopic {
                    name: n.clone(),
                    num_partitions: -1,
                    replication_factor: -1,
                    assignments: vec![],
                    configs: BTreeMap::new(),
                })
                .collect();
            if !new.is_empty() {
                for (t, r) in new
                    .iter()
                    .zip(state.controller.create_topics(new.clone(), false).await)
                {
                    match r {
                        Ok(_) => tracing::info!(topic = %t.name, "auto-created topic"),
                        Err(e) if e.code == ResponseError::TopicAlreadyExists.code() => {}
                        Err(e) => {
                            tracing::warn!(topic = %t.name, error = %e, "topic auto-creation failed")
                        }
                    }
                }
                state.catch_up().await;
                image = state.image();
            }
        }
    }
    let topics: Vec<MetadataResponseTopic> = match requested {
        None => image
            .topics
            .values()
            .map(|t| topic_entry(t, &image))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|(name, id)| {
                let found = match &name {
                    Some(n) => image.topics.get(n),
                    None => image.topic_by_id(&id),
                };
                match found {
                    Some(t) => topic_entry(t, &image),
                    None => {
                        let code = match &name {
                            Some(n) if crate::controller::validate_topic_name(n).is_err() => {
                                ResponseError::InvalidTopicException
                            }
                            Some(_) => ResponseError::UnknownTopicOrPartition,
                            None => ResponseError::UnknownTopicId,
                        };
                        MetadataResponseTopic::default()
                            .with_error_code(code.code())
                            .with_name(name.as_deref().map(topic_name))
                            .with_topic_id(id)
                    }
                }
            })
            .collect(),
    };
    let brokers = image
        .client_brokers(state.stopping_self())
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(broker(b.node_id))
                .with_host(sb(b.host))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.map(sb))
        })
        .collect();
    let controller = image.client_visible_controller(state.node_id);
    Ok(Some(ResponseKind::Metadata(
        MetadataResponse::default()
            .with_brokers(brokers)
            .with_cluster_id(Some(sb(&state.cluster_id)))
            .with_controller_id(broker(controller))
            .with_topics(topics),
    )))
}
