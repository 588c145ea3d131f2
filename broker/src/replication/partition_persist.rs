//! The on-disk side of a partition's producer and transaction state
//! (issue 14), as Kafka keeps it:
//! - at every segment roll, the finished segment's aborted transactions go
//!   to its `.txnindex` file and the state of every producer as of the new
//!   segment's base offset to `<base>.snapshot` (`log::producer_snapshot`),
//!   the index first, each written whole and fsynced;
//! - a clean shutdown writes the active segment's index and a snapshot at
//!   the log end;
//! - opening or truncating a log loads its newest snapshot at or below the
//!   log end, the aborted transactions the index files hold below that
//!   offset, and replays only the batches from it on. Snapshots above the
//!   log end and index entries at or past it are dropped first, so nothing
//!   a truncated (or torn) log no longer holds is ever reported again.
//!
//! So a restart reads the batches of the last segment, not the whole log,
//! and producers whose batches retention deleted keep their sequence state
//! (a retried batch is still a duplicate), as in Kafka (KIP-360).
//!
//! Files are written under the partition's writer lock, outside its state
//! lock, by blocking code (see ARCHITECTURE.md, threading).

use std::collections::BTreeMap;
use std::path::PathBuf;

use tracing::error;

use super::{Inner, Partition, PartitionTxns};
use crate::log::producer_snapshot::{self, SnapshotEntry};
use crate::log::txn_index::{self, AbortedTxn};
use crate::log::{Log, LogError};
use crate::replication::producer_state::{ProducerStateManager, ProducerView};

/// The files one roll (or a clean shutdown) writes.
#[derive(Debug)]
pub(super) struct PersistJob {
    dir: PathBuf,
    /// The finished (or active) segment's base and its aborted
    /// transactions.
    segment_base: i64,
    aborted: Vec<AbortedTxn>,
    /// Where the snapshot is taken, and its bytes.
    snapshot_offset: i64,
    snapshot: Vec<u8>,
    log_start: i64,
}

/// The sequence distance from `first` to `last` (sequences wrap at
/// `i32::MAX` to 0).
fn seq_delta(first: i32, last: i32) -> i32 {
    if last >= first {
        last - first
    } else {
        (i32::MAX - first) + last + 1
    }
}

/// The snapshot entries of a partition's state.
pub(super) fn snapshot_entries(
    producers: &ProducerStateManager,
    txns: &PartitionTxns,
) -> Vec<SnapshotEntry> {
    let mut out: BTreeMap<i64, SnapshotEntry> = BTreeMap::new();
    let tracker = &txns.tracker;
    for v in producers.views() {
        let (last_sequence, last_offset, offset_delta) = match v.last_batch {
            Some((first, last, base)) => {
                let d = seq_delta(first, last);
                (last, base + i64::from(d), d)
            }
            None => (-1, -1, 0),
        };
        out.insert(
            v.producer_id,
            SnapshotEntry {
                producer_id: v.producer_id,
                epoch: v.epoch,
                last_sequence,
                last_offset,
                offset_delta,
                timestamp: v.last_timestamp,
                coordinator_epoch: tracker.coordinator_epoch(v.producer_id).unwrap_or(-1),
                current_txn_first_offset: tracker.open_first_offset(v.producer_id).unwrap_or(-1),
            },
        );
    }
    for pid in tracker.producer_ids() {
        out.entry(pid).or_insert(SnapshotEntry {
            producer_id: pid,
            epoch: 0,
            last_sequence: -1,
            last_offset: -1,
            offset_delta: 0,
            timestamp: -1,
            coordinator_epoch: tracker.coordinator_epoch(pid).unwrap_or(-1),
            current_txn_first_offset: tracker.open_first_offset(pid).unwrap_or(-1),
        });
    }
    out.into_values().collect()
}

