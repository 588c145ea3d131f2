//! The open transactions of one partition and its last stable offset
//! (Kafka's `ProducerStateManager` ongoing-transaction bookkeeping).
//!
//! A transactional data batch from a producer with no open transaction here
//! opens one at the batch's base offset; a marker (control batch) from that
//! producer closes it. The last stable offset (LSO) is the first offset of
//! the oldest open transaction, capped by the high watermark: read_committed
//! consumers read below it only. Leaders and followers feed the same
//! appended batches in the same order, so they agree on the LSO.

use std::collections::{BTreeSet, HashMap};

use kafka_protocol::error::ResponseError;

/// A transaction a marker closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Its first batch's offset.
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    /// Whether the marker aborted it.
    pub aborted: bool,
    /// The first offset of the next open transaction, or the marker's
    /// offset + 1 when none is open (Kafka's
    /// `ProducerStateManager.lastStableOffset(CompletedTxn)`), as the
    /// transaction index records it.
    pub last_stable_offset: i64,
}

/// Open transactions of one partition.
#[derive(Debug, Default, Clone)]
pub struct TxnTracker {
    by_producer: HashMap<i64, i64>,
    by_first_offset: BTreeSet<(i64, i64)>,
    /// The coordinator epoch of each producer's last marker.
    coordinator_epochs: HashMap<i64, i32>,
}

impl TxnTracker {
    /// A transactional data batch was appended at `base_offset`.
    pub fn on_data(&mut self, producer_id: i64, base_offset: i64) {
        if self.by_producer.contains_key(&producer_id) {
            return;
        }
        self.by_producer.insert(producer_id, base_offset);
        self.by_first_offset.insert((base_offset, producer_id));
    }

    /// A marker from `producer_id` was appended at `offset`. A marker for
    /// a producer with nothing open (a retried WriteTxnMarkers, or an abort
    /// of an empty transaction) closes nothing, but still records the
    /// coordinator epoch.
    pub fn on_marker(
        &mut self,
        producer_id: i64,
        offset: i64,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Option<CompletedTxn> {
        let e = self
            .coordinator_epochs
            .entry(producer_id)
            .or_insert(coordinator_epoch);
        *e = (*e).max(coordinator_epoch);
        let first = self.by_producer.remove(&producer_id)?;
        self.by_first_offset.remove(&(first, producer_id));
        Some(CompletedTxn {
            producer_id,
            first_offset: first,
            last_offset: offset,
            aborted: !commit,
            last_stable_offset: self.first_unstable_offset().unwrap_or(offset + 1),
        })
    }

    /// The leader's check of a data batch (Kafka's
    /// `ProducerAppendInfo.appendDataBatch`): a non-transactional batch from
    /// a producer with an open transaction is INVALID_TXN_STATE. Replicated
    /// batches are not checked.
    pub fn check_data(&self, producer_id: i64, transactional: bool) -> Result<(), ResponseError> {
        if !transactional && producer_id >= 0 && self.is_open(producer_id) {
            return Err(ResponseError::InvalidTxnState);
        }
        Ok(())
    }

    /// The leader's check of a marker (Kafka's `checkCoordinatorEpoch`): a
    /// marker from an older coordinator than the producer's last one is
    /// TRANSACTION_COORDINATOR_FENCED. Replicated markers are not checked.
    pub fn check_marker(
        &self,
        producer_id: i64,
        coordinator_epoch: i32,
    ) -> Result<(), ResponseError> {
        match self.coordinator_epochs.get(&producer_id) {
            Some(e) if *e > coordinator_epoch => Err(ResponseError::TransactionCoordinatorFenced),
            _ => Ok(()),
        }
    }

    /// The first offset of `producer_id`'s open transaction here.
    pub fn open_first_offset(&self, producer_id: i64) -> Option<i64> {
        self.by_producer.get(&producer_id).copied()
    }

    /// The coordinator epoch of `producer_id`'s last marker here.
    pub fn coordinator_epoch(&self, producer_id: i64) -> Option<i32> {
        self.coordinator_epochs.get(&producer_id).copied()
    }

    /// The producers with an open transaction or a marker here.
    pub fn producer_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.by_producer
            .keys()
            .chain(self.coordinator_epochs.keys())
            .copied()
    }

