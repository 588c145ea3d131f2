//! The cleaner's side of [`Log`]: what is cleanable, the plan taken under
//! the partition lock, and the swap (see `log/cleaner.rs`).

use std::sync::Arc;

use tracing::info;

use crate::log::cleaner::{
    self, suffixed, CleanOutcome, CleanPlan, SegmentSnap, CLEANED_SUFFIX, SWAP_SUFFIX,
};
use crate::log::segment::{file_stem, Segment};
use crate::log::{Log, LogError};

/// How dirty a compacted log is (Kafka's `LogToClean`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    /// The first offset not yet cleaned.
    pub first_dirty: i64,
    /// The first offset that may not be cleaned (high watermark, active
    /// segment, `min.compaction.lag.ms`).
    pub first_uncleanable: i64,
    /// Bytes of the segments in `[first_dirty, first_uncleanable)`.
    pub dirty_bytes: u64,
    /// Dirty bytes over all bytes below `first_uncleanable`.
    pub ratio: f64,
    /// `max.compaction.lag.ms` passed for the oldest dirty record.
    pub needs_now: bool,
}

impl Cleanable {
    /// Kafka's `grabFilthiestCompactedLog` filter: past
    /// `min.cleanable.dirty.ratio`, or due by `max.compaction.lag.ms`.
    pub fn due(&self, min_ratio_ppm: u32) -> bool {
        self.dirty_bytes > 0 && (self.needs_now || self.ratio > f64::from(min_ratio_ppm) / 1e6)
    }
}

