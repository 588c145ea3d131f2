//! ConsumerGroupDescribe: KIP-848 groups with members, assignments and
//! target assignments.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeResponse, ResponseKind};
use uuid::Uuid;

use super::{sb, topic_name};
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles ConsumerGroupDescribe.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

fn assignment(a: &BTreeMap<Uuid, Vec<i32>>, image: &crate::metadata::ClusterImage) -> Assignment {
    Assignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, ps)| {
                let name = image
                    .topic_by_id(id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(topic_name(&name))
                    .with_partitions(ps.clone())
            })
            .collect(),
    )
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, ConsumerGroupDescribe);
    let image = state.image();
    let mut out = Vec::with_capacity(body.group_ids.len());
    for gid in body.group_ids {
        let id = gid.0.to_string();
        let base = DescribedGroup::default().with_group_id(gid.clone());
        if let Err(code) = state.groups.check_coordinator(&state, &id) {
            out.push(base.with_error_code(code));
            continue;
        }
        let groups = state.groups.lock().await;
        let Some(g) = groups.consumer.get(&id) else {
            let msg = if groups.classic.contains_key(&id) {
                format!("Group {id} is not a consumer group.")
            } else {
                format!("Group {id} not found.")
            };
            out.push(
                base.with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(sb(&msg))),
            );
            continue;
        };
        let members = g
            .members()
            .map(|m| {
                Member::default()
                    .with_member_id(sb(&m.member_id))
                    .with_instance_id(m.instance_id.as_deref().map(sb))
                    .with_rack_id(m.rack_id.as_deref().map(sb))
                    .with_member_epoch(m.member_epoch)
                    .with_client_id(sb(&m.client_id))
                    .with_client_host(sb(&m.client_host))
                    .with_subscribed_topic_names(
                        m.subscribed_topic_names
                            .iter()
                            .map(|t| topic_name(t))
                            .collect(),
                    )
                    .with_subscribed_topic_regex(m.subscribed_topic_regex.as_deref().map(sb))
                    .with_assignment(assignment(&m.assigned, &image))
                    .with_target_assignment(assignment(&m.target, &image))
            })
            .collect();
        out.push(
            base.with_group_state(sb(g.state_name()))
                .with_group_epoch(g.group_epoch())
                .with_assignment_epoch(g.assignment_epoch())
                .with_assignor_name(sb(&g.preferred_assignor(&state.groups.config.consumer)))
                .with_members(members),
        );
    }
    Ok(Some(ResponseKind::ConsumerGroupDescribe(
        ConsumerGroupDescribeResponse::default().with_groups(out),
    )))
}
