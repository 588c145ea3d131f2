//! Expiry of idle transactional ids (`transactional.id.expiration.ms`,
//! Kafka's `TransactionStateManager.removeExpiredTransactionalIds`): every
//! `transaction.remove.expired.transaction.cleanup.interval.ms`, an id
//! with no transaction running (Empty, CompleteCommit, CompleteAbort) and
//! no state change for the expiration time is marked Dead, a tombstone for
//! it is written to its `__transaction_state` partition (acks=all, as
//! every transaction log write), and once that is replicated the id is
//! removed: its next InitProducerId starts afresh with a new producer id.
//! While the tombstone is written the id answers CONCURRENT_TRANSACTIONS;
//! a failed write leaves it as it was.

use std::sync::Arc;

use tracing::{info, warn};

use super::decisions;
use super::state::TransactionState;
use crate::broker::BrokerState;
use crate::clock::now_ms;

/// Runs the expiry every
/// `transaction.remove.expired.transaction.cleanup.interval.ms` until
/// shutdown.
pub async fn run(state: Arc<BrokerState>) {
    let mut every = super::Every::new(
        &state,
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        3_600_000,
    );
    while every.tick().await {
        expire_once(&state, now_ms()).await;
    }
}

/// One pass: the ids of loaded partitions due to expire.
pub async fn expire_once(state: &Arc<BrokerState>, now: i64) {
    let coordinator = &state.txns;
    let expiration_ms = coordinator.config.id_expiration_ms;
    let due: Vec<(String, i32, i64, i16)> = {
        let mut txns = coordinator.lock().await;
        let mut out = Vec::new();
        for (tid, meta) in txns.ids.iter_mut() {
            if meta.pending.is_some() || !decisions::should_expire(meta, now, expiration_ms) {
                continue;
            }
            let Ok(epoch) = coordinator.active_epoch(coordinator.partition_for(tid)) else {
                continue;
            };
            meta.pending = Some(TransactionState::Dead);
            out.push((tid.clone(), epoch, meta.producer_id, meta.producer_epoch));
        }
        out
    };
    for (tid, epoch, pid, producer_epoch) in due {
        let written = coordinator.write_tombstone(state, &tid, epoch).await;
        let mut txns = coordinator.lock().await;
        let still_ours = coordinator.active_epoch(coordinator.partition_for(&tid)) == Ok(epoch);
        let Some(meta) = txns.ids.get_mut(&tid) else {
            continue;
        };
        if written.is_ok() && still_ours && meta.pending == Some(TransactionState::Dead) {
            txns.ids.remove(&tid);
            info!(transactional_id = %tid, producer_id = pid, producer_epoch, "expired an idle transactional id");
        } else {
            meta.pending = None;
            if let Err(code) = written {
                warn!(transactional_id = %tid, code, "writing the tombstone of an expired transactional id failed");
            }
        }
    }
}