/// A partition's state from snapshot entries.
pub(super) fn restore(entries: &[SnapshotEntry]) -> (ProducerStateManager, PartitionTxns) {
    let mut producers = ProducerStateManager::default();
    let mut txns = PartitionTxns::default();
    for e in entries {
        let last_batch = (e.last_offset >= 0 && e.last_sequence >= 0).then(|| {
            let first = if e.last_sequence >= e.offset_delta {
                e.last_sequence - e.offset_delta
            } else {
                // The batch wrapped past i32::MAX.
                i32::MAX - (e.offset_delta - e.last_sequence - 1)
            };
            (
                first,
                e.last_sequence,
                e.last_offset - i64::from(e.offset_delta),
            )
        });
        producers.restore(&ProducerView {
            producer_id: e.producer_id,
            epoch: e.epoch,
            last_batch,
            last_timestamp: e.timestamp,
        });
        txns.tracker.restore(
            e.producer_id,
            (e.current_txn_first_offset >= 0).then_some(e.current_txn_first_offset),
            (e.coordinator_epoch >= 0).then_some(e.coordinator_epoch),
        );
    }
    (producers, txns)
}

/// A log's producer and transaction state: its newest usable snapshot,
/// the aborted transactions its index files hold below the snapshot, and
/// the batches from the snapshot on (all of them without one).
pub(super) fn rebuild(log: &Log) -> Result<(ProducerStateManager, PartitionTxns), LogError> {
    let dir = log.dir();
    let end = log.end_offset();
    txn_index::truncate_files(dir, end)?;
    let (mut producers, mut txns, from) = match producer_snapshot::load_latest(dir, end)? {
        Some((offset, entries)) => {
            let (p, mut t) = restore(&entries);
            t.aborted = txn_index::read_all(dir)?
                .into_iter()
                .filter(|a| a.last_offset < offset)
                .collect();
            (p, t, offset)
        }
        None => (
            ProducerStateManager::default(),
            PartitionTxns::default(),
            i64::MIN,
        ),
    };
    log.for_each_batch_from(from, &mut |h, m| {
        producers.record(h);
        txns.on_batch(h, m);
    })?;
    Ok((producers, txns))
}

/// The job that persists the segment at `segment_base` (its aborted
/// transactions up to `snapshot_offset`) and the state as of
/// `snapshot_offset`: `g`'s state must be the state at that offset.
fn job(g: &Inner, segment_base: i64, snapshot_offset: i64) -> PersistJob {
    let aborted = g
        .txns
        .aborted
        .iter()
        .filter(|a| a.last_offset >= segment_base && a.last_offset < snapshot_offset)
        .copied()
        .collect();
    PersistJob {
        dir: g.log.dir().to_path_buf(),
        segment_base,
        aborted,
        snapshot_offset,
        snapshot: producer_snapshot::encode(&snapshot_entries(&g.producers, &g.txns)),
        log_start: g.log.start_offset(),
    }
}

impl PersistJob {
    /// Writes the index, then the snapshot (never a snapshot whose index
    /// below it did not reach the disk), then drops files retention made
    /// useless. Failures are logged: the next roll tries again, and until
    /// then a restart replays from an older snapshot.
    pub(super) fn run(&self) {
        if let Err(e) = txn_index::write_file(&self.dir, self.segment_base, &self.aborted) {
            error!(dir = %self.dir.display(), segment = self.segment_base, error = %e, "writing a transaction index failed; no producer snapshot taken");
            return;
        }
        if let Err(e) = producer_snapshot::write(&self.dir, self.snapshot_offset, &self.snapshot) {
            error!(dir = %self.dir.display(), offset = self.snapshot_offset, error = %e, "writing a producer snapshot failed");
            return;
        }
        let pruned = producer_snapshot::delete_below(&self.dir, self.log_start)
            .and_then(|()| txn_index::delete_below(&self.dir, self.log_start));
        if let Err(e) = pruned {
            error!(dir = %self.dir.display(), error = %e, "removing producer snapshots or transaction indexes below the log start failed");
        }
    }
}

