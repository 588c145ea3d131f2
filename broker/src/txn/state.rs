//! A transactional id's state machine, as Kafka's `TransactionState` and
//! `TransactionMetadata` (core/.../coordinator/transaction).
//!
//! Every change goes in two steps, as in Kafka: a `prepare_*` function checks
//! the transition and returns the target [`TxnTransit`] (marking it pending,
//! which blocks any other transition), the caller writes that transit to
//! `__transaction_state` and waits for it to be replicated, then
//! [`TransactionMetadata::complete_transition`] applies it (or
//! [`TransactionMetadata::abort_pending`] drops it when the write failed).
//! Where Kafka throws `IllegalStateException` these functions return a
//! [`TxnStateError`]; none of them panics.

use std::collections::BTreeSet;

use super::records::{TxnLogValue, TxnTopicPartitions};

/// `RecordBatch.NO_PRODUCER_ID`.
pub const NO_PRODUCER_ID: i64 = -1;
/// `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// The lowest `transaction.version` feature level (TV_2) at which an
/// EndTxn bumps the producer epoch (KIP-890 part 2).
pub const TV_EPOCH_BUMP: i16 = 2;

/// The state of a transactional id (ids as Kafka writes them in
/// `TransactionLogValue.TransactionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionState {
    /// No transaction running.
    Empty,
    /// A transaction has partitions and runs.
    Ongoing,
    /// EndTxn(commit) accepted; markers being written.
    PrepareCommit,
    /// EndTxn(abort) or a fence accepted; markers being written.
    PrepareAbort,
    /// Commit markers written.
    CompleteCommit,
    /// Abort markers written.
    CompleteAbort,
    /// The transactional id expired and is being removed.
    Dead,
    /// Bumping the epoch to fence an older producer (never persisted as a
    /// completed state).
    PrepareEpochFence,
}

use TransactionState::*;

impl TransactionState {
    /// Every state, in id order.
    pub const ALL: [TransactionState; 8] = [
        Empty,
        Ongoing,
        PrepareCommit,
        PrepareAbort,
        CompleteCommit,
        CompleteAbort,
        Dead,
        PrepareEpochFence,
    ];

    /// The id written to the log.
    pub fn id(self) -> i8 {
        self as i8
    }

