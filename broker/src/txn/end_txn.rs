//! Ending transactions on the coordinator (issue 14), as Kafka's
//! `TransactionCoordinator.endTransaction`: EndTxn from a client, the abort
//! of a running transaction when InitProducerId fences its producer, and
//! the abort of a transaction that outlived its timeout. Each writes
//! `PrepareCommit`/`PrepareAbort` (acks=all), answers, then sends the
//! markers ([`super::markers::send_markers`]) and writes
//! `CompleteCommit`/`CompleteAbort`. A coordinator that loads a partition
//! with transactions still in `Prepare*` finishes them the same way.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use tracing::{info, warn};

use super::decisions::{self, EndStep};
use super::decisions_tv2::{self, EndStepTv2};
use super::markers::{send_markers, MarkerJob};
use super::state::{TransactionState, TxnPartition, TxnTransit};
use crate::broker::BrokerState;
use crate::clock::now_ms;

/// A transaction whose markers are to be written, then its completion.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The transactional id.
    pub transactional_id: String,
    /// Markers to write.
    pub job: MarkerJob,
    /// Where.
    pub partitions: BTreeSet<TxnPartition>,
}

/// EndTxn (from a client, or the coordinator's own abort when
/// `from_client` is false): decide, write the `Prepare*` state, then finish
/// the transaction in the background. NONE once the `Prepare*` state is
/// replicated, as Kafka answers.
pub async fn end_txn(
    state: &Arc<BrokerState>,
    tid: &str,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    from_client: bool,
) -> Result<(), i16> {
    let c = &state.txns;
    let epoch = c.check_coordinator(state, tid)?;
    let step = {
        let mut txns = c.lock().await;
        if c.active_epoch(c.partition_for(tid)) != Ok(epoch) {
            return Err(ResponseError::NotCoordinator.code());
        }
        decisions::decide_end_txn(
            txns.ids.get_mut(tid),
            producer_id,
            producer_epoch,
            commit,
            from_client,
            now_ms(),
        )
        .map_err(|e| e.code())?
    };
    let transit = match step {
        EndStep::AlreadyDone => return Ok(()),
        EndStep::Write(t) => t,
    };
    prepare_then_complete(state, tid, epoch, &transit).await
}

/// Writes an EndTxn's `Prepare*` state in coordinator epoch `epoch`, then
/// finishes the transaction (markers, `Complete*`) in the background.
async fn prepare_then_complete(
    state: &Arc<BrokerState>,
    tid: &str,
    epoch: i32,
    transit: &TxnTransit,
) -> Result<(), i16> {
    let c = &state.txns;
    let written = c.write_transit(state, tid, epoch, transit).await;
    c.finish_transit(tid, epoch, transit, written).await?;
    let done = Completion {
        transactional_id: tid.to_string(),
        job: MarkerJob {
            producer_id: transit.producer_id,
            producer_epoch: transit.producer_epoch,
            commit: transit.state == TransactionState::PrepareCommit,
            coordinator_epoch: epoch,
        },
        partitions: transit.partitions.clone(),
    };
    tokio::spawn(complete(state.clone(), done));
    Ok(())
}

/// EndTxn v5 (transaction.version 2) from a client: decide with
/// [`decisions_tv2`], write the `Prepare*` state (the epoch bumped), then
/// finish in the background like [`end_txn`]. Answers the producer id and
/// epoch the client continues with.
pub async fn end_txn_v2(
    state: &Arc<BrokerState>,
    tid: &str,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
) -> Result<(i64, i16), i16> {
    let c = &state.txns;
    let epoch = c.check_coordinator(state, tid)?;
    let needs_pid = {
        let txns = c.lock().await;
        txns.ids
            .get(tid)
            .is_some_and(decisions_tv2::needs_new_producer_id)
    };
    let next_pid = if needs_pid {
        Some(state.allocate_producer_id().await.map_err(|e| e.code)?)
    } else {
        None
    };
    let step = {
        let mut txns = c.lock().await;
        if c.active_epoch(c.partition_for(tid)) != Ok(epoch) {
            return Err(ResponseError::NotCoordinator.code());
        }
        decisions_tv2::decide_end_txn_v2(
            txns.ids.get_mut(tid),
            producer_id,
            producer_epoch,
            commit,
            next_pid,
            now_ms(),
        )
        .map_err(|e| e.code())?
    };
    let transit = match step {
        EndStepTv2::AlreadyDone(pid, e) => return Ok((pid, e)),
        EndStepTv2::Write(t) => t,
    };
    prepare_then_complete(state, tid, epoch, &transit).await?;
    Ok(decisions_tv2::answered_producer(&transit))
}

