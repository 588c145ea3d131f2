//! What EndTxn v5 (transaction.version 2, KIP-890 part 2) does for one
//! transactional id, as Kafka 4.1.1's `TransactionCoordinator.endTransaction`
//! decides it before any log write: every end bumps the producer epoch
//! (a new producer id once the epochs are used up), a retry is recognised
//! by the request carrying the epoch before the bump, and an abort is
//! allowed with nothing added.
//!
//! ```text
//!                  Abort            Commit
//!                  Retry  Current   Retry  Current
//! Empty            PF     EB        PF     ITS
//! CompleteAbort    NONE   EB        ITS    ITS
//! CompleteCommit   ITS    EB        NONE   ITS
//! ```
//! (PF: PRODUCER_FENCED, ITS: INVALID_TXN_STATE, NONE: no bump, EB: bump.)
//! The coordinator's own aborts (fenced or timed-out producers) keep
//! `decisions::decide_end_txn`.

use kafka_protocol::error::ResponseError;

use super::state::{TransactionMetadata, TransactionState, TxnStateError, TxnTransit};
use TransactionState::*;

/// transaction.version 2.
pub const TV2: i16 = 2;

/// What EndTxn v5 does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStepTv2 {
    /// Write this `Prepare*` transit (its epoch bumped).
    Write(TxnTransit),
    /// A retry of an end that is done: answer NONE with this producer id
    /// and epoch.
    AlreadyDone(i64, i16),
}

fn internal(e: TxnStateError) -> ResponseError {
    match e {
        TxnStateError::Pending { .. } => ResponseError::ConcurrentTransactions,
        TxnStateError::ProducerFenced => ResponseError::ProducerFenced,
        _ => ResponseError::UnknownServerError,
    }
}

/// Whether ending `meta`'s transaction needs a new producer id (the bump
/// would exhaust the epochs); the caller allocates it before deciding.
pub fn needs_new_producer_id(meta: &TransactionMetadata) -> bool {
    meta.is_producer_epoch_exhausted()
}

