//! What the transaction coordinator does with InitProducerId,
//! AddPartitionsToTxn and EndTxn for one transactional id, as Kafka's
//! `TransactionCoordinator.handle*` decide it, before any log write.
//!
//! Each function looks at (and, through the state machine's `prepare_*`,
//! marks pending) the id's [`TransactionMetadata`] and returns either the
//! transit to write to `__transaction_state` or the Kafka error to answer.
//! They cover clients below `transaction.version` 2 (no epoch bump at
//! EndTxn, KIP-890 part 2): the broker must not advertise EndTxn v5 or
//! `transaction.version` 2 while only these rules are implemented.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;

use super::state::{
    TransactionMetadata, TransactionState, TxnPartition, TxnStateError, TxnTransit,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};
use TransactionState::*;

/// What InitProducerId does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Write this transit; once replicated, answer its producer id and
    /// epoch.
    Write(TxnTransit),
    /// A transaction is running: this epoch fence was prepared. Abort the
    /// transaction with [`decide_end_txn`] (`from_client` = false, the
    /// fence's epoch), then answer CONCURRENT_TRANSACTIONS so the client
    /// retries and gets a fresh epoch.
    FenceAndAbort(TxnTransit),
}

/// What EndTxn does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// Write this `PrepareCommit`/`PrepareAbort` transit, then send the
    /// markers, then write `CompleteCommit`/`CompleteAbort`.
    Write(TxnTransit),
    /// A retry of an EndTxn that already completed: answer NONE.
    AlreadyDone,
}

fn internal(e: TxnStateError) -> ResponseError {
    // The checks before each prepare rule these out; reaching one is a bug
    // the caller logs.
    match e {
        TxnStateError::ProducerFenced => ResponseError::ProducerFenced,
        TxnStateError::Pending { .. } => ResponseError::ConcurrentTransactions,
        _ => ResponseError::UnknownServerError,
    }
}

/// Kafka's `validateTransactionTimeoutMs`.
pub fn valid_timeout(txn_timeout_ms: i32, max_timeout_ms: i32) -> bool {
    txn_timeout_ms > 0 && txn_timeout_ms <= max_timeout_ms
}

/// Checks an InitProducerId request before the id's metadata is looked up
/// (empty id: INVALID_REQUEST; timeout over `transaction.max.timeout.ms`:
/// INVALID_TRANSACTION_TIMEOUT).
pub fn check_init_request(
    transactional_id: &str,
    txn_timeout_ms: i32,
    max_timeout_ms: i32,
) -> Result<(), ResponseError> {
    if transactional_id.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    if !valid_timeout(txn_timeout_ms, max_timeout_ms) {
        return Err(ResponseError::InvalidTransactionTimeout);
    }
    Ok(())
}

/// InitProducerId for an id whose metadata exists (a new id gets
/// [`TransactionMetadata::new`] with a fresh producer id first).
/// `expected` is the request's (producer id, epoch) when it is not (-1, -1).
/// `new_producer_id` allocates a producer id when the epoch is exhausted.
pub fn decide_init_producer_id(
    meta: &mut TransactionMetadata,
    txn_timeout_ms: i32,
    expected: Option<(i64, i16)>,
    now_ms: i64,
    new_producer_id: impl FnOnce() -> Result<i64, ResponseError>,
) -> Result<InitStep, ResponseError> {
    if meta.pending.is_some() {
        return Err(ResponseError::ConcurrentTransactions);
    }
    let valid_pid = |(pid, epoch): (i64, i16)| {
        meta.producer_epoch == NO_PRODUCER_EPOCH
            || pid == meta.producer_id
            || (pid == meta.previous_producer_id && super::state::is_epoch_exhausted(epoch))
    };
    if !expected.is_none_or(valid_pid) {
        return Err(ResponseError::ProducerFenced);
    }
    match meta.state {
        PrepareAbort | PrepareCommit => Err(ResponseError::ConcurrentTransactions),
        CompleteAbort | CompleteCommit | Empty => {
            let transit = if meta.is_producer_epoch_exhausted()
                && expected.is_none_or(|(_, e)| e == meta.producer_epoch)
            {
                let pid = new_producer_id()?;
                meta.prepare_producer_id_rotation(pid, txn_timeout_ms, now_ms, expected.is_some())
            } else {
                meta.prepare_increment_producer_epoch(
                    txn_timeout_ms,
                    expected.map(|(_, e)| e),
                    now_ms,
                )
            };
            transit.map(InitStep::Write).map_err(internal)
        }
        Ongoing => meta
            .prepare_fence_producer_epoch()
            .map(InitStep::FenceAndAbort)
            .map_err(internal),
        Dead | PrepareEpochFence => Err(ResponseError::UnknownServerError),
    }
}