    /// The state with this id, if any.
    pub fn from_id(id: i8) -> Option<Self> {
        usize::try_from(id)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The name DescribeTransactions reports.
    pub fn name(self) -> &'static str {
        match self {
            Empty => "Empty",
            Ongoing => "Ongoing",
            PrepareCommit => "PrepareCommit",
            PrepareAbort => "PrepareAbort",
            CompleteCommit => "CompleteCommit",
            CompleteAbort => "CompleteAbort",
            Dead => "Dead",
            PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The states this one may be entered from.
    pub fn valid_previous_states(self) -> &'static [TransactionState] {
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            // From Empty and Complete*: transaction.version 2's abort of a
            // transaction with no partition added (`state_tv2.rs`).
            PrepareAbort => &[
                Ongoing,
                PrepareEpochFence,
                Empty,
                CompleteCommit,
                CompleteAbort,
            ],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    /// Whether a transactional id in this state may expire.
    pub fn is_expiration_allowed(self) -> bool {
        matches!(self, Empty | CompleteCommit | CompleteAbort)
    }

    /// Whether a transaction is running (its markers are not all written).
    pub fn has_pending_transaction(self) -> bool {
        matches!(self, Ongoing | PrepareAbort | PrepareCommit)
    }
}

/// A topic partition in a transaction.
pub type TxnPartition = (String, i32);

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnStateError {
    /// Another transition is pending (Kafka answers CONCURRENT_TRANSACTIONS
    /// before it gets here).
    #[error("transition to {to:?} while {pending:?} is pending")]
    Pending {
        /// The pending state.
        pending: TransactionState,
        /// The state asked for.
        to: TransactionState,
    },
    /// The target state cannot follow the current one.
    #[error("transition from {from:?} to {to:?} is not valid")]
    InvalidTransition {
        /// The current state.
        from: TransactionState,
        /// The state asked for.
        to: TransactionState,
    },
    /// A negative producer id or epoch.
    #[error("illegal producer id {producer_id} or epoch {epoch}")]
    IllegalProducer {
        /// The producer id.
        producer_id: i64,
        /// The epoch.
        epoch: i16,
    },
    /// The epoch cannot be bumped any more for this producer id.
    #[error("producer epochs exhausted for producer id {0}")]
    EpochExhausted(i64),
    /// The producer's expected epoch is neither the current nor the last one
    /// (Kafka's PRODUCER_FENCED).
    #[error("producer fenced")]
    ProducerFenced,
    /// `complete_transition` without a matching pending transition, or with
    /// metadata that does not follow from the current one.
    #[error("unexpected transition metadata to {0:?}")]
    UnexpectedMetadata(TransactionState),
}

/// The target of a prepared transition (Kafka's `TxnTransitMetadata`); what
/// is written to `__transaction_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnTransit {
    /// Producer id after the transition.
    pub producer_id: i64,
    /// Producer id before it.
    pub prev_producer_id: i64,
    /// Producer id to move to after an epoch overflow (-1 = none).
    pub next_producer_id: i64,
    /// Producer epoch after the transition.
    pub producer_epoch: i16,
    /// The epoch before the last bump (-1 = none).
    pub last_producer_epoch: i16,
    /// Transaction timeout.
    pub txn_timeout_ms: i32,
    /// Target state.
    pub state: TransactionState,
    /// Partitions in the transaction.
    pub partitions: BTreeSet<TxnPartition>,
    /// Transaction start (-1 = none).
    pub start_timestamp_ms: i64,
    /// Time of this update.
    pub last_update_timestamp_ms: i64,
    /// The client's `transaction.version`.
    pub client_transaction_version: i16,
}

impl TxnTransit {
    /// The `TransactionLogValue` Kafka writes for this transit: partitions
    /// null when `Empty`, grouped by topic otherwise.
    pub fn to_log_value(&self) -> TxnLogValue {
        let partitions = if self.state == Empty {
            None
        } else {
            let mut topics: Vec<TxnTopicPartitions> = Vec::new();
            for (topic, p) in &self.partitions {
                match topics.last_mut() {
                    Some(t) if &t.topic == topic => t.partitions.push(*p),
                    _ => topics.push(TxnTopicPartitions {
                        topic: topic.clone(),
                        partitions: vec![*p],
                    }),
                }
            }
            Some(topics)
        };
        TxnLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.prev_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            next_producer_epoch: NO_PRODUCER_EPOCH,
            transaction_timeout_ms: self.txn_timeout_ms,
            state: self.state,
            partitions,
            last_update_timestamp_ms: self.last_update_timestamp_ms,
            start_timestamp_ms: self.start_timestamp_ms,
            client_transaction_version: self.client_transaction_version,
        }
    }
}

/// One transactional id's state on its coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    /// The transactional id.
    pub transactional_id: String,
    /// Current producer id.
    pub producer_id: i64,
    /// Producer id of the last committed transaction.
    pub previous_producer_id: i64,
    /// Producer id to move to after an epoch overflow.
    pub next_producer_id: i64,
    /// Current producer epoch.
    pub producer_epoch: i16,
    /// The epoch before the last bump.
    pub last_producer_epoch: i16,
    /// Transaction timeout.
    pub txn_timeout_ms: i32,
    /// Current state.
    pub state: TransactionState,
    /// Partitions in the running transaction.
    pub partitions: BTreeSet<TxnPartition>,
    /// Transaction start (-1 = none).
    pub start_timestamp_ms: i64,
    /// Last update.
    pub last_update_timestamp_ms: i64,
    /// The client's `transaction.version`.
    pub client_transaction_version: i16,
    /// The state a prepared, not yet completed, transition goes to.
    pub pending: Option<TransactionState>,
    /// A fence's epoch bump failed to be written: do not bump again.
    pub has_failed_epoch_fence: bool,
}

/// Kafka's `TransactionMetadata.isEpochExhausted`: epochs stop one short of
/// `i16::MAX` so the coordinator can always fence.
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

