//! The transaction side of a hosted partition (issue 14): its open
//! transactions and last stable offset ([`TxnTracker`]), the aborted
//! transactions a read_committed fetch reports, and the transaction
//! markers WriteTxnMarkers appends as leader.
//!
//! Leaders and followers feed every appended batch, in log order, to
//! [`PartitionTxns::on_batch`]; a restarted broker replays its log the
//! same way (markers read from their control batches), so the LSO and the
//! aborted transactions follow the log and nothing else. The aborted
//! transactions are kept in memory, rebuilt from the log on open (Kafka
//! also keeps them per segment in `.txnindex` files; Runnel does not
//! write those yet).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use kafka_protocol::error::ResponseError;

use super::{log_error, not_leader, Inner, Partition, Role};
use crate::error::ApiError;
use crate::log::txn_index::{collect_aborted, AbortedTxn};
use crate::log::AppendInfo;
use crate::protocol::batch::BatchHeader;
use crate::replication::txn_tracker::TxnTracker;
use crate::txn::marker::{marker_batch, marker_of_batch, EndTxnMarker};

/// The markers among `batches` (ranges into `records`), by base offset as
/// the bytes now say.
pub(super) fn markers_in(
    records: &[u8],
    batches: &[(BatchHeader, std::ops::Range<usize>)],
) -> Vec<(i64, EndTxnMarker)> {
    batches
        .iter()
        .filter(|(h, _)| h.is_control())
        .filter_map(|(_, r)| {
            let b = records.get(r.clone())?;
            let h = BatchHeader::parse(b).ok()?;
            Some((h.base_offset, marker_of_batch(b)?))
        })
        .collect()
}

/// The marker of the batch at `base_offset` among `markers`.
pub(super) fn marker_at(markers: &[(i64, EndTxnMarker)], base_offset: i64) -> Option<EndTxnMarker> {
    markers
        .iter()
        .find(|(o, _)| *o == base_offset)
        .map(|(_, m)| *m)
}

/// What a client's append of transactional data must show (KIP-890 part
/// 1, Kafka's `VerificationGuard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnVerification {
    /// Not checked (`transaction.partition.verification.enable=false`, or
    /// not a client append).
    Off,
    /// Checked: a transactional batch that does not continue the
    /// producer's open transaction here needs this guard, got from
    /// [`Partition::start_txn_verification`] and still current (no marker
    /// for the producer since). `None`: no verification was started.
    Guard(Option<u64>),
}

/// Open and aborted transactions of one partition.
#[derive(Debug, Default)]
pub struct PartitionTxns {
    /// Open transactions (the LSO).
    pub tracker: TxnTracker,
    /// Aborted transactions by increasing marker offset.
    pub aborted: Vec<AbortedTxn>,
    /// Verifications under way or done (KIP-890): producer id -> guard,
    /// dropped by the producer's next marker (Kafka's
    /// `VerificationStateEntry`).
    verifying: HashMap<i64, u64>,
}

/// The last verification guard handed out, process-wide, so a guard is
/// never reused (not even after a partition's state is rebuilt).
static LAST_GUARD: AtomicU64 = AtomicU64::new(0);

impl PartitionTxns {
    /// Feeds one appended (or replayed) batch, with its marker when it is
    /// a control batch.
    pub fn on_batch(&mut self, h: &BatchHeader, marker: Option<EndTxnMarker>) {
        if h.producer_id < 0 || !h.is_transactional() {
            return;
        }
        if h.is_control() {
            // A transaction ended: the next one is verified afresh.
            self.verifying.remove(&h.producer_id);
            let Some(m) = marker else { return };
            let done =
                self.tracker
                    .on_marker(h.producer_id, h.base_offset, m.commit, m.coordinator_epoch);
            if let Some(c) = done.filter(|c| c.aborted) {
                self.aborted.push(AbortedTxn {
                    producer_id: c.producer_id,
                    first_offset: c.first_offset,
                    last_offset: c.last_offset,
                    last_stable_offset: c.last_stable_offset,
                });
            }
        } else {
            self.tracker.on_data(h.producer_id, h.base_offset);
        }
    }