    /// Restores a producer's open transaction and last coordinator epoch
    /// from a snapshot.
    pub fn restore(
        &mut self,
        producer_id: i64,
        open_from: Option<i64>,
        coordinator_epoch: Option<i32>,
    ) {
        if let Some(first) = open_from {
            self.on_data(producer_id, first);
        }
        if let Some(e) = coordinator_epoch {
            self.coordinator_epochs.insert(producer_id, e);
        }
    }

    /// Forgets an expired producer's coordinator epoch (it has nothing
    /// open).
    pub fn forget(&mut self, producer_id: i64) {
        if !self.is_open(producer_id) {
            self.coordinator_epochs.remove(&producer_id);
        }
    }

    /// Whether `producer_id` has an open transaction here.
    pub fn is_open(&self, producer_id: i64) -> bool {
        self.by_producer.contains_key(&producer_id)
    }

    /// The first offset of the oldest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.by_first_offset.first().map(|(o, _)| *o)
    }

    /// The last stable offset given the high watermark.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.first_unstable_offset()
            .map_or(high_watermark, |o| o.min(high_watermark))
    }

    /// Forgets transactions that start at or past `offset` (log truncation
    /// on a follower). Transactions that start below it stay open: their
    /// marker, if any, was past the truncation point.
    pub fn truncate_to(&mut self, offset: i64) {
        let cut: Vec<(i64, i64)> = self
            .by_first_offset
            .range((offset, i64::MIN)..)
            .copied()
            .collect();
        for (first, pid) in cut {
            self.by_first_offset.remove(&(first, pid));
            self.by_producer.remove(&pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lso_follows_the_oldest_open_transaction() {
        let mut t = TxnTracker::default();
        assert_eq!(t.last_stable_offset(10), 10);
        t.on_data(1, 3);
        t.on_data(2, 5);
        t.on_data(1, 7); // same transaction continues
        assert_eq!(t.last_stable_offset(10), 3);
        assert_eq!(t.last_stable_offset(2), 2);
        let c = t.on_marker(1, 8, true, 0).expect("valid");
        assert_eq!(
            c,
            CompletedTxn {
                producer_id: 1,
                first_offset: 3,
                last_offset: 8,
                aborted: false,
                last_stable_offset: 5
            }
        );
        assert_eq!(t.last_stable_offset(10), 5);
        let c = t.on_marker(2, 9, false, 0).expect("valid");
        assert!(c.aborted);
        assert_eq!(c.last_stable_offset, 10);
        assert_eq!(t.last_stable_offset(10), 10);
        // A marker with nothing open closes nothing.
        assert_eq!(t.on_marker(2, 11, false, 0), None);
        assert!(!t.is_open(2));
    }

    #[test]
    fn leader_checks_as_kafka() {
        let mut t = TxnTracker::default();
        t.on_data(1, 0);
        assert_eq!(t.check_data(1, false), Err(ResponseError::InvalidTxnState));
        assert!(t.check_data(1, true).is_ok());
        assert!(t.check_data(2, false).is_ok());
        assert!(t.check_data(-1, false).is_ok());
        assert!(t.check_marker(1, 0).is_ok());
        t.on_marker(1, 3, true, 5);
        assert!(t.check_data(1, false).is_ok());
        assert_eq!(
            t.check_marker(1, 4),
            Err(ResponseError::TransactionCoordinatorFenced)
        );
        assert!(t.check_marker(1, 5).is_ok());
        // An empty transaction's marker still moves the coordinator epoch on.
        t.on_marker(2, 4, false, 7);
        assert!(t.check_marker(2, 6).is_err());
    }

    #[test]
    fn truncation_drops_transactions_that_start_past_it() {
        let mut t = TxnTracker::default();
        t.on_data(1, 3);
        t.on_data(2, 6);
        t.truncate_to(6);
        assert!(t.is_open(1) && !t.is_open(2));
        assert_eq!(t.first_unstable_offset(), Some(3));
        t.truncate_to(0);
        assert_eq!(t.first_unstable_offset(), None);
    }
}
