//! DescribeQuorum: the metadata quorum (`__cluster_metadata-0`) as its
//! leader sees it, for `kafka-metadata-quorum describe --status` and
//! `--replication`. Any broker answers by asking the active controller.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{DescribeQuorumResponse, ResponseKind};

use super::{broker, sb, topic_name};
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// The metadata log's topic name.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// Handles DescribeQuorum.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    // v0 has no timestamps (v1+), no error messages and no nodes (v2+):
    // setting them makes the response unencodable at that version.
    let version = req.version;
    let body = body!(req, DescribeQuorum);
    let asks_metadata = body.topics.len() == 1
        && body.topics[0].topic_name.0.as_str() == METADATA_TOPIC
        && body.topics[0].partitions.len() == 1
        && body.topics[0].partitions[0].partition_index == 0;
    if !asks_metadata {
        // Kafka's answer for anything but __cluster_metadata-0.
        return Ok(Some(ResponseKind::DescribeQuorum(
            DescribeQuorumResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(
                    (version >= 2).then(|| sb("DescribeQuorum only serves __cluster_metadata-0")),
                ),
        )));
    }
    let status = match state.controller.describe_quorum().await {
        Ok(s) => s,
        Err(e) => {
            return Ok(Some(ResponseKind::DescribeQuorum(
                DescribeQuorumResponse::default()
                    .with_error_code(e.code)
                    .with_error_message(e.message.as_deref().filter(|_| version >= 2).map(sb)),
            )))
        }
    };
    let listener = state
        .config
        .controller_listener_names
        .first()
        .cloned()
        .unwrap_or_else(|| "CONTROLLER".into());
    let now = crate::clock::now_ms();
    let replica = |v: &crate::metadata::VoterStatus| {
        let caught_up = v.log_end >= status.high_watermark;
        let r = ReplicaState::default()
            .with_replica_id(broker(v.node_id))
            .with_log_end_offset(v.log_end);
        // v2+ carries directory ids (KIP-853); none: Kafka's ZERO_UUID.
        let r = if version >= 2 {
            r.with_replica_directory_id(v.directory_id.unwrap_or_default())
        } else {
            r
        };
        if version < 1 {
            // v0 has no fetch timestamps: setting them fails the encode
            return r;
        }
        r.with_last_fetch_timestamp(if v.log_end >= 0 { now } else { -1 })
            .with_last_caught_up_timestamp(if caught_up { now } else { -1 })
    };
    let voters = status.voters.iter().map(replica).collect();
    let observers = status.observers.iter().map(replica).collect();
    let nodes = status
        .voters
        .iter()
        .filter_map(|v| {
            if !v.endpoints.is_empty() {
                // A dynamic voter: the listeners AddRaftVoter gave.
                let listeners = v
                    .endpoints
                    .iter()
                    .map(|(name, host, port)| {
                        Listener::default()
                            .with_name(sb(name))
                            .with_host(sb(host))
                            .with_port(*port)
                    })
                    .collect();
                return Some(
                    Node::default()
                        .with_node_id(broker(v.node_id))
                        .with_listeners(listeners),
                );
            }
            let (host, port) = v.addr.rsplit_once(':')?;
            let port: u16 = port.parse().ok()?;
            Some(
                Node::default()
                    .with_node_id(broker(v.node_id))
                    .with_listeners(vec![Listener::default()
                        .with_name(sb(&listener))
                        .with_host(sb(host))
                        .with_port(port)]),
            )
        })
        .collect();
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(broker(status.leader.unwrap_or(-1)))
        .with_leader_epoch(i32::try_from(status.term).unwrap_or(i32::MAX))
        .with_high_watermark(status.high_watermark)
        .with_current_voters(voters)
        .with_observers(observers);
    Ok(Some(ResponseKind::DescribeQuorum(
        DescribeQuorumResponse::default()
            .with_topics(vec![TopicData::default()
                .with_topic_name(topic_name(METADATA_TOPIC))
                .with_partitions(vec![partition])])
            .with_nodes(if version >= 2 { nodes } else { Vec::new() }),
    )))
}
