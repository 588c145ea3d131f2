//! DescribeProducers (v0, KIP-664): the active producers of partitions this
//! broker leads, as their producer state holds them (`kafka-transactions
//! describe-producers`). A partition led elsewhere is
//! NOT_LEADER_OR_FOLLOWER, an unknown one UNKNOWN_TOPIC_OR_PARTITION, as
//! Kafka's `ReplicaManager.activeProducerState`.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersResponse, ProducerId, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles DescribeProducers.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, DescribeProducers);
    let image = state.image();
    let topics = body
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&i| {
                    let res = PartitionResponse::default().with_partition_index(i);
                    match state.replicas.leader_of(&image, &name, i) {
                        Ok(p) => res.with_active_producers(
                            p.active_producers()
                                .into_iter()
                                .map(|e| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(e.producer_id))
                                        .with_producer_epoch(i32::from(e.epoch))
                                        .with_last_sequence(e.last_sequence)
                                        .with_last_timestamp(e.timestamp)
                                        .with_coordinator_epoch(e.coordinator_epoch)
                                        .with_current_txn_start_offset(e.current_txn_first_offset)
                                })
                                .collect(),
                        ),
                        Err(e) => res
                            .with_error_code(e.code)
                            .with_error_message(e.message.map(Into::into)),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    Ok(Some(ResponseKind::DescribeProducers(
        DescribeProducersResponse::default().with_topics(topics),
    )))
}
