//! ListTransactions (v0–v1): the transactional ids this broker coordinates
//! (`kafka-transactions list` asks every broker), filtered by state,
//! producer id and (v1) how long they have been running, as Kafka's
//! `TransactionStateManager.listTransactionStates`. Unknown state names
//! come back in `unknown_state_filters` and match nothing.

use std::sync::Arc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsResponse, ProducerId, ResponseKind};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::clock::now_ms;
use crate::server::dispatch::{HandlerFuture, Request};
use crate::txn::TransactionState as S;

/// Handles ListTransactions.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, ListTransactions);
    let mut states = Vec::new();
    let mut unknown = Vec::new();
    for f in &body.state_filters {
        match S::ALL.iter().find(|s| s.name() == f.as_str()) {
            Some(s) => states.push(*s),
            None => unknown.push(f.clone()),
        }
    }
    let resp = ListTransactionsResponse::default().with_unknown_state_filters(unknown.clone());
    // Only unknown states asked for: nothing can match.
    if !unknown.is_empty() && states.is_empty() {
        return Ok(Some(ResponseKind::ListTransactions(resp)));
    }
    let pids: Vec<i64> = body.producer_id_filters.iter().map(|p| p.0).collect();
    let now = now_ms();
    let txns = state.txns.lock().await;
    let mut out: Vec<TransactionState> = txns
        .ids
        .iter()
        .filter(|(tid, _)| {
            let p = state.txns.partition_for(tid);
            state.txns.active_epoch(p).is_ok()
        })
        .filter(|(_, m)| m.state != S::Dead)
        .filter(|(_, m)| states.is_empty() || states.contains(&m.state))
        .filter(|(_, m)| pids.is_empty() || pids.contains(&m.producer_id))
        .filter(|(_, m)| {
            body.duration_filter < 0
                || (m.state == S::Ongoing
                    && m.start_timestamp_ms >= 0
                    && now - m.start_timestamp_ms >= body.duration_filter)
        })
        .map(|(tid, m)| {
            TransactionState::default()
                .with_transactional_id(sb(tid).into())
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(sb(m.state.name()))
        })
        .collect();
    out.sort_by(|a, b| a.transactional_id.as_str().cmp(b.transactional_id.as_str()));
    Ok(Some(ResponseKind::ListTransactions(
        resp.with_transaction_states(out),
    )))
}
