//! ConsumerGroupHeartbeat: the KIP-848 consumer protocol (join, reconcile,
//! leave), with server-side assignment.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatResponse, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::group::consumer::{ConsumerGroup, HeartbeatRequest, TopicMeta};
use crate::group::group_configs;
use crate::metadata::ClusterImage;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles ConsumerGroupHeartbeat.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

/// The topic metadata the assignors work from: every topic, internal ones
/// included (Kafka matches regexes against, and assigns, any topic of the
/// metadata image, `__consumer_offsets` too).
pub fn topic_metas(image: &ClusterImage) -> BTreeMap<String, TopicMeta> {
    image
        .topics
        .values()
        .map(|t| {
            (
                t.name.clone(),
                TopicMeta {
                    id: t.topic_id,
                    name: t.name.clone(),
                    partitions: t.partitions.len() as i32,
                },
            )
        })
        .collect()
}

fn error(code: i16, message: Option<String>) -> Result<Option<ResponseKind>, String> {
    Ok(Some(ResponseKind::ConsumerGroupHeartbeat(
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code)
            .with_error_message(message.as_deref().map(sb)),
    )))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let peer = req.peer;
    let version = req.version;
    let client_id = req
        .header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let body = body!(req, ConsumerGroupHeartbeat);
    let group_id = body.group_id.0.to_string();
    if let Err(code) = state.groups.check_coordinator(&state, &group_id) {
        return error(code, None);
    }
    if version >= 1 && body.member_id.is_empty() {
        // From v1 the client generates its member id (KIP-1082).
        return error(
            ResponseError::InvalidRequest.code(),
            Some("MemberId can't be empty.".into()),
        );
    }
    let image = state.image();
    let topics = topic_metas(&image);
    let hb = HeartbeatRequest {
        member_id: body.member_id.to_string(),
        instance_id: body.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: body.rack_id.as_ref().map(|s| s.to_string()),
        member_epoch: body.member_epoch,
        rebalance_timeout_ms: body.rebalance_timeout_ms,
        subscribed_topic_names: body
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.0.to_string()).collect()),
        subscribed_topic_regex: body.subscribed_topic_regex.as_ref().map(|s| s.to_string()),
        server_assignor: body.server_assignor.as_ref().map(|s| s.to_string()),
        owned_partitions: body.topic_partitions.as_ref().map(|tps| {
            tps.iter()
                .map(|tp| (tp.topic_id, tp.partitions.clone()))
                .collect()
        }),
        client_id,
        client_host: format!("/{}", peer.ip()),
    };
    // The broker's settings with the group's own overrides (GROUP configs).
    let cfg = group_configs::consumer_config(
        &state.groups.config.consumer,
        image.group_configs.get(&group_id),
    );
    drop(image);
    let write = state.groups.writer(&state, &group_id);
    let resp = {
        let mut groups = state.groups.lock().await;
        if let Some(cg) = groups.classic.get(&group_id) {
            if !cg.members.is_empty() {
                return error(
                    ResponseError::GroupIdNotFound.code(),
                    Some(format!("Group {group_id} is not a consumer group.")),
                );
            }
            // An empty classic group (or offsets-only group) becomes a consumer group.
            groups.classic.remove(&group_id);
        }
        let mut created = false;
        if !groups.consumer.contains_key(&group_id) {
            if body.member_epoch != 0 {
                return error(
                    ResponseError::GroupIdNotFound.code(),
                    Some(format!("Group {group_id} not found.")),
                );
            }
            groups
                .consumer
                .insert(group_id.clone(), ConsumerGroup::new(&group_id));
            created = true;
        }
        let Some(g) = groups.consumer.get_mut(&group_id) else {
            return error(ResponseError::CoordinatorNotAvailable.code(), None);
        };
        let before = g.clone();
        let resp = g.heartbeat(hb, &topics, Instant::now(), &cfg, || {
            uuid::Uuid::new_v4().to_string()
        });
        // The change counts only once its records are stored, as in Kafka.
        if let Err(code) = state
            .groups
            .persist_consumer(&write, &mut groups, &group_id)
        {
            if created {
                groups.consumer.remove(&group_id);
            } else {
                groups.consumer.insert(group_id.clone(), before);
            }
            return error(code, None);
        }
        resp
    };
    // Answered once what the heartbeat stored is replicated (Kafka's write
    // operation completes at the high watermark).
    if let Err(code) = write.replicated().await {
        return error(code, None);
    }
    Ok(Some(ResponseKind::ConsumerGroupHeartbeat(
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(resp.error_code)
            .with_error_message(resp.error_message.as_deref().map(sb))
            .with_member_id(resp.member_id.as_deref().map(sb))
            .with_member_epoch(resp.member_epoch)
            .with_heartbeat_interval_ms(resp.heartbeat_interval_ms)
            .with_assignment(resp.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(id, ps)| {
                            TopicPartitions::default()
                                .with_topic_id(id)
                                .with_partitions(ps)
                        })
                        .collect(),
                )
            })),
    )))
}
