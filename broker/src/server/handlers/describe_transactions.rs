//! DescribeTransactions: the state of transactional ids this broker
//! coordinates (`kafka-transactions describe`), as Kafka's
//! `TransactionCoordinator.handleDescribeTransactions`: NOT_COORDINATOR or
//! COORDINATOR_LOAD_IN_PROGRESS for ids coordinated elsewhere or still
//! loading, TRANSACTIONAL_ID_NOT_FOUND for unknown (or dead) ids.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsResponse, ProducerId, ResponseKind};

use super::{sb, topic_name};
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles DescribeTransactions.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, DescribeTransactions);
    let mut out = Vec::with_capacity(body.transactional_ids.len());
    for tid in body.transactional_ids {
        let base = TransactionState::default()
            .with_transactional_id(tid.clone())
            .with_transaction_state(sb(""))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1);
        if let Err(code) = state.txns.check_coordinator(&state, tid.as_str()) {
            out.push(base.with_error_code(code));
            continue;
        }
        let txns = state.txns.lock().await;
        let Some(m) = txns
            .ids
            .get(tid.as_str())
            .filter(|m| m.state != crate::txn::TransactionState::Dead)
        else {
            out.push(base.with_error_code(ResponseError::TransactionalIdNotFound.code()));
            continue;
        };
        let mut topics: Vec<TopicData> = Vec::new();
        for (t, p) in &m.partitions {
            match topics.last_mut() {
                Some(last) if last.topic.as_str() == t.as_str() => last.partitions.push(*p),
                _ => topics.push(
                    TopicData::default()
                        .with_topic(topic_name(t))
                        .with_partitions(vec![*p]),
                ),
            }
        }
        out.push(
            base.with_transaction_state(sb(m.state.name()))
                .with_transaction_timeout_ms(m.txn_timeout_ms)
                .with_transaction_start_time_ms(m.start_timestamp_ms)
                .with_producer_id(ProducerId(m.producer_id))
                .with_producer_epoch(m.producer_epoch)
                .with_topics(topics),
        );
    }
    Ok(Some(ResponseKind::DescribeTransactions(
        DescribeTransactionsResponse::default().with_transaction_states(out),
    )))
}