/// EndTxn v5 from a client. `next_producer_id`: the id allocated when
/// [`needs_new_producer_id`] said so.
pub fn decide_end_txn_v2(
    meta: Option<&mut TransactionMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    next_producer_id: Option<i64>,
    now_ms: i64,
) -> Result<EndStepTv2, ResponseError> {
    let meta = meta.ok_or(ResponseError::InvalidProducerIdMapping)?;
    if meta.pending == Some(PrepareEpochFence) {
        // The coordinator is aborting this transaction itself.
        return Err(ResponseError::ConcurrentTransactions);
    }
    let retry_on_overflow = meta.previous_producer_id == producer_id
        && producer_epoch == i16::MAX - 1
        && meta.producer_epoch == 0;
    let retry_on_bump = i32::from(meta.producer_epoch) == i32::from(producer_epoch) + 1;
    let valid_epoch = match meta.state {
        Ongoing | Empty | Dead | PrepareEpochFence => producer_epoch == meta.producer_epoch,
        PrepareCommit | PrepareAbort => retry_on_bump,
        CompleteCommit | CompleteAbort => {
            retry_on_bump || retry_on_overflow || producer_epoch == meta.producer_epoch
        }
    };
    let retry = retry_on_bump || retry_on_overflow;
    if meta.producer_id != producer_id && !retry_on_overflow {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if !valid_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    if meta.pending.is_some() {
        return Err(ResponseError::ConcurrentTransactions);
    }
    let next_pid = if meta.is_producer_epoch_exhausted() {
        next_producer_id.ok_or(ResponseError::ConcurrentTransactions)?
    } else {
        super::state::NO_PRODUCER_ID
    };
    let invalid = Err(ResponseError::InvalidTxnState);
    let done = Ok(EndStepTv2::AlreadyDone(
        meta.producer_id,
        meta.producer_epoch,
    ));
    let step = match (meta.state, commit) {
        (Ongoing, _) => {
            let next = if commit { PrepareCommit } else { PrepareAbort };
            meta.prepare_abort_or_commit(next, TV2, next_pid, now_ms)
        }
        (CompleteCommit, true) | (CompleteAbort, false) if retry => return done,
        (CompleteCommit, true) => return invalid,
        (CompleteCommit | CompleteAbort | Empty, false) if !retry => {
            meta.prepare_empty_abort(TV2, next_pid, now_ms)
        }
        (PrepareCommit, true) | (PrepareAbort, false) => {
            return Err(ResponseError::ConcurrentTransactions)
        }
        (Dead | PrepareEpochFence, _) => return Err(ResponseError::UnknownServerError),
        _ => return invalid,
    };
    step.map(EndStepTv2::Write).map_err(internal)
}

/// The producer id and epoch EndTxn v5 answers once `transit` (its
/// `Prepare*` state) is written: the bumped epoch, or a new producer id at
/// epoch 0 (Kafka answers those of the completion it prepares next).
pub fn answered_producer(transit: &TxnTransit) -> (i64, i16) {
    if transit.next_producer_id != super::state::NO_PRODUCER_ID {
        (transit.next_producer_id, 0)
    } else {
        (transit.producer_id, transit.producer_epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::state::TxnPartition;
    use std::collections::BTreeSet;

    fn tps(list: &[(&str, i32)]) -> BTreeSet<TxnPartition> {
        list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
    }

    /// An id at epoch 5 with a TV2 transaction running on a-0.
    fn ongoing() -> TransactionMetadata {
        let mut m = TransactionMetadata::new("tx", 100, 60_000, 0);
        m.producer_epoch = 5;
        m.state = Empty;
        let t = m
            .prepare_add_partitions_as(tps(&[("a", 0)]), 1, TV2)
            .expect("add");
        m.complete_transition(&t).expect("complete");
        m
    }

    fn write(step: Result<EndStepTv2, ResponseError>) -> TxnTransit {
        match step.expect("step") {
            EndStepTv2::Write(t) => t,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn every_end_bumps_the_epoch_and_a_retry_is_answered_with_it() {
        let mut m = ongoing();
        let t = write(decide_end_txn_v2(Some(&mut m), 100, 5, true, None, 2));
        assert_eq!(
            (t.state, t.producer_epoch, t.last_producer_epoch),
            (PrepareCommit, 6, 5)
        );
        assert_eq!(answered_producer(&t), (100, 6));
        m.complete_transition(&t).expect("prepare");
        assert_eq!(m.producer_epoch, 6);
        // The retry (old epoch) while the markers go out: retry later.
        assert_eq!(
            decide_end_txn_v2(Some(&mut m), 100, 5, true, None, 3),
            Err(ResponseError::ConcurrentTransactions)
        );
        let done = m.prepare_complete(4).expect("complete");
        m.complete_transition(&done).expect("complete");
        assert_eq!((m.state, m.producer_epoch), (CompleteCommit, 6));
        assert_eq!(
            decide_end_txn_v2(Some(&mut m), 100, 5, true, None, 5),
            Ok(EndStepTv2::AlreadyDone(100, 6))
        );
        // The old epoch is fenced from now on.
        assert_eq!(
            decide_end_txn_v2(Some(&mut m), 100, 4, true, None, 5),
            Err(ResponseError::ProducerFenced)
        );
        // The next transaction uses the bumped epoch.
        let t = m
            .prepare_add_partitions_as(tps(&[("b", 0)]), 6, TV2)
            .expect("add");
        m.complete_transition(&t).expect("complete");
        let t = write(decide_end_txn_v2(Some(&mut m), 100, 6, false, None, 7));
        assert_eq!((t.state, t.producer_epoch), (PrepareAbort, 7));
    }

    #[test]
    fn an_abort_with_nothing_added_bumps_the_epoch() {
        let mut m = TransactionMetadata::new("tx", 100, 60_000, 0);
        m.producer_epoch = 2;
        assert_eq!(
            decide_end_txn_v2(Some(&mut m), 100, 2, true, None, 1),
            Err(ResponseError::InvalidTxnState)
        );
        let t = write(decide_end_txn_v2(Some(&mut m), 100, 2, false, None, 9));
        assert_eq!(
            (t.state, t.producer_epoch, t.start_timestamp_ms),
            (PrepareAbort, 3, 9)
        );
        assert!(t.partitions.is_empty());
        m.complete_transition(&t).expect("prepare");
        let done = m.prepare_complete(10).expect("complete");
        m.complete_transition(&done).expect("complete");
        assert_eq!((m.state, m.producer_epoch), (CompleteAbort, 3));
        // A retried abort is done; a commit is not valid.
        assert_eq!(
            decide_end_txn_v2(Some(&mut m), 100, 2, false, None, 11),
            Ok(EndStepTv2::AlreadyDone(100, 3))
        );
        assert_eq!(
            decide_end_txn_v2(Some(&mut m), 100, 3, true, None, 11),
            Err(ResponseError::InvalidTxnState)
        );
    }

    #[test]
    fn exhausted_epochs_move_to_a_new_producer_id() {
        let mut m = ongoing();
        m.producer_epoch = i16::MAX - 1;
        assert!(needs_new_producer_id(&m));
        assert_eq!(
            decide_end_txn_v2(Some(&mut m), 100, i16::MAX - 1, true, None, 2),
            Err(ResponseError::ConcurrentTransactions)
        );
        let t = write(decide_end_txn_v2(
            Some(&mut m),
            100,
            i16::MAX - 1,
            true,
            Some(200),
            2,
        ));
        assert_eq!(answered_producer(&t), (200, 0));
        m.complete_transition(&t).expect("prepare");
        let done = m.prepare_complete(3).expect("complete");
        m.complete_transition(&done).expect("complete");
        assert_eq!((m.producer_id, m.producer_epoch), (200, 0));
        // The retry with the exhausted epoch of the old id is done.
        assert_eq!(
            decide_end_txn_v2(Some(&mut m), 100, i16::MAX - 1, true, None, 4),
            Ok(EndStepTv2::AlreadyDone(200, 0))
        );
    }
}
