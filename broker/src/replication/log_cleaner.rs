//! The log cleaner threads' work (Kafka's `LogCleaner` and
//! `LogCleanerManager`): pick the hosted compacted log with the highest
//! dirty ratio past its `min.cleanable.dirty.ratio` (or due by
//! `max.compaction.lag.ms`), clean it without holding its partition lock,
//! swap the result in under the lock, and record the cleaner checkpoint.
//! Every replica cleans its own log, below its own high watermark.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tracing::{error, info};

use super::{Partition, ReplicaManager};
use crate::clock::now_ms;
use crate::log::{CleanStats, Cleanable, CleanerSettings, TopicPartition};

/// Cleaner progress since start (`log.cleaner` figures, logged with every
/// cleaning).
#[derive(Debug, Default, Clone)]
pub struct CleanerTotals {
    /// Cleanings finished and swapped in.
    pub cleanings: u64,
    /// Cleanings dropped (log changed) or failed.
    pub aborted: u64,
    /// Bytes read by the cleaner.
    pub bytes_read: u64,
    /// Bytes of segments replaced.
    pub bytes_before: u64,
    /// Bytes of the segments that replaced them.
    pub bytes_after: u64,
    /// Time spent cleaning (map and copy), in ms.
    pub busy_ms: u64,
}

/// Partitions being cleaned (one cleaner thread per log) and the totals.
#[derive(Debug, Default)]
pub struct CleanerState {
    busy: Mutex<HashSet<TopicPartition>>,
    totals: Mutex<CleanerTotals>,
}

impl CleanerState {
    /// The totals so far.
    pub fn totals(&self) -> CleanerTotals {
        self.totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record(&self, s: Option<&CleanStats>) {
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        match s {
            Some(s) => {
                t.cleanings += 1;
                t.bytes_read += s.bytes_read;
                t.bytes_before += s.bytes_replaced;
                t.bytes_after += s.bytes_written;
                t.busy_ms += s.elapsed.as_millis() as u64;
            }
            None => t.aborted += 1,
        }
    }
}

impl ReplicaManager {
    /// Cleans the dirtiest compacted log, if one is due. Blocking I/O (a
    /// cleaner thread). Returns whether a log was cleaned.
    pub fn clean_dirtiest(&self, settings: &CleanerSettings) -> bool {
        let now = now_ms();
        let picked = {
            let mut busy = self.cleaner.busy.lock().unwrap_or_else(|e| e.into_inner());
            let mut best: Option<(Arc<Partition>, Cleanable)> = None;
            for p in self.all() {
                if busy.contains(&p.tp) || p.is_retired() {
                    continue;
                }
                // Kafka cleans below the last stable offset (capped by the
                // high watermark): an open transaction is never cleaned.
                let hw = p.last_stable_offset();
                let checkpoint = self.logs.cleaner_offset(&p.tp);
                let Some(c) = p.with_log(|l| {
                    let min = l.config().min_cleanable_ratio_ppm;
                    l.cleanable(checkpoint, hw, now).filter(|c| c.due(min))
                }) else {
                    continue;
                };
                let better = match &best {
                    None => true,
                    Some((_, b)) => (c.needs_now && !b.needs_now) || c.ratio > b.ratio,
                };
                if better {
                    best = Some((p, c));
                }
            }
            let Some((p, c)) = best else { return false };
            busy.insert(p.tp.clone());
            (p, c)
        };
        let (p, c) = picked;
        let cleaned = self.clean_one(&p, &c, settings, now);
        self.cleaner
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&p.tp);
        cleaned
    }

    fn clean_one(
        &self,
        p: &Partition,
        c: &Cleanable,
        settings: &CleanerSettings,
        now: i64,
    ) -> bool {
        info!(partition = %p.tp, first_dirty = c.first_dirty, first_uncleanable = c.first_uncleanable, dirty_ratio = format!("{:.3}", c.ratio), due_by_max_lag = c.needs_now, "cleaning log");
        // Aborted transactions' records never supersede a key (Kafka's
        // `buildOffsetMap` skips them): below the LSO every transaction has
        // its marker, so this list covers the cleaned range.
        let aborted = p.aborted_txns();
        let plan = p.with_log(|l| l.plan_clean(c, now)).with_aborted(aborted);
        let outcome = match plan.run(settings) {
            Ok(Some(o)) => o,
            Ok(None) => return false,
            Err(e) => {
                error!(partition = %p.tp, error = %e, "log cleaning failed");
                self.cleaner.record(None);
                return false;
            }
        };
        if p.is_retired() {
            outcome.discard();
            self.cleaner.record(None);
            return false;
        }
        match p.with_log(|l| l.finish_clean(&outcome)) {
            Ok(true) => {
                let hosted: HashSet<TopicPartition> =
                    self.all().iter().map(|p| p.tp.clone()).collect();
                self.logs
                    .set_cleaner_offset(&p.tp, outcome.end_offset, &|tp| hosted.contains(tp));
                self.cleaner.record(Some(&outcome.stats));
                let t = self.cleaner.totals();
                info!(
                    cleanings = t.cleanings,
                    aborted = t.aborted,
                    bytes_read = t.bytes_read,
                    bytes_before = t.bytes_before,
                    bytes_after = t.bytes_after,
                    busy_ms = t.busy_ms,
                    "log cleaner totals"
                );
                true
            }
            Ok(false) => {
                self.cleaner.record(None);
                false
            }
            Err(e) => {
                error!(partition = %p.tp, error = %e, "swapping in a cleaned segment failed");
                self.cleaner.record(None);
                false
            }
        }
    }
}