/// Sends a prepared transaction's markers, then writes its completion,
/// while this broker still coordinates it in the same epoch.
pub async fn complete(state: Arc<BrokerState>, done: Completion) {
    let c = &state.txns;
    let tid = done.transactional_id.as_str();
    let epoch = done.job.coordinator_epoch;
    let p = c.partition_for(tid);
    let owned = || c.active_epoch(p) == Ok(epoch);
    if send_markers(&state, &done.job, &done.partitions, owned)
        .await
        .is_err()
    {
        info!(
            transactional_id = tid,
            "transaction markers abandoned: the coordinator moved on"
        );
        return;
    }
    let prepared = if done.job.commit {
        TransactionState::PrepareCommit
    } else {
        TransactionState::PrepareAbort
    };
    for attempt in 0..50u32 {
        if !owned() {
            return;
        }
        let transit = {
            let mut txns = c.lock().await;
            let Some(meta) = txns.ids.get_mut(tid) else {
                return;
            };
            if meta.state != prepared || meta.producer_id != done.job.producer_id {
                return;
            }
            if meta.pending.is_some() {
                None
            } else {
                match meta.prepare_complete(now_ms()) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        warn!(transactional_id = tid, error = %e, "cannot complete a transaction");
                        return;
                    }
                }
            }
        };
        if let Some(transit) = transit {
            let written = c.write_transit(&state, tid, epoch, &transit).await;
            match c.finish_transit(tid, epoch, &transit, written).await {
                Ok(()) => return,
                Err(code) if code == ResponseError::NotCoordinator.code() => return,
                Err(code) => {
                    warn!(
                        transactional_id = tid,
                        code, attempt, "writing a transaction's completion failed; retrying"
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    warn!(
        transactional_id = tid,
        "gave up completing a transaction; the next coordinator load finishes it"
    );
}

/// Aborts, as the coordinator, the running transaction of `tid` whose
/// epoch fence was prepared (InitProducerId over a running transaction, or
/// a timeout): the markers carry the fence's bumped epoch.
pub async fn abort_fenced(
    state: &Arc<BrokerState>,
    tid: &str,
    producer_id: i64,
    fenced_epoch: i16,
) -> Result<(), i16> {
    let r = end_txn(state, tid, producer_id, fenced_epoch, false, false).await;
    if r.is_err() {
        let mut txns = state.txns.lock().await;
        if let Some(meta) = txns.ids.get_mut(tid) {
            if meta.pending == Some(TransactionState::PrepareEpochFence) {
                meta.abort_pending();
                meta.has_failed_epoch_fence = true;
            }
        }
    }
    r
}

/// Aborts the transactions that outlived their timeout (Kafka's
/// `abortTimedOutTransactions`), every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
pub async fn run_timeouts(state: Arc<BrokerState>) {
    let mut every = super::Every::new(
        &state,
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        10_000,
    );
    while every.tick().await {
        let now = now_ms();
        let fenced: Vec<(String, i64, i16)> = {
            let mut txns = state.txns.lock().await;
            let mut out = Vec::new();
            for (tid, meta) in txns.ids.iter_mut() {
                if !decisions::is_timed_out(meta, now) || meta.is_producer_epoch_exhausted() {
                    continue;
                }
                match meta.prepare_fence_producer_epoch() {
                    Ok(t) => out.push((tid.clone(), t.producer_id, t.producer_epoch)),
                    Err(e) => {
                        warn!(transactional_id = %tid, error = %e, "cannot fence a timed-out transaction")
                    }
                }
            }
            out
        };
        for (tid, pid, epoch) in fenced {
            info!(transactional_id = %tid, producer_id = pid, epoch, "aborting a transaction that timed out");
            if let Err(code) = abort_fenced(&state, &tid, pid, epoch).await {
                warn!(transactional_id = %tid, code, "aborting a timed-out transaction failed");
            }
        }
    }
}