impl Log {
    /// Kafka's `LogCleanerManager.cleanableOffsets` with the dirty ratio:
    /// `None` unless the log is compacted. `checkpoint` is the cleaner
    /// checkpoint's first dirty offset (reset to the log start when outside
    /// the log), `high_watermark` bounds what may be cleaned. Reads at most
    /// one batch header (with `max.compaction.lag.ms` set).
    pub fn cleanable(
        &self,
        checkpoint: Option<i64>,
        high_watermark: i64,
        now: i64,
    ) -> Option<Cleanable> {
        if !self.config.compact {
            return None;
        }
        let start = self.log_start_offset;
        let end = self.end_offset();
        let first_dirty = match checkpoint {
            Some(c) if c >= start && c <= end => c,
            _ => start,
        };
        let active_base = self.active().base_offset;
        let floor = self
            .segments
            .range(..=first_dirty)
            .next_back()
            .map(|(b, _)| *b)
            .unwrap_or(first_dirty);
        let dirty_segments = self
            .segments
            .range(floor..)
            .filter(|(b, _)| **b != active_base)
            .map(|(_, s)| s);
        let mut upper = high_watermark.min(active_base);
        let min_lag = self.config.min_compaction_lag_ms;
        if min_lag > 0 {
            if let Some(s) = dirty_segments
                .clone()
                .find(|s| s.max_timestamp.0 > now.saturating_sub(min_lag))
            {
                upper = upper.min(s.base_offset);
            }
        }
        let max_lag = self.config.max_compaction_lag_ms;
        let needs_now = max_lag > 0
            && max_lag < i64::MAX
            && dirty_segments
                .clone()
                .next()
                .and_then(|s| s.header_at(0).ok().flatten())
                .is_some_and(|h| {
                    h.max_timestamp >= 0 && h.max_timestamp < now.saturating_sub(max_lag)
                });
        if first_dirty >= upper {
            return None;
        }
        let clean_bytes: u64 = self
            .segments
            .range(..first_dirty)
            .map(|(_, s)| s.size())
            .sum();
        let dirty_bytes: u64 = self
            .segments
            .range(floor..upper)
            .map(|(_, s)| s.size())
            .sum();
        let total = clean_bytes + dirty_bytes;
        let ratio = if total == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total as f64
        };
        Some(Cleanable {
            first_dirty,
            first_uncleanable: upper,
            dirty_bytes,
            ratio,
            needs_now,
        })
    }

    /// Snapshots what a cleaning of `c` needs (no I/O): run it with
    /// [`CleanPlan::run`] outside the lock.
    pub fn plan_clean(&self, c: &Cleanable, now: i64) -> CleanPlan {
        let active_base = self.active().base_offset;
        let snap = |s: &Segment| SegmentSnap {
            base: s.base_offset,
            file: s.file(),
            size: s.size(),
        };
        let segments = self
            .segments
            .range(..c.first_uncleanable)
            .filter(|(b, _)| **b != active_base)
            .map(|(_, s)| snap(s))
            .collect::<Vec<_>>();
        let first_later = segments.last().map(|s| s.base + 1).unwrap_or(i64::MIN);
        let later = self
            .segments
            .range(first_later..)
            .map(|(_, s)| snap(s))
            .collect();
        CleanPlan {
            dir: self.dir.clone(),
            segments,
            later,
            first_dirty: c.first_dirty,
            upper: c.first_uncleanable,
            config: self.config.clone(),
            generation: self.generation,
            now,
            aborted: Vec::new(),
        }
    }

    /// Swaps the cleaned segments in (metadata operations and a directory
    /// fsync per group). Returns `false`, and removes the cleaned files,
    /// when the log changed under the cleaning (truncated, segments deleted
    /// by retention): the cleaning is then simply dropped.
    pub fn finish_clean(&mut self, outcome: &CleanOutcome) -> Result<bool, LogError> {
        let unchanged = outcome.generation == self.generation
            && outcome.groups.iter().all(|g| {
                g.old.iter().all(|s| {
                    self.segments.get(&s.base).is_some_and(|seg| {
                        Arc::ptr_eq(&seg.file(), &s.file) && seg.size() == s.size
                    })
                })
            });
        if !unchanged {
            info!(dir = %self.dir.display(), "the log changed during its cleaning: dropping the cleaned segments");
            outcome.discard();
            return Ok(false);
        }
        let dir = self.dir.clone();
        let interval = self.config.index_interval_bytes;
        // The commit point of every group: its `.swap`, made durable by one
        // directory fsync before any old segment goes.
        for g in &outcome.groups {
            let base = g.old[0].base;
            std::fs::rename(
                suffixed(&dir, base, "log", CLEANED_SUFFIX),
                suffixed(&dir, base, "log", SWAP_SUFFIX),
            )?;
        }
        crate::log::checkpoint::sync_dir(&dir)?;
        cleaner::failpoint("swap");
        for g in &outcome.groups {
            for s in &g.old {
                if let Some(seg) = self.segments.remove(&s.base) {
                    seg.delete()?;
                }
            }
        }
        cleaner::failpoint("deleted");
        // No fsync needed after these renames: a crash before they are
        // durable leaves the `.swap` (or a rebuilt index), which opening
        // completes the same way.
        for g in &outcome.groups {
            let base = g.old[0].base;
            for ext in ["index", "timeindex"] {
                std::fs::rename(
                    suffixed(&dir, base, ext, CLEANED_SUFFIX),
                    suffixed(&dir, base, ext, ""),
                )?;
            }
            std::fs::rename(
                suffixed(&dir, base, "log", SWAP_SUFFIX),
                suffixed(&dir, base, "log", ""),
            )?;
            // Kept even when empty, as Kafka's: the first segment's base is
            // the log start offset a restart falls back to.
            let seg = Segment::open(&dir, base, false, interval)?;
            self.segments.insert(base, seg);
        }
        let s = &outcome.stats;
        info!(
            dir = %dir.display(),
            first = %file_stem(outcome.groups.first().map(|g| g.old[0].base).unwrap_or(0)),
            cleaned_up_to = outcome.end_offset,
            bytes_before = s.bytes_replaced,
            bytes_after = s.bytes_written,
            records_read = s.records_read,
            records_kept = s.records_kept,
            map_entries = s.map_entries,
            ms = s.elapsed.as_millis() as u64,
            mb_per_s = format!("{:.1}", s.bytes_read as f64 / 1e6 / s.elapsed.as_secs_f64().max(1e-6)),
            "cleaned log"
        );
        cleaner::failpoint("swapped");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    use super::*;
    use crate::config::LogConfig;
    use crate::log::txn_index::AbortedTxn;
    use crate::log::CleanerSettings;

    type Entry = (i64, String, Option<String>);

    fn batch(records: &[(&str, Option<&str>)], compression: Compression, pid: i64) -> Vec<u8> {
        let now = crate::clock::now_ms();
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: if pid >= 0 { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: if pid >= 0 { i as i32 } else { -1 },
                timestamp: now + i as i64,
                key: Some(Bytes::from(k.to_string())),
                value: v.map(|v| Bytes::from(v.to_string())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode");
        buf.to_vec()
    }

    /// One whole cleaning pass of everything below the log end, at `now`
    /// (it must find something to clean); returns the log end.
    fn clean_all(log: &mut Log, now: i64) -> i64 {
        let end = log.end_offset();
        let c = log.cleanable(None, end, now).expect("compacted");
        let out = log
            .plan_clean(&c, now)
            .run(&settings())
            .expect("run")
            .expect("some");
        assert!(log.finish_clean(&out).expect("swap"));
        end
    }

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 700,
            compact: true,
            delete: false,
            min_cleanable_ratio_ppm: 0,
            ..LogConfig::default()
        }
    }

    fn read_all(log: &Log) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut at = log.start_offset();
        while at < log.end_offset() {
            let Some(slice) = log.read(at, 1 << 20, true, i64::MAX).expect("read") else {
                break;
            };
            let mut bytes = slice.read().expect("bytes");
            let mut next = at;
            while !bytes.is_empty() {
                let set = RecordBatchDecoder::decode(&mut bytes).expect("decode");
                for r in set.records {
                    out.push((
                        r.offset,
                        String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).to_string(),
                        r.value.map(|v| String::from_utf8_lossy(&v).to_string()),
                    ));
                    next = r.offset + 1;
                }
            }
            // Empty retained batches hold no record: step past the slice's batches.
            let mut pos = 0;
            let raw = slice.read().expect("bytes");
            while pos + crate::protocol::batch::HEADER_LEN <= raw.len() {
                let h = crate::protocol::batch::BatchHeader::parse(&raw[pos..]).expect("h");
                next = next.max(h.last_offset() + 1);
                pos += h.total_size();
            }
            at = next;
        }
        out
    }

    /// 40 updates of 5 keys in batches of mixed codecs, a tombstone for k4,
    /// an idempotent producer's batches, then a roll.
    fn filled(dir: &std::path::Path) -> (Log, Vec<Entry>) {
        let mut log = Log::open(dir, config(), None, None).expect("open");
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        let mut latest: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
        for i in 0..20 {
            let vals: Vec<(String, Option<String>)> = (0..2)
                .map(|j| (format!("k{}", (i * 2 + j) % 5), Some(format!("v{i}-{j}"))))
                .collect();
            let refs: Vec<(&str, Option<&str>)> = vals
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect();
            let pid = if i % 3 == 0 { 7 } else { -1 };
            let mut b = batch(&refs, codecs[i % 5], pid);
            let info = log.append_as_leader(&mut b, 1).expect("append");
            for (j, (k, v)) in vals.into_iter().enumerate() {
                latest.insert(k, (info.base_offset + j as i64, v));
            }
        }
        let mut b = batch(&[("k4", None)], Compression::None, -1);
        let info = log.append_as_leader(&mut b, 1).expect("tombstone");
        latest.insert("k4".into(), (info.base_offset, None));
        log.roll(crate::clock::now_ms()).expect("roll");
        let mut expected: Vec<Entry> = latest.into_iter().map(|(k, (o, v))| (o, k, v)).collect();
        expected.sort();
        (log, expected)
    }

    fn settings() -> CleanerSettings {
        CleanerSettings {
            dedupe_buffer_bytes: 1 << 20,
            io_bytes_per_sec: f64::MAX,
        }
    }

    #[test]
    fn cleaning_keeps_the_latest_record_of_every_key_at_its_offset() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("t-0");
        let (mut log, expected) = filled(&dir);
        let before = log.segment_bases().len();
        assert!(before > 3, "{before} segments");
        let bytes_before = log.size_bytes();
        let now = crate::clock::now_ms();
        let end = log.end_offset();
        let c = log.cleanable(None, end, now).expect("compacted");
        assert!(c.due(0), "{c:?}");
        assert_eq!(c.first_uncleanable, end);
        let out = log
            .plan_clean(&c, now)
            .run(&settings())
            .expect("run")
            .expect("some");
        assert_eq!(out.end_offset, end);
        assert!(log.finish_clean(&out).expect("swap"));
        assert_eq!(
            read_all(&log),
            expected,
            "tombstone kept within delete.retention.ms"
        );
        assert!(log.size_bytes() < bytes_before / 2);
        assert_eq!(log.end_offset(), end, "the last batch is kept, even empty");
        // Nothing dirty is left; a second pass changes nothing.
        assert!(log.cleanable(Some(out.end_offset), end, now).is_none());
        let again = log
            .plan_clean(&c, now)
            .run(&settings())
            .expect("run")
            .expect("some");
        assert!(log.finish_clean(&again).expect("swap"));
        assert_eq!(read_all(&log), expected);
        // Past the delete horizon the tombstone goes.
        let later = now + config().delete_retention_ms + 1;
        let gone = log
            .plan_clean(&c, later)
            .run(&settings())
            .expect("run")
            .expect("some");
        assert!(log.finish_clean(&gone).expect("swap"));
        let no_k4: Vec<Entry> = expected.iter().filter(|e| e.1 != "k4").cloned().collect();
        assert_eq!(read_all(&log), no_k4);
        drop(log);
        let log = Log::open(&dir, config(), None, Some(0)).expect("reopen");
        assert_eq!(read_all(&log), no_k4);
        assert_eq!(log.end_offset(), end);
    }

    #[test]
    fn a_cleaning_interrupted_at_any_step_leaves_a_whole_log() {
        for step in ["cleaned", "swap", "deleted"] {
            let tmp = tempfile::tempdir().expect("tmp");
            let dir = tmp.path().join("t-0");
            let (log, expected) = filled(&dir);
            let all = read_all(&log);
            let end = log.end_offset();
            let now = crate::clock::now_ms();
            let c = log.cleanable(None, end, now).expect("compacted");
            let out = log
                .plan_clean(&c, now)
                .run(&settings())
                .expect("run")
                .expect("some");
            let bases = log.segment_bases();
            drop(log);
            // Replay the swap by hand up to `step`, as a crash would leave it.
            let base = out.groups[0].old[0].base;
            if step != "cleaned" {
                std::fs::rename(
                    suffixed(&dir, base, "log", CLEANED_SUFFIX),
                    suffixed(&dir, base, "log", SWAP_SUFFIX),
                )
                .expect("swap");
            }
            if step == "deleted" {
                for s in &out.groups[0].old {
                    Segment::remove_files(&dir, s.base).expect("rm");
                }
            }
            let log = Log::open(&dir, config(), None, Some(0)).expect("reopen");
            let got = read_all(&log);
            assert_eq!(log.end_offset(), end, "{step}");
            if step == "cleaned" {
                assert_eq!(got, all, "{step}: the old segments stay");
                assert_eq!(log.segment_bases(), bases);
            } else {
                // The first group is swapped in; later groups are as they were.
                let latest: BTreeMap<&str, &Entry> =
                    got.iter().map(|e| (e.1.as_str(), e)).collect();
                let want: BTreeMap<&str, &Entry> =
                    expected.iter().map(|e| (e.1.as_str(), e)).collect();
                assert_eq!(latest, want, "{step}");
                let offsets: Vec<i64> = got.iter().map(|e| e.0).collect();
                let mut sorted = offsets.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(offsets, sorted, "{step}: offsets ascend, no duplicates");
                assert!(got.len() < all.len(), "{step}");
            }
            let names: Vec<String> = std::fs::read_dir(&dir)
                .expect("dir")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
                .collect();
            assert!(names.is_empty(), "{step}: {names:?}");
        }
    }

    #[test]
    fn a_follower_copies_a_compacted_log_across_its_gaps() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (mut leader, expected) = filled(&tmp.path().join("l-0"));
        let end = clean_all(&mut leader, crate::clock::now_ms());
        let mut follower = Log::open(&tmp.path().join("f-0"), config(), None, None).expect("f");
        let mut fetches = 0;
        while follower.end_offset() < end {
            fetches += 1;
            assert!(fetches < 100, "no progress at {}", follower.end_offset());
            let slice = leader
                .read(follower.end_offset(), 300, true, i64::MAX)
                .expect("read")
                .expect("data");
            let bytes = slice.read().expect("bytes");
            follower
                .append_as_follower(&bytes, &mut |_| {})
                .expect("append");
        }
        assert_eq!(read_all(&follower), expected);
        assert_eq!(follower.end_offset(), end);
    }

    #[test]
    fn a_batch_past_the_index_range_of_the_active_segment_rolls() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("f-0");
        let mut log = Log::open(&dir, config(), None, None).expect("open");
        let mut first = batch(&[("a", Some("1"))], Compression::None, -1);
        crate::protocol::batch::stamp(&mut first, 0, 1, None);
        log.append_as_follower(&first, &mut |_| {}).expect("first");
        // A compacted leader's next batch lies more than i32::MAX offsets on.
        let far = 1i64 << 32;
        let mut next = batch(&[("b", Some("2"))], Compression::None, -1);
        crate::protocol::batch::stamp(&mut next, far, 1, None);
        log.append_as_follower(&next, &mut |_| {}).expect("far");
        assert_eq!(log.segment_bases(), vec![0, far]);
        assert_eq!(log.end_offset(), far + 1);
        let got = read_all(&log);
        assert_eq!(
            got.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![0, far],
            "both found through the indexes"
        );
        drop(log);
        let log = Log::open(&dir, config(), None, Some(0)).expect("reopen");
        assert_eq!(read_all(&log).len(), 2);
    }

    #[test]
    fn compact_delete_retention_passes_the_empty_segments_cleaning_leaves() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (mut log, _) = filled(&tmp.path().join("t-0"));
        let now = crate::clock::now_ms();
        let end = clean_all(&mut log, now);
        let empty_first = log.segments.values().next().is_some_and(|s| s.size() == 0);
        assert!(empty_first, "the first group lost every record");
        log.set_config(LogConfig {
            delete: true,
            retention_ms: 1000,
            ..config()
        });
        log.apply_retention(now + 10_000).expect("retention");
        assert_eq!(
            log.segment_bases(),
            vec![end],
            "only the active segment is left"
        );
        assert_eq!(log.start_offset(), end);
    }

    #[test]
    fn an_aborted_transaction_never_makes_an_older_value_go() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = Log::open(dir.path(), config(), None, None).expect("open");
        let mut b = batch(&[("k", Some("committed"))], Compression::None, -1);
        let kept = log.append_as_leader(&mut b, 1).expect("append").base_offset;
        // Producer 9 writes k in a transaction, which is aborted.
        let mut t = batch(&[("k", Some("aborted"))], Compression::None, 9);
        t[22] |= 0x10; // attributes (low byte): transactional
        let crc = crc32c::crc32c(&t[21..]);
        t[17..21].copy_from_slice(&crc.to_be_bytes());
        let first = log.append_as_leader(&mut t, 1).expect("txn").base_offset;
        let marker = crate::txn::marker::EndTxnMarker {
            commit: false,
            coordinator_epoch: 0,
        };
        let mut m =
            crate::txn::marker::marker_batch(9, 0, marker, 1, crate::clock::now_ms()).expect("m");
        // A control batch is not a client's: append it as replicated, at
        // the log end (the base offset is outside the CRC).
        let at = log.end_offset();
        m[..8].copy_from_slice(&at.to_be_bytes());
        log.append_as_follower(&m, &mut |_| {}).expect("marker");
        log.roll(crate::clock::now_ms()).expect("roll");
        let now = crate::clock::now_ms();
        let end = log.end_offset();
        let c = log.cleanable(None, end, now).expect("compacted");
        let aborted = vec![AbortedTxn {
            producer_id: 9,
            first_offset: first,
            last_offset: at,
            last_stable_offset: end,
        }];
        let out = log
            .plan_clean(&c, now)
            .with_aborted(aborted)
            .run(&settings())
            .expect("run");
        if let Some(out) = out {
            assert!(log.finish_clean(&out).expect("swap"));
        }
        let left = read_all(&log);
        assert!(
            left.contains(&(kept, "k".into(), Some("committed".into()))),
            "the committed value went: {left:?}"
        );
    }
}