    /// The aborted transactions a read_committed fetch from `fetch_offset`
    /// up to `upper_bound` must report (Kafka's
    /// `collectAbortedTransactions`).
    pub fn aborted_between(&self, fetch_offset: i64, upper_bound: i64) -> Vec<AbortedTxn> {
        // Entries are in marker order: skip those that end before the fetch.
        let from = self
            .aborted
            .partition_point(|a| a.last_offset < fetch_offset);
        collect_aborted(&self.aborted[from..], fetch_offset, upper_bound).0
    }
}

/// What a read_committed read returned.
#[derive(Debug, Clone)]
pub struct CommittedRead {
    /// The read, limited to the last stable offset.
    pub read: super::ReadResult,
    /// The last stable offset.
    pub last_stable_offset: i64,
    /// The aborted transactions within the read.
    pub aborted: Vec<AbortedTxn>,
}

impl Partition {
    /// The last stable offset: the first offset of the oldest open
    /// transaction, capped by the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        self.lock().txns.tracker.last_stable_offset(hw)
    }

    /// Plans a read_committed consumer's read from `offset` up to the last
    /// stable offset, with the aborted transactions it covers.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<CommittedRead, ApiError> {
        let g = self.lock();
        if g.retired {
            return Err(super::not_hosted());
        }
        let hw = self.hw.borrow().hw;
        let lso = g.txns.tracker.last_stable_offset(hw);
        let slice = g
            .log
            .plan_read(offset, max_bytes, min_one, lso)
            .map_err(log_error)?;
        let aborted = g.txns.aborted_between(offset, lso);
        Ok(CommittedRead {
            read: super::ReadResult {
                slice,
                high_watermark: hw,
                log_start_offset: g.log.start_offset(),
            },
            last_stable_offset: lso,
            aborted,
        })
    }

    /// The leader's checks of a produced data batch against the
    /// partition's open transactions (INVALID_TXN_STATE).
    pub(super) fn check_txn_data(g: &Inner, h: &BatchHeader) -> Result<(), ApiError> {
        g.txns
            .tracker
            .check_data(h.producer_id, h.is_transactional())
            .map_err(|e| {
                ApiError::new(
                    e,
                    format!(
                        "producer {} has an open transaction on this partition",
                        h.producer_id
                    ),
                )
            })
    }

    /// KIP-890 part 1: whether a transactional batch of `producer_id` at
    /// `producer_epoch` continues a transaction open here (Kafka's
    /// `UnifiedLog.hasOngoingTransaction`).
    fn continues_txn(g: &Inner, producer_id: i64, producer_epoch: i16) -> bool {
        g.txns.tracker.is_open(producer_id)
            && g.producers.epoch_of(producer_id) == Some(producer_epoch)
    }

    /// Starts verifying that `producer_id`'s running transaction includes
    /// this partition (Kafka's `maybeStartTransactionVerification`): `None`
    /// when it already has a transaction open here at `producer_epoch` (no
    /// need), else the guard the append must show once the coordinator
    /// said yes (the same one while a verification is under way).
    pub fn start_txn_verification(&self, producer_id: i64, producer_epoch: i16) -> Option<u64> {
        let mut g = self.lock();
        if Self::continues_txn(&g, producer_id, producer_epoch) {
            return None;
        }
        if let Some(guard) = g.txns.verifying.get(&producer_id) {
            return Some(*guard);
        }
        let guard = LAST_GUARD.fetch_add(1, Ordering::Relaxed) + 1;
        g.txns.verifying.insert(producer_id, guard);
        Some(guard)
    }

    /// KIP-890 part 1 on append: transactional data that does not continue
    /// an open transaction here needs a current verification guard, else
    /// INVALID_TXN_STATE (Kafka's `batchMissingRequiredVerification`).
    pub(super) fn check_txn_verified(
        g: &Inner,
        h: &BatchHeader,
        verify: TxnVerification,
    ) -> Result<(), ApiError> {
        let TxnVerification::Guard(guard) = verify else {
            return Ok(());
        };
        if !h.is_transactional()
            || h.is_control()
            || h.producer_id < 0
            || Self::continues_txn(g, h.producer_id, h.producer_epoch)
        {
            return Ok(());
        }
        if guard.is_some() && g.txns.verifying.get(&h.producer_id) == guard.as_ref() {
            return Ok(());
        }
        Err(ApiError::new(
            ResponseError::InvalidTxnState,
            "Record was not part of an ongoing transaction",
        ))
    }

    /// The aborted transactions of this partition (for the log cleaner).
    pub fn aborted_txns(&self) -> Vec<AbortedTxn> {
        self.lock().txns.aborted.clone()
    }

    /// The producer epoch this partition knows for `producer_id` (from its
    /// idempotent batches and transaction markers).
    pub fn producer_epoch(&self, producer_id: i64) -> Option<i16> {
        self.lock().producers.epoch_of(producer_id)
    }

    /// Appends a transactional batch a coordinator built on this leader in
    /// leader epoch `epoch` (the group coordinator's TxnOffsetCommit
    /// records, Kafka's origin COORDINATOR: no sequence check, but the
    /// partition's open transactions follow it).
    pub fn append_coordinator_in_epoch(
        &self,
        records: &mut [u8],
        epoch: i32,
    ) -> Result<AppendInfo, ApiError> {
        self.append_control_in_epoch(records, epoch)
    }

    /// WriteTxnMarkers on the leader: appends the marker ending
    /// `producer_id`'s transaction here (as Kafka's
    /// `appendRecordsToLeader` with origin COORDINATOR). A marker from an
    /// older coordinator epoch than the producer's last one is
    /// TRANSACTION_COORDINATOR_FENCED, one with an older producer epoch
    /// INVALID_PRODUCER_EPOCH.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTxnMarker,
    ) -> Result<AppendInfo, ApiError> {
        let leader_epoch = {
            let g = self.lock();
            if g.retired {
                return Err(super::not_hosted());
            }
            let Role::Leader(s) = &g.role else {
                return Err(not_leader());
            };
            g.txns
                .tracker
                .check_marker(producer_id, marker.coordinator_epoch)
                .map_err(ApiError::code)?;
            if g.producers
                .epoch_of(producer_id)
                .is_some_and(|e| e > producer_epoch)
            {
                return Err(ApiError::new(
                    ResponseError::InvalidProducerEpoch,
                    format!("marker epoch {producer_epoch} of producer {producer_id} is stale"),
                ));
            }
            s.leader_epoch
        };
        let mut batch = marker_batch(
            producer_id,
            producer_epoch,
            marker,
            leader_epoch,
            crate::clock::now_ms(),
        )
        .map_err(|e| ApiError::new(ResponseError::UnknownServerError, e.to_string()))?;
        self.append_control_in_epoch(&mut batch, leader_epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, base: i64, control: bool) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0x10 | if control { 0x20 } else { 0 },
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: if control { -1 } else { 0 },
            records_count: 1,
        }
    }

    fn marker(commit: bool) -> Option<EndTxnMarker> {
        Some(EndTxnMarker {
            commit,
            coordinator_epoch: 0,
        })
    }

    #[test]
    fn an_abort_is_reported_to_fetches_that_overlap_it_and_a_commit_is_not() {
        let mut t = PartitionTxns::default();
        t.on_batch(&header(1, 0, false), None);
        t.on_batch(&header(2, 1, false), None);
        assert_eq!(t.tracker.last_stable_offset(10), 0);
        t.on_batch(&header(1, 2, true), marker(false));
        t.on_batch(&header(2, 3, true), marker(true));
        assert_eq!(t.tracker.last_stable_offset(10), 10);
        let a = t.aborted_between(0, 10);
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].producer_id, a[0].first_offset), (1, 0));
        // A fetch past the abort marker does not need it.
        assert!(t.aborted_between(3, 10).is_empty());
    }

    #[test]
    fn non_transactional_batches_change_nothing() {
        let mut t = PartitionTxns::default();
        let mut h = header(1, 0, false);
        h.attributes = 0;
        t.on_batch(&h, None);
        assert_eq!(t.tracker.last_stable_offset(5), 5);
    }
}