impl TransactionMetadata {
    /// A new transactional id, before its first InitProducerId completes.
    pub fn new(transactional_id: &str, producer_id: i64, txn_timeout_ms: i32, now_ms: i64) -> Self {
        TransactionMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms,
            state: Empty,
            partitions: BTreeSet::new(),
            start_timestamp_ms: -1,
            last_update_timestamp_ms: now_ms,
            client_transaction_version: 0,
            pending: None,
            has_failed_epoch_fence: false,
        }
    }

    /// The metadata a loader rebuilds from a log value (Kafka's
    /// `TransactionLog.readTxnRecordValue`: the last epoch is not stored).
    pub fn from_log_value(transactional_id: &str, v: &TxnLogValue) -> Self {
        let mut partitions = BTreeSet::new();
        if v.state != Empty {
            for t in v.partitions.iter().flatten() {
                for p in &t.partitions {
                    partitions.insert((t.topic.clone(), *p));
                }
            }
        }
        TransactionMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id: v.producer_id,
            previous_producer_id: v.previous_producer_id,
            next_producer_id: v.next_producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms: v.transaction_timeout_ms,
            state: v.state,
            partitions,
            start_timestamp_ms: v.start_timestamp_ms,
            last_update_timestamp_ms: v.last_update_timestamp_ms,
            client_transaction_version: v.client_transaction_version,
            pending: None,
            has_failed_epoch_fence: false,
        }
    }

    pub(super) fn supports_epoch_bump(tv: i16) -> bool {
        tv >= TV_EPOCH_BUMP
    }

    /// Whether this producer id can take no more epochs.
    pub fn is_producer_epoch_exhausted(&self) -> bool {
        is_epoch_exhausted(self.producer_epoch)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn prepare(
        &mut self,
        state: TransactionState,
        producer_id: i64,
        next_producer_id: i64,
        epoch: i16,
        last_epoch: i16,
        txn_timeout_ms: i32,
        partitions: BTreeSet<TxnPartition>,
        start_timestamp_ms: i64,
        now_ms: i64,
        client_transaction_version: i16,
    ) -> Result<TxnTransit, TxnStateError> {
        if let Some(pending) = self.pending {
            return Err(TxnStateError::Pending { pending, to: state });
        }
        if producer_id < 0 || (state != Dead && epoch < 0) {
            return Err(TxnStateError::IllegalProducer { producer_id, epoch });
        }
        if !state.valid_previous_states().contains(&self.state) {
            return Err(TxnStateError::InvalidTransition {
                from: self.state,
                to: state,
            });
        }
        self.pending = Some(state);
        Ok(TxnTransit {
            producer_id,
            prev_producer_id: self.producer_id,
            next_producer_id,
            producer_epoch: epoch,
            last_producer_epoch: last_epoch,
            txn_timeout_ms,
            state,
            partitions,
            start_timestamp_ms,
            last_update_timestamp_ms: now_ms,
            client_transaction_version,
        })
    }

    /// Fence an older producer of a running transaction: bump the epoch
    /// (unless a previous fence's bump failed to be written).
    pub fn prepare_fence_producer_epoch(&mut self) -> Result<TxnTransit, TxnStateError> {
        if self.producer_epoch == i16::MAX {
            return Err(TxnStateError::EpochExhausted(self.producer_id));
        }
        let bumped = if self.has_failed_epoch_fence {
            self.producer_epoch
        } else {
            self.producer_epoch + 1
        };
        self.prepare(
            PrepareEpochFence,
            self.producer_id,
            NO_PRODUCER_ID,
            bumped,
            NO_PRODUCER_EPOCH,
            self.txn_timeout_ms,
            self.partitions.clone(),
            self.start_timestamp_ms,
            self.last_update_timestamp_ms,
            0,
        )
    }

    /// InitProducerId on an existing producer id: bump the epoch, or return
    /// the current one to a retry (`expected_epoch` = the last epoch).
    pub fn prepare_increment_producer_epoch(
        &mut self,
        new_txn_timeout_ms: i32,
        expected_epoch: Option<i16>,
        now_ms: i64,
    ) -> Result<TxnTransit, TxnStateError> {
        if self.is_producer_epoch_exhausted() {
            return Err(TxnStateError::EpochExhausted(self.producer_id));
        }
        let bumped = self.producer_epoch + 1;
        let (epoch, last) = match expected_epoch {
            None => (bumped, NO_PRODUCER_EPOCH),
            Some(e) if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch => {
                (bumped, self.producer_epoch)
            }
            Some(e) if e == self.last_producer_epoch => {
                (self.producer_epoch, self.last_producer_epoch)
            }
            Some(_) => return Err(TxnStateError::ProducerFenced),
        };
        self.prepare(
            Empty,
            self.producer_id,
            NO_PRODUCER_ID,
            epoch,
            last,
            new_txn_timeout_ms,
            BTreeSet::new(),
            -1,
            now_ms,
            0,
        )
    }

    /// InitProducerId when the epoch is exhausted (or the producer id is
    /// new): move to a new producer id at epoch 0.
    pub fn prepare_producer_id_rotation(
        &mut self,
        new_producer_id: i64,
        new_txn_timeout_ms: i32,
        now_ms: i64,
        record_last_epoch: bool,
    ) -> Result<TxnTransit, TxnStateError> {
        if self.state.has_pending_transaction() {
            return Err(TxnStateError::InvalidTransition {
                from: self.state,
                to: Empty,
            });
        }
        let last = if record_last_epoch {
            self.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        };
        self.prepare(
            Empty,
            new_producer_id,
            NO_PRODUCER_ID,
            0,
            last,
            new_txn_timeout_ms,
            BTreeSet::new(),
            -1,
            now_ms,
            0,
        )
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn.
    pub fn prepare_add_partitions(
        &mut self,
        added: impl IntoIterator<Item = TxnPartition>,
        now_ms: i64,
    ) -> Result<TxnTransit, TxnStateError> {
        self.prepare_add_partitions_as(added, now_ms, 0)
    }

    /// EndTxn: `PrepareCommit` or `PrepareAbort`. With TV_2 clients the
    /// epoch is bumped here; `next_producer_id` is set when that bump
    /// overflows.
    pub fn prepare_abort_or_commit(
        &mut self,
        state: TransactionState,
        client_transaction_version: i16,
        next_producer_id: i64,
        now_ms: i64,
    ) -> Result<TxnTransit, TxnStateError> {
        if !matches!(state, PrepareCommit | PrepareAbort) {
            return Err(TxnStateError::InvalidTransition {
                from: self.state,
                to: state,
            });
        }
        let (epoch, last) = if Self::supports_epoch_bump(client_transaction_version) {
            let bumped = self
                .producer_epoch
                .checked_add(1)
                .ok_or(TxnStateError::EpochExhausted(self.producer_id))?;
            (bumped, self.producer_epoch)
        } else {
            (self.producer_epoch, self.last_producer_epoch)
        };
        self.prepare(
            state,
            self.producer_id,
            next_producer_id,
            epoch,
            last,
            self.txn_timeout_ms,
            self.partitions.clone(),
            self.start_timestamp_ms,
            now_ms,
            client_transaction_version,
        )
    }

    /// All markers written: `CompleteCommit` / `CompleteAbort`.
    pub fn prepare_complete(&mut self, now_ms: i64) -> Result<TxnTransit, TxnStateError> {
        let state = match self.state {
            PrepareCommit => CompleteCommit,
            _ => CompleteAbort,
        };
        let (pid, epoch) = if Self::supports_epoch_bump(self.client_transaction_version)
            && self.next_producer_id != NO_PRODUCER_ID
        {
            (self.next_producer_id, 0)
        } else {
            (self.producer_id, self.producer_epoch)
        };
        let transit = self.prepare(
            state,
            pid,
            NO_PRODUCER_ID,
            epoch,
            self.producer_epoch,
            self.txn_timeout_ms,
            BTreeSet::new(),
            self.start_timestamp_ms,
            now_ms,
            self.client_transaction_version,
        )?;
        self.has_failed_epoch_fence = false;
        Ok(transit)
    }

    /// The transactional id expired.
    pub fn prepare_dead(&mut self) -> Result<TxnTransit, TxnStateError> {
        self.prepare(
            Dead,
            self.producer_id,
            NO_PRODUCER_ID,
            self.producer_epoch,
            self.last_producer_epoch,
            self.txn_timeout_ms,
            BTreeSet::new(),
            self.start_timestamp_ms,
            self.last_update_timestamp_ms,
            0,
        )
    }

    /// Moves a prepared epoch fence on to the abort that follows it, as
    /// Kafka's EndTxn does for a fence: the bumped epoch becomes current
    /// (last epoch unknown) and nothing is pending, so that
    /// [`Self::prepare_abort_or_commit`] can prepare `PrepareAbort` from
    /// `Ongoing`.
    pub fn take_fence(&mut self, fence: &TxnTransit) -> Result<(), TxnStateError> {
        if self.pending != Some(PrepareEpochFence) || fence.state != PrepareEpochFence {
            return Err(TxnStateError::UnexpectedMetadata(fence.state));
        }
        self.pending = None;
        self.producer_epoch = fence.producer_epoch;
        self.last_producer_epoch = NO_PRODUCER_EPOCH;
        Ok(())
    }

    /// Drops the pending transition (its log write failed).
    pub fn abort_pending(&mut self) {
        self.pending = None;
    }

    fn valid_producer_epoch(&self, t: &TxnTransit) -> bool {
        let tv2 = Self::supports_epoch_bump(t.client_transaction_version);
        let overflow_complete =
            tv2 && matches!(t.state, CompleteCommit | CompleteAbort) && t.producer_epoch == 0;
        let epoch = if overflow_complete || (tv2 && matches!(t.state, PrepareCommit | PrepareAbort))
        {
            t.last_producer_epoch
        } else {
            t.producer_epoch
        };
        let pid = if overflow_complete {
            t.prev_producer_id
        } else {
            t.producer_id
        };
        epoch == self.producer_epoch && pid == self.producer_id
    }

    fn valid_producer_epoch_bump(&self, t: &TxnTransit) -> bool {
        i32::from(t.producer_epoch) == i32::from(self.producer_epoch) + 1
            || (t.producer_epoch == 0 && t.producer_id != self.producer_id)
    }

    /// Applies a prepared transition once its record is written and
    /// replicated.
    pub fn complete_transition(&mut self, t: &TxnTransit) -> Result<(), TxnStateError> {
        let to = match self.pending {
            Some(p) if p == t.state => p,
            _ => return Err(TxnStateError::UnexpectedMetadata(t.state)),
        };
        let bad = || TxnStateError::UnexpectedMetadata(to);
        match to {
            Empty => {
                if (self.producer_epoch != t.producer_epoch && !self.valid_producer_epoch_bump(t))
                    || !t.partitions.is_empty()
                    || t.start_timestamp_ms != -1
                {
                    return Err(bad());
                }
                self.txn_timeout_ms = t.txn_timeout_ms;
                self.producer_epoch = t.producer_epoch;
                self.last_producer_epoch = t.last_producer_epoch;
                self.producer_id = t.producer_id;
                self.previous_producer_id = t.prev_producer_id;
            }
            Ongoing => {
                if !self.valid_producer_epoch(t)
                    || !self.partitions.is_subset(&t.partitions)
                    || self.txn_timeout_ms != t.txn_timeout_ms
                {
                    return Err(bad());
                }
                self.start_timestamp_ms = t.start_timestamp_ms;
                self.partitions.extend(t.partitions.iter().cloned());
            }
            PrepareAbort | PrepareCommit => {
                // transaction.version 2 aborts from Empty/Complete* with
                // a fresh start time (nothing was added).
                let empty_abort = to == PrepareAbort
                    && Self::supports_epoch_bump(t.client_transaction_version)
                    && matches!(self.state, Empty | CompleteCommit | CompleteAbort);
                if !self.valid_producer_epoch(t)
                    || self.partitions != t.partitions
                    || self.txn_timeout_ms != t.txn_timeout_ms
                    || (self.start_timestamp_ms != t.start_timestamp_ms && !empty_abort)
                {
                    return Err(bad());
                }
                self.start_timestamp_ms = t.start_timestamp_ms;
                if Self::supports_epoch_bump(t.client_transaction_version) {
                    self.producer_epoch = t.producer_epoch;
                    self.last_producer_epoch = t.last_producer_epoch;
                    self.next_producer_id = t.next_producer_id;
                }
            }
            CompleteAbort | CompleteCommit => {
                if !self.valid_producer_epoch(t)
                    || self.txn_timeout_ms != t.txn_timeout_ms
                    || t.start_timestamp_ms == -1
                {
                    return Err(bad());
                }
                self.start_timestamp_ms = t.start_timestamp_ms;
                self.partitions.clear();
                if Self::supports_epoch_bump(t.client_transaction_version) {
                    self.producer_epoch = t.producer_epoch;
                    self.last_producer_epoch = t.last_producer_epoch;
                    self.previous_producer_id = t.prev_producer_id;
                    self.producer_id = t.producer_id;
                    self.next_producer_id = t.next_producer_id;
                }
            }
            // A fence is followed by PrepareAbort without completing, and a
            // Dead id is removed, never completed.
            PrepareEpochFence | Dead => return Err(bad()),
        }
        self.client_transaction_version = t.client_transaction_version;
        self.last_update_timestamp_ms = t.last_update_timestamp_ms;
        self.pending = None;
        self.state = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::records::{decode_value, encode_value};

    fn tp(t: &str, p: i32) -> TxnPartition {
        (t.to_owned(), p)
    }

    fn init(m: &mut TransactionMetadata, now: i64) {
        let t = m
            .prepare_increment_producer_epoch(60_000, None, now)
            .expect("valid");
        m.complete_transition(&t).expect("valid");
    }

    #[test]
    fn ids_and_names_round_trip() {
        for s in TransactionState::ALL {
            assert_eq!(TransactionState::from_id(s.id()), Some(s));
        }
        assert_eq!(PrepareEpochFence.id(), 7);
        assert_eq!(TransactionState::from_id(8), None);
        assert_eq!(TransactionState::from_id(-1), None);
        assert_eq!(CompleteAbort.name(), "CompleteAbort");
    }

    #[test]
    fn commit_cycle_tv0() {
        let mut m = TransactionMetadata::new("tx", 7, 60_000, 1);
        init(&mut m, 2);
        assert_eq!((m.producer_epoch, m.state), (0, Empty));
        let t = m
            .prepare_add_partitions([tp("a", 0), tp("b", 1)], 3)
            .expect("valid");
        // A second transition waits for the first.
        assert!(matches!(
            m.prepare_add_partitions([tp("c", 0)], 3),
            Err(TxnStateError::Pending { .. })
        ));
        m.complete_transition(&t).expect("valid");
        assert_eq!((m.state, m.start_timestamp_ms), (Ongoing, 3));
        let t = m.prepare_add_partitions([tp("a", 1)], 4).expect("valid");
        m.complete_transition(&t).expect("valid");
        assert_eq!(m.partitions.len(), 3);
        assert_eq!(m.start_timestamp_ms, 3);
        let t = m
            .prepare_abort_or_commit(PrepareCommit, 0, NO_PRODUCER_ID, 5)
            .expect("valid");
        assert_eq!(t.partitions.len(), 3);
        m.complete_transition(&t).expect("valid");
        let t = m.prepare_complete(6).expect("valid");
        assert_eq!(t.state, CompleteCommit);
        m.complete_transition(&t).expect("valid");
        assert_eq!((m.state, m.producer_epoch), (CompleteCommit, 0));
        assert!(m.partitions.is_empty());
        // A new transaction starts from CompleteCommit.
        let t = m.prepare_add_partitions([tp("a", 0)], 7).expect("valid");
        m.complete_transition(&t).expect("valid");
        assert_eq!(m.start_timestamp_ms, 7);
    }

    #[test]
    fn invalid_transitions_are_refused() {
        let mut m = TransactionMetadata::new("tx", 7, 60_000, 1);
        init(&mut m, 2);
        // EndTxn with nothing running.
        assert!(matches!(
            m.prepare_abort_or_commit(PrepareCommit, 0, NO_PRODUCER_ID, 3),
            Err(TxnStateError::InvalidTransition {
                from: Empty,
                to: PrepareCommit
            })
        ));
        assert!(m.pending.is_none());
        assert!(m.prepare_fence_producer_epoch().is_err());
        assert!(m
            .prepare_abort_or_commit(Ongoing, 0, NO_PRODUCER_ID, 3)
            .is_err());
        // Completing what was not prepared.
        let t = TxnTransit {
            state: Ongoing,
            ..m.clone()
                .prepare_add_partitions([tp("a", 0)], 3)
                .expect("valid")
        };
        assert!(m.complete_transition(&t).is_err());
    }

    #[test]
    fn init_producer_id_epochs() {
        let mut m = TransactionMetadata::new("tx", 7, 60_000, 1);
        init(&mut m, 2);
        init(&mut m, 3);
        assert_eq!(
            (m.producer_epoch, m.last_producer_epoch),
            (1, NO_PRODUCER_EPOCH)
        );
        // A producer that knows its epoch bumps it and records the last one.
        let t = m
            .prepare_increment_producer_epoch(60_000, Some(1), 4)
            .expect("valid");
        m.complete_transition(&t).expect("valid");
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (2, 1));
        // Its retry gets the same epoch back.
        let t = m
            .prepare_increment_producer_epoch(60_000, Some(1), 5)
            .expect("valid");
        assert_eq!(t.producer_epoch, 2);
        m.complete_transition(&t).expect("valid");
        // Any other epoch is fenced.
        assert_eq!(
            m.prepare_increment_producer_epoch(60_000, Some(0), 6),
            Err(TxnStateError::ProducerFenced)
        );
        // Exhausted epochs rotate the producer id.
        m.producer_epoch = i16::MAX - 1;
        assert!(m.prepare_increment_producer_epoch(60_000, None, 7).is_err());
        let t = m
            .prepare_producer_id_rotation(8, 60_000, 7, false)
            .expect("valid");
        m.complete_transition(&t).expect("valid");
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.previous_producer_id),
            (8, 0, 7)
        );
    }

    #[test]
    fn fence_then_abort() {
        let mut m = TransactionMetadata::new("tx", 7, 60_000, 1);
        init(&mut m, 2);
        let t = m.prepare_add_partitions([tp("a", 0)], 3).expect("valid");
        m.complete_transition(&t).expect("valid");
        let fence = m.prepare_fence_producer_epoch().expect("valid");
        assert_eq!((fence.state, fence.producer_epoch), (PrepareEpochFence, 1));
        // Kafka never completes PrepareEpochFence: it goes on to PrepareAbort.
        assert!(m.clone().complete_transition(&fence).is_err());
        m.take_fence(&fence).expect("valid");
        assert_eq!((m.state, m.producer_epoch, m.pending), (Ongoing, 1, None));
        let t = m
            .prepare_abort_or_commit(PrepareAbort, 0, NO_PRODUCER_ID, 4)
            .expect("valid");
        m.complete_transition(&t).expect("valid");
        let t = m.prepare_complete(5).expect("valid");
        assert_eq!(t.state, CompleteAbort);
        m.complete_transition(&t).expect("valid");
        assert_eq!((m.state, m.producer_epoch), (CompleteAbort, 1));
    }

    #[test]
    fn tv2_bumps_the_epoch_at_end_txn() {
        let mut m = TransactionMetadata::new("tx", 7, 60_000, 1);
        init(&mut m, 2);
        let t = m.prepare_add_partitions([tp("a", 0)], 3).expect("valid");
        m.complete_transition(&t).expect("valid");
        let t = m
            .prepare_abort_or_commit(PrepareCommit, 2, NO_PRODUCER_ID, 4)
            .expect("valid");
        assert_eq!((t.producer_epoch, t.last_producer_epoch), (1, 0));
        m.complete_transition(&t).expect("valid");
        assert_eq!(m.producer_epoch, 1);
        let t = m.prepare_complete(5).expect("valid");
        m.complete_transition(&t).expect("valid");
        assert_eq!(
            (m.state, m.producer_epoch, m.client_transaction_version),
            (CompleteCommit, 1, 2)
        );
    }

    #[test]
    fn transit_log_value_round_trips_through_the_loader() {
        let mut m = TransactionMetadata::new("tx", 7, 60_000, 1);
        init(&mut m, 2);
        let t = m
            .prepare_add_partitions([tp("b", 1), tp("a", 2), tp("a", 0)], 3)
            .expect("valid");
        let v = t.to_log_value();
        let parts = v.partitions.clone().expect("valid");
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].topic.as_str(), parts[0].partitions.clone()),
            ("a", vec![0, 2])
        );
        m.complete_transition(&t).expect("valid");
        for version in [0, 1] {
            let bytes = encode_value(&v, version).expect("valid");
            let loaded =
                TransactionMetadata::from_log_value("tx", &decode_value(&bytes).expect("valid"));
            assert_eq!(loaded.state, Ongoing);
            assert_eq!(loaded.partitions, m.partitions);
            assert_eq!((loaded.producer_id, loaded.producer_epoch), (7, 0));
        }
        // Empty is written with null partitions.
        let e = TransactionMetadata::new("tx", 7, 60_000, 1)
            .prepare_increment_producer_epoch(60_000, None, 2)
            .expect("valid")
            .to_log_value();
        assert_eq!(e.partitions, None);
    }
}