/// AddPartitionsToTxn (client form, v0–v3). `Ok(None)`: every partition is
/// already in the running transaction, answer NONE without a write.
pub fn decide_add_partitions(
    meta: Option<&mut TransactionMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &BTreeSet<TxnPartition>,
    now_ms: i64,
    client_transaction_version: i16,
) -> Result<Option<TxnTransit>, ResponseError> {
    let meta = meta.ok_or(ResponseError::InvalidProducerIdMapping)?;
    if meta.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if meta.producer_epoch != producer_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    if meta.pending.is_some() || matches!(meta.state, PrepareCommit | PrepareAbort) {
        return Err(ResponseError::ConcurrentTransactions);
    }
    if meta.state == Ongoing && partitions.is_subset(&meta.partitions) {
        return Ok(None);
    }
    meta.prepare_add_partitions_as(
        partitions.iter().cloned(),
        now_ms,
        client_transaction_version,
    )
    .map(Some)
    .map_err(internal)
}

/// EndTxn from a client (`from_client`) or the coordinator's own abort of a
/// fenced or timed-out transaction.
pub fn decide_end_txn(
    meta: Option<&mut TransactionMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    from_client: bool,
    now_ms: i64,
) -> Result<EndStep, ResponseError> {
    let meta = meta.ok_or(ResponseError::InvalidProducerIdMapping)?;
    if meta.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    // A fence's bumped epoch is only in its pending transit so far.
    let fencing = meta.pending == Some(PrepareEpochFence);
    let valid_epoch = (!from_client || producer_epoch == meta.producer_epoch)
        && (producer_epoch >= meta.producer_epoch);
    if !valid_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    if meta.pending.is_some() && !fencing {
        return Err(ResponseError::ConcurrentTransactions);
    }
    let invalid = Err(ResponseError::InvalidTxnState);
    match (meta.state, commit) {
        (Ongoing, _) => {
            let next = if commit { PrepareCommit } else { PrepareAbort };
            if fencing {
                if commit {
                    return Err(ResponseError::ConcurrentTransactions);
                }
                meta.pending = None;
                meta.producer_epoch = producer_epoch;
                meta.last_producer_epoch = NO_PRODUCER_EPOCH;
            }
            meta.prepare_abort_or_commit(next, 0, NO_PRODUCER_ID, now_ms)
                .map(EndStep::Write)
                .map_err(internal)
        }
        (CompleteCommit, true) | (CompleteAbort, false) => Ok(EndStep::AlreadyDone),
        (PrepareCommit, true) | (PrepareAbort, false) => Err(ResponseError::ConcurrentTransactions),
        (CompleteCommit | CompleteAbort | PrepareCommit | PrepareAbort | Empty, _) => invalid,
        (Dead | PrepareEpochFence, _) => Err(ResponseError::UnknownServerError),
    }
}

/// Whether a running transaction outlived its timeout and the coordinator
/// must abort it (Kafka's `timedOutTransactions`: `Ongoing`, nothing
/// pending, start + timeout < now). The abort is a fence
/// ([`TransactionMetadata::prepare_fence_producer_epoch`]) followed by
/// [`decide_end_txn`] with `from_client` = false, as for InitProducerId.
pub fn is_timed_out(meta: &TransactionMetadata, now_ms: i64) -> bool {
    meta.pending.is_none()
        && meta.state == Ongoing
        && meta
            .start_timestamp_ms
            .saturating_add(i64::from(meta.txn_timeout_ms))
            < now_ms
}