impl Partition {
    /// The jobs for the segments the log finished since the last call.
    /// Called with the log locked right after the roll, before anything
    /// past the new base is recorded in the producer state.
    pub(super) fn roll_jobs(g: &mut Inner) -> Vec<PersistJob> {
        g.log
            .take_rolls()
            .into_iter()
            .map(|(finished, new_base)| job(g, finished, new_base))
            .collect()
    }

    /// The job a clean shutdown runs: the active segment's index and a
    /// snapshot at the log end.
    pub(super) fn close_job(g: &Inner) -> PersistJob {
        let end = g.log.end_offset();
        let active = g.log.segment_bases().last().copied().unwrap_or(end);
        job(g, active, end)
    }

    /// The producers of this partition as a snapshot would hold them
    /// (DescribeProducers).
    pub fn active_producers(&self) -> Vec<SnapshotEntry> {
        let g = self.lock();
        snapshot_entries(&g.producers, &g.txns)
    }

    /// Forgets producers idle for `expiration_ms` with nothing open here
    /// (`producer.id.expiration.ms`). Returns how many went.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        let mut g = self.lock();
        let inner = &mut *g;
        let tracker = &inner.txns.tracker;
        let gone = inner
            .producers
            .expire(now_ms, expiration_ms, |pid| tracker.is_open(pid));
        for pid in &gone {
            inner.txns.tracker.forget(*pid);
        }
        gone.len()
    }

    /// After a truncation: drops what the log no longer holds from the
    /// files and reloads the state from them (`fully`: the log restarted
    /// empty, so no file of the old one is kept).
    pub(super) fn reload_after_truncation(g: &mut Inner, fully: bool) -> Result<(), LogError> {
        if fully {
            producer_snapshot::delete_all(g.log.dir())?;
            txn_index::truncate_files(g.log.dir(), i64::MIN)?;
        }
        let (producers, txns) = rebuild(&g.log)?;
        g.producers = producers;
        g.txns = txns;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::BatchHeader;

    fn header(pid: i64, base: i64, seq: i32, count: i32, attrs: i16) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: attrs,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 1000 + base,
            producer_id: pid,
            producer_epoch: 2,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn state_survives_a_snapshot_round_trip() {
        use crate::replication::producer_state::SequenceCheck;
        let mut producers = ProducerStateManager::default();
        let mut txns = PartitionTxns::default();
        // Producer 1: idempotent, last batch seq 5..=9 at offsets 20..=24.
        let a = header(1, 20, 5, 5, 0);
        producers.record(&a);
        // Producer 2: a transaction open since offset 25.
        let t = header(2, 25, 0, 2, 0x10);
        producers.record(&t);
        txns.on_batch(&t, None);
        // Producer 3: a wrapped batch (seq i32::MAX-1 .. 1).
        let w = header(3, 30, i32::MAX - 1, 4, 0);
        producers.record(&w);
        let entries = snapshot_entries(&producers, &txns);
        let bytes = producer_snapshot::encode(&entries);
        let (p2, t2) = restore(&producer_snapshot::decode(&bytes).expect("valid"));
        assert_eq!(p2.check(&a), SequenceCheck::Duplicate(20));
        assert_eq!(p2.check(&w), SequenceCheck::Duplicate(30));
        assert_eq!(p2.check(&header(1, 0, 10, 1, 0)), SequenceCheck::Append);
        assert!(matches!(
            p2.check(&header(1, 0, 12, 1, 0)),
            SequenceCheck::OutOfOrder { expected: 10, .. }
        ));
        assert_eq!(t2.tracker.first_unstable_offset(), Some(25));
        assert_eq!(p2.epoch_of(2), Some(2));
        let e1 = entries.iter().find(|e| e.producer_id == 1).expect("one");
        assert_eq!(
            (e1.last_sequence, e1.last_offset, e1.offset_delta),
            (9, 24, 4)
        );
        assert_eq!(e1.timestamp, 1020);
    }
}
