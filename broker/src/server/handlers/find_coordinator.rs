//! FindCoordinator: the broker leading a group's `__consumer_offsets`
//! partition, or a transactional id's `__transaction_state` partition
//! (single key, or batched keys at v4+).
//!
//! Transactions are not served yet (`txn::TRANSACTIONS_ENABLED`): a
//! TRANSACTION key is refused with
//! UNSUPPORTED_VERSION and a message saying so. The Java producer treats any
//! non-retriable FindCoordinator error other than the authorization and
//! abortable ones as fatal and shows the broker's message, so
//! `initTransactions()` fails at once; the retriable COORDINATOR_NOT_AVAILABLE
//! made every client retry forever. (librdkafka retries every FindCoordinator
//! error but the authorization ones, which would lie about the cause; its
//! `init_transactions()` still ends at its timeout.)

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorResponse, ResponseKind};

use super::{broker, sb};
use crate::body;
use crate::broker::BrokerState;
use crate::group::OFFSETS_TOPIC;
use crate::server::dispatch::{HandlerFuture, Request};
use crate::txn::loader::TRANSACTION_STATE_TOPIC;

/// Why a transactional client is refused, as the Java producer shows it.
pub const TRANSACTIONS_UNSUPPORTED: &str = "Transactions are not supported by this broker \
(Runnel does not implement the transaction coordinator yet): remove transactional.id, or use \
processing.guarantee=at_least_once in Kafka Streams; an idempotent producer \
(enable.idempotence=true) is supported";

/// Handles FindCoordinator.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

/// (error code, message, node id, host, port) for one key.
async fn lookup(
    state: &BrokerState,
    key: &str,
    key_type: i8,
) -> (i16, Option<String>, i32, String, i32) {
    let none = |code: ResponseError, msg: &str| {
        (code.code(), Some(msg.to_string()), -1, String::new(), -1)
    };
    let txn = match key_type {
        0 => false,
        1 if !crate::txn::TRANSACTIONS_ENABLED => {
            tracing::debug!(
                transactional_id = key,
                "FindCoordinator(TRANSACTION) refused: no transactions"
            );
            return none(ResponseError::UnsupportedVersion, TRANSACTIONS_UNSUPPORTED);
        }
        1 => true,
        _ => {
            return none(
                ResponseError::InvalidRequest,
                "unsupported coordinator key type",
            )
        }
    };
    if key.is_empty() {
        return none(
            ResponseError::InvalidRequest,
            if txn {
                "the transactional id must not be empty"
            } else {
                "the group id must not be empty"
            },
        );
    }
    let (topic, p) = if txn {
        if let Err(e) = state.txns.ensure_state_topic(state).await {
            return (e.code, e.message, -1, String::new(), -1);
        }
        (TRANSACTION_STATE_TOPIC, state.txns.partition_for(key))
    } else {
        if let Err(e) = state.groups.ensure_offsets_topic(state).await {
            return (e.code, e.message, -1, String::new(), -1);
        }
        (OFFSETS_TOPIC, state.groups.partition_for(key))
    };
    let image = state.image();
    let leader = image
        .topics
        .get(topic)
        .and_then(|t| t.partitions.get(p as usize))
        .map(|pi| pi.leader);
    match leader
        .and_then(|l| image.brokers.get(&l))
        .and_then(|b| b.endpoints.first().map(|e| (b.node_id, e)))
    {
        Some((id, ep)) => (0, None, id, ep.host.clone(), i32::from(ep.port)),
        None => none(
            ResponseError::CoordinatorNotAvailable,
            "The coordinator is not available.",
        ),
    }
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, FindCoordinator);
    if version >= 4 {
        let mut coordinators = Vec::with_capacity(body.coordinator_keys.len());
        for k in &body.coordinator_keys {
            let (code, msg, id, host, port) = lookup(&state, k.as_str(), body.key_type).await;
            coordinators.push(
                Coordinator::default()
                    .with_key(k.clone())
                    .with_error_code(code)
                    .with_error_message(msg.as_deref().map(sb))
                    .with_node_id(broker(id))
                    .with_host(sb(&host))
                    .with_port(port),
            );
        }
        return Ok(Some(ResponseKind::FindCoordinator(
            FindCoordinatorResponse::default().with_coordinators(coordinators),
        )));
    }
    let (code, msg, id, host, port) = lookup(&state, body.key.as_str(), body.key_type).await;
    let mut resp = FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(broker(id))
        .with_host(sb(&host))
        .with_port(port);
    if version >= 1 {
        resp = resp.with_error_message(msg.as_deref().map(sb));
    }
    Ok(Some(ResponseKind::FindCoordinator(resp)))
}