/// Whether an idle transactional id expires
/// (`transactional.id.expiration.ms`; Kafka's `shouldExpire`): it is then
/// moved to `Dead` and a tombstone is written for it.
pub fn should_expire(meta: &TransactionMetadata, now_ms: i64, expiration_ms: i64) -> bool {
    meta.state.is_expiration_allowed()
        && meta.last_update_timestamp_ms <= now_ms.saturating_sub(expiration_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(list: &[(&str, i32)]) -> BTreeSet<TxnPartition> {
        list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
    }

    fn no_pid() -> Result<i64, ResponseError> {
        Err(ResponseError::UnknownServerError)
    }

    /// A transactional id after its first InitProducerId (epoch 0).
    fn initialised() -> TransactionMetadata {
        let mut m = TransactionMetadata::new("tx", 100, 60_000, 0);
        let InitStep::Write(t) =
            decide_init_producer_id(&mut m, 60_000, None, 1, no_pid).expect("init")
        else {
            panic!("a new id is written, not fenced");
        };
        assert_eq!((t.producer_id, t.producer_epoch), (100, 0));
        m.complete_transition(&t).expect("complete");
        m
    }

    fn ongoing() -> TransactionMetadata {
        let mut m = initialised();
        let t = decide_add_partitions(Some(&mut m), 100, 0, &tps(&[("a", 0)]), 2, 0)
            .expect("add")
            .expect("a write");
        m.complete_transition(&t).expect("complete");
        m
    }

    #[test]
    fn init_request_checks() {
        assert_eq!(
            check_init_request("", 1000, 900_000),
            Err(ResponseError::InvalidRequest)
        );
        assert_eq!(
            check_init_request("tx", 900_001, 900_000),
            Err(ResponseError::InvalidTransactionTimeout)
        );
        assert_eq!(
            check_init_request("tx", 0, 900_000),
            Err(ResponseError::InvalidTransactionTimeout)
        );
        assert!(check_init_request("tx", 60_000, 900_000).is_ok());
    }

    #[test]
    fn init_bumps_the_epoch_and_fences_the_old_producer() {
        let mut m = initialised();
        let InitStep::Write(t) =
            decide_init_producer_id(&mut m, 60_000, None, 3, no_pid).expect("init")
        else {
            panic!("no transaction runs");
        };
        // Pending until written: a concurrent init is told to retry.
        assert_eq!(
            decide_init_producer_id(&mut m, 60_000, None, 3, no_pid),
            Err(ResponseError::ConcurrentTransactions)
        );
        m.complete_transition(&t).expect("complete");
        assert_eq!(m.producer_epoch, 1);
        // The old producer (epoch 0) is now fenced everywhere.
        assert_eq!(
            decide_add_partitions(Some(&mut m), 100, 0, &tps(&[("a", 0)]), 4, 0),
            Err(ResponseError::ProducerFenced)
        );
        assert_eq!(
            decide_end_txn(Some(&mut m), 100, 0, true, true, 4),
            Err(ResponseError::ProducerFenced)
        );
        // A producer claiming another producer id is fenced too.
        assert_eq!(
            decide_init_producer_id(&mut m, 60_000, Some((55, 3)), 5, no_pid),
            Err(ResponseError::ProducerFenced)
        );
    }

    #[test]
    fn init_during_a_transaction_fences_and_aborts_it() {
        let mut m = ongoing();
        let InitStep::FenceAndAbort(fence) =
            decide_init_producer_id(&mut m, 60_000, None, 3, no_pid).expect("init")
        else {
            panic!("a running transaction is aborted first");
        };
        assert_eq!(fence.producer_epoch, 1);
        // The coordinator's own abort at the fence's epoch.
        let EndStep::Write(abort) =
            decide_end_txn(Some(&mut m), 100, fence.producer_epoch, false, false, 4)
                .expect("abort")
        else {
            panic!("the abort is written");
        };
        assert_eq!((abort.state, abort.producer_epoch), (PrepareAbort, 1));
        assert_eq!(abort.partitions, tps(&[("a", 0)]));
        m.complete_transition(&abort).expect("complete");
        // The client retrying meanwhile is told to wait.
        assert_eq!(
            decide_init_producer_id(&mut m, 60_000, None, 5, no_pid),
            Err(ResponseError::ConcurrentTransactions)
        );
        let done = m.prepare_complete(6).expect("complete abort");
        m.complete_transition(&done).expect("complete");
        let InitStep::Write(t) =
            decide_init_producer_id(&mut m, 60_000, None, 7, no_pid).expect("init")
        else {
            panic!("nothing runs now");
        };
        assert_eq!(t.producer_epoch, 2);
    }

    #[test]
    fn exhausted_epochs_rotate_the_producer_id() {
        let mut m = initialised();
        m.producer_epoch = i16::MAX - 1;
        let InitStep::Write(t) =
            decide_init_producer_id(&mut m, 60_000, None, 3, || Ok(200)).expect("init")
        else {
            panic!("rotation is a write");
        };
        assert_eq!(
            (t.producer_id, t.producer_epoch, t.prev_producer_id),
            (200, 0, 100)
        );
    }

    #[test]
    fn add_partitions_rules() {
        assert_eq!(
            decide_add_partitions(None, 100, 0, &tps(&[("a", 0)]), 1, 0),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        let mut m = ongoing();
        assert_eq!(
            decide_add_partitions(Some(&mut m), 101, 0, &tps(&[("a", 0)]), 3, 0),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        // Already in: no write.
        assert_eq!(
            decide_add_partitions(Some(&mut m), 100, 0, &tps(&[("a", 0)]), 3, 0),
            Ok(None)
        );
        let t = decide_add_partitions(Some(&mut m), 100, 0, &tps(&[("b", 1)]), 3, 0)
            .expect("add")
            .expect("a write");
        assert_eq!(t.partitions, tps(&[("a", 0), ("b", 1)]));
        m.complete_transition(&t).expect("complete");
        let EndStep::Write(c) = decide_end_txn(Some(&mut m), 100, 0, true, true, 4).expect("end")
        else {
            panic!("commit is written");
        };
        m.complete_transition(&c).expect("complete");
        // While markers are written, adding waits.
        assert_eq!(
            decide_add_partitions(Some(&mut m), 100, 0, &tps(&[("c", 0)]), 5, 0),
            Err(ResponseError::ConcurrentTransactions)
        );
    }

    #[test]
    fn end_txn_rules() {
        let mut m = initialised();
        // Nothing runs.
        assert_eq!(
            decide_end_txn(Some(&mut m), 100, 0, true, true, 3),
            Err(ResponseError::InvalidTxnState)
        );
        let mut m = ongoing();
        let EndStep::Write(c) = decide_end_txn(Some(&mut m), 100, 0, true, true, 3).expect("end")
        else {
            panic!("commit is written");
        };
        assert_eq!(c.state, PrepareCommit);
        // Pending write: retry later.
        assert_eq!(
            decide_end_txn(Some(&mut m), 100, 0, true, true, 3),
            Err(ResponseError::ConcurrentTransactions)
        );
        m.complete_transition(&c).expect("complete");
        // Markers being written: a retried commit waits, an abort is invalid.
        assert_eq!(
            decide_end_txn(Some(&mut m), 100, 0, true, true, 4),
            Err(ResponseError::ConcurrentTransactions)
        );
        assert_eq!(
            decide_end_txn(Some(&mut m), 100, 0, false, true, 4),
            Err(ResponseError::InvalidTxnState)
        );
        let done = m.prepare_complete(5).expect("complete commit");
        m.complete_transition(&done).expect("complete");
        assert_eq!(
            decide_end_txn(Some(&mut m), 100, 0, true, true, 6),
            Ok(EndStep::AlreadyDone)
        );
        assert_eq!(
            decide_end_txn(Some(&mut m), 100, 0, false, true, 6),
            Err(ResponseError::InvalidTxnState)
        );
        assert_eq!(
            decide_end_txn(None, 100, 0, false, true, 6),
            Err(ResponseError::InvalidProducerIdMapping)
        );
    }

    #[test]
    fn timeouts_and_expiry() {
        let mut m = ongoing(); // started at 2 with a 60 s timeout
        assert!(!is_timed_out(&m, 60_002));
        assert!(is_timed_out(&m, 60_003));
        let fence = m.prepare_fence_producer_epoch().expect("fence");
        // Pending: not picked again while the abort is under way.
        assert!(!is_timed_out(&m, 60_003));
        let EndStep::Write(abort) = decide_end_txn(
            Some(&mut m),
            100,
            fence.producer_epoch,
            false,
            false,
            60_003,
        )
        .expect("abort") else {
            panic!("the abort is written");
        };
        assert_eq!(abort.state, PrepareAbort);
        let idle = initialised(); // last update at 1
        assert!(!should_expire(&idle, 1_000, 1_000));
        assert!(should_expire(&idle, 1_001, 1_000));
        assert!(!should_expire(&ongoing(), i64::MAX, 1_000));
    }
}
