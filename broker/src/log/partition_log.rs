//! A partition's log: an ordered set of segments with a log start offset,
//! a log end offset, a leader-epoch cache, retention and flushing.

use crate::clock::now_ms;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tracing::{error, info, warn};

use super::cleaner;
use super::epoch_cache::LeaderEpochCache;
use super::segment::{file_stem, Segment, SegmentView};
use super::LogError;
use crate::config::LogConfig;
use crate::protocol::batch::{split_batches, BatchHeader};

mod append;
mod retention;
pub use append::{scan_replicated, PendingAppend, ProduceChecks};

/// What an append assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// The LogAppendTime stamped, or -1 for CreateTime topics.
    pub log_append_time: i64,
    /// The log start offset after the append.
    pub log_start_offset: i64,
}

#[path = "log_cleaning.rs"]
mod cleaning;
pub use cleaning::Cleanable;

/// A planned read: bytes `[position, position + len)` of `file`.
#[derive(Debug, Clone)]
pub struct ReadSlice {
    /// The segment file.
    pub file: Arc<File>,
    /// Start position.
    pub position: u64,
    /// Length in bytes.
    pub len: usize,
}

thread_local! {
    /// Memory reads are made into, reused once every `Bytes` cut from it is
    /// dropped (after the response is written): big fresh allocations per
    /// read cost a page fault per 4 KiB, which profiling of multi-partition
    /// fetch showed as a quarter of the broker's time.
    static READ_ARENA: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// Size of a read arena; reads above half of it get their own allocation.
const ARENA_BYTES: usize = 8 << 20;

impl ReadSlice {
    /// Performs the read.
    pub fn read(&self) -> io::Result<Bytes> {
        use std::os::unix::fs::FileExt;
        if self.len > ARENA_BYTES / 2 {
            let mut buf = vec![0u8; self.len];
            self.file.read_exact_at(&mut buf, self.position)?;
            return Ok(buf.into());
        }
        READ_ARENA.with(|arena| {
            let mut arena = arena.borrow_mut();
            if arena.capacity() < self.len {
                // Reclaims the arena when nothing cut from it is alive any
                // more, else allocates a fresh one.
                arena.clear();
                arena.reserve(ARENA_BYTES);
            }
            arena.resize(self.len, 0);
            let filled = self.file.read_exact_at(&mut arena[..], self.position);
            let bytes = arena.split_to(self.len).freeze();
            filled.map(|()| bytes)
        })
    }
}

/// A read planned under the log lock without I/O: which segments, from
/// where, up to which offset. [`ReadPlan::read`] scans the batch headers and
/// reads the bytes, outside the lock (on a blocking thread when called from
/// async code), so a read never holds the partition lock across I/O and
/// never waits behind an append's write or fsync.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// The segment holding `offset` and the ones after it up to the second
    /// one with data (cleaning can empty segments or leave gaps).
    segments: Vec<SegmentView>,
    offset: i64,
    max_bytes: usize,
    min_one: bool,
    max_offset: i64,
}

impl ReadPlan {
    /// Finds the bytes to serve: the first segment with a batch at or after
    /// the offset decides.
    pub fn resolve(&self) -> io::Result<Option<ReadSlice>> {
        for seg in &self.segments {
            let Some((file, position, len)) =
                seg.plan(self.offset, self.max_bytes, self.min_one, self.max_offset)?
            else {
                continue;
            };
            if len == 0 {
                return Ok(None);
            }
            return Ok(Some(ReadSlice {
                file,
                position,
                len,
            }));
        }
        Ok(None)
    }

    /// Performs the read: the stored batches, as they are (empty when none
    /// fits the plan).
    pub fn read(&self) -> io::Result<Bytes> {
        match self.resolve()? {
            Some(s) => s.read(),
            None => Ok(Bytes::new()),
        }
    }
}

/// One partition's log.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    /// The partition as Kafka names it in messages (`topic-0`): the
    /// directory's name.
    name: Arc<str>,
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    epochs: LeaderEpochCache,
    unflushed_messages: i64,
    last_flush_ms: i64,
    /// `flush.messages` / `flush.ms` came due in an append: the next
    /// [`Log::take_flush`] includes the active segment.
    flush_due: bool,
    /// Files of rolled segments not yet fsynced, and the offset they end at.
    owed: Vec<Arc<File>>,
    owed_upto: i64,
    /// Index entries of rolled segments not yet in their files.
    owed_index: Vec<(Arc<File>, Vec<u8>)>,
    /// Bumped by every truncation, so a flush that raced one does not move
    /// the recovery point.
    generation: u64,
    /// Offset up to which the log is known flushed to disk.
    pub recovery_point: i64,
    /// Segments finished since [`Log::take_rolls`] last ran: (finished
    /// segment's base, new active segment's base).
    rolls: Vec<(i64, i64)>,
}

/// fsyncs an append owes (`flush.messages`, `flush.ms`, a rolled segment),
/// taken from the log under the partition lock and run after it is
/// released: an fsync never holds the lock that reads and other partition
/// state take. [`Log::flushed`] then moves the recovery point.
#[derive(Debug)]
#[must_use = "a flush job does nothing until it is run"]
pub struct FlushJob {
    /// Index entries to append to their files first.
    writes: Vec<(Arc<File>, Vec<u8>)>,
    files: Vec<Arc<File>>,
    upto: i64,
    generation: u64,
}

impl FlushJob {
    /// fsyncs every file (blocking).
    pub fn run(&self) -> io::Result<()> {
        use std::io::Write;
        for (f, bytes) in &self.writes {
            (&**f).write_all(bytes)?;
        }
        for f in &self.files {
            f.sync_data()?;
        }
        Ok(())
    }
}

impl Log {
    /// Opens (or creates) the log in `dir`. `recover_from` is `None` after a
    /// clean shutdown; otherwise it is the recovery point (the offset up to
    /// which the log is known flushed, 0 when unknown), and every segment from
    /// the one holding it on is recovered: read, CRC-checked, re-indexed and
    /// cut after its last whole batch. Segments after one that recovery cut
    /// are deleted, as Kafka does: their offsets no longer follow on.
    /// `log_start_offset` is `None` when no checkpoint has one for this log:
    /// the log then starts at its first segment's base offset.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        log_start_offset: Option<i64>,
        recover_from: Option<i64>,
    ) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir)?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".log") {
                if stem.len() == 20 {
                    if let Ok(b) = stem.parse::<i64>() {
                        bases.push(b);
                    }
                }
            }
        }
        bases.sort_unstable();
        // A cleaning a crash interrupted: finished if it reached its commit
        // point (a `.swap`), else undone; a swapped-in segment is re-indexed.
        let swapped = cleaner::recover_swaps(dir, &mut bases)?;
        // Recovery starts at the segment holding the recovery point (the
        // first one if the point lies before every segment).
        let recover_base = recover_from.map(|rp| {
            bases
                .iter()
                .copied()
                .filter(|&b| b <= rp)
                .max()
                .or(bases.first().copied())
                .unwrap_or(0)
        });
        let mut segments = BTreeMap::new();
        let mut cut: Option<i64> = None;
        for (i, &b) in bases.iter().enumerate() {
            if let Some(at) = cut {
                error!(dir = %dir.display(), segment = %file_stem(b), cut_at = at, "deleting a segment that follows one recovery cut short");
                Segment::remove_files(dir, b)?;
                continue;
            }
            let recover = recover_base.is_some_and(|r| b >= r) || swapped.contains(&b);
            let before = if recover {
                std::fs::metadata(dir.join(format!("{}.log", file_stem(b))))?.len()
            } else {
                0
            };
            let seg = Segment::open(dir, b, recover, config.index_interval_bytes)?;
            if recover && seg.size() < before && i + 1 < bases.len() {
                cut = Some(seg.next_offset);
            }
            segments.insert(b, seg);
        }
        let mut epochs = LeaderEpochCache::open(dir);
        if segments.is_empty() {
            let start = log_start_offset.unwrap_or(0);
            segments.insert(start, Segment::create(dir, start, now_ms())?);
        }
        let first_base = *segments.keys().next().unwrap_or(&0);
        let end = segments
            .values()
            .next_back()
            .map(|s| s.next_offset)
            .unwrap_or(0);
        let log_start_offset = log_start_offset
            .unwrap_or(first_base)
            .clamp(first_base, end.max(first_base));
        if epochs.is_stale() {
            let segs = &segments;
            epochs.rebuild(|f| {
                for seg in segs.values() {
                    seg.for_each_header(f)?;
                }
                Ok(())
            })?;
        }
        epochs.truncate_from_end(end)?;
        epochs.truncate_from_start(log_start_offset)?;
        let name: Arc<str> = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .into();
        let log = Self {
            dir: dir.to_path_buf(),
            name,
            config,
            segments,
            log_start_offset,
            epochs,
            unflushed_messages: 0,
            last_flush_ms: now_ms(),
            flush_due: false,
            owed: Vec::new(),
            owed_upto: end,
            owed_index: Vec::new(),
            generation: 0,
            recovery_point: end,
            rolls: Vec::new(),
        };
        info!(dir = %dir.display(), log_start_offset, log_end_offset = end, segments = log.segments.len(), "loaded log");
        Ok(log)
    }

    fn active(&self) -> &Segment {
        // A log always has at least one segment.
        self.segments
            .values()
            .next_back()
            .expect("log has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("log has an active segment")
    }

    /// The log end offset (next offset to assign).
    pub fn end_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// The log start offset.
    pub fn start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    /// Total bytes on disk across segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }

    /// The config in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the config (dynamic topic config change).
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Validates, stamps and appends the record batches of one produce
    /// request for this partition, as leader in `leader_epoch`.
    pub fn append_as_leader(
        &mut self,
        records: &mut [u8],
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        let batches = split_batches(records)?;
        self.append_batches(records, &batches, leader_epoch)
    }

    /// Removes everything from `offset` on (a follower whose log diverged
    /// from its leader's). The batch holding `offset` goes whole, so the
    /// new log end may be below `offset`. Returns the new log end.
    pub fn truncate_to(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset >= self.end_offset() {
            return Ok(self.end_offset());
        }
        let first = *self.segments.keys().next().unwrap_or(&0);
        if offset <= first {
            return self.truncate_fully_and_start_at(offset.max(self.log_start_offset));
        }
        let doomed: Vec<i64> = self.segments.range(offset + 1..).map(|(b, _)| *b).collect();
        for b in doomed {
            if let Some(seg) = self.segments.remove(&b) {
                seg.delete()?;
            }
        }
        if self.segments.is_empty() {
            return self.truncate_fully_and_start_at(offset);
        }
        let interval = self.config.index_interval_bytes;
        let removed = self.active_mut().truncate_to(offset, interval)?;
        self.generation += 1;
        // Owed index entries may belong to the segment just cut (its index
        // is rebuilt): they must not land after the rebuilt ones.
        self.owed_index.clear();
        let end = self.end_offset();
        warn!(dir = %self.dir.display(), offset, log_end_offset = end, removed_bytes = removed, "truncated the log");
        self.epochs.truncate_from_end(end)?;
        self.recovery_point = self.recovery_point.min(end);
        Ok(end)
    }

    /// Deletes every segment and starts the log empty at `offset` (a
    /// follower far behind its leader's log start).
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<i64, LogError> {
        let all: Vec<i64> = self.segments.keys().copied().collect();
        for b in all {
            if let Some(seg) = self.segments.remove(&b) {
                seg.delete()?;
            }
        }
        self.segments
            .insert(offset, Segment::create(&self.dir, offset, now_ms())?);
        self.log_start_offset = offset;
        self.epochs.clear()?;
        self.generation += 1;
        self.owed.clear();
        self.owed_index.clear();
        self.recovery_point = offset;
        warn!(dir = %self.dir.display(), offset, "truncated the whole log");
        Ok(offset)
    }

    /// Kafka's `endOffsetForEpoch`: see [`LeaderEpochCache::end_offset_for`].
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.end_offset())
    }

    /// `segment.ms`, bounded by `max.compaction.lag.ms` on a compacted
    /// topic (Kafka's `LogConfig.maxSegmentMs`).
    fn segment_ms(&self) -> i64 {
        let cfg = &self.config;
        if cfg.compact && cfg.max_compaction_lag_ms > 0 {
            cfg.segment_ms.min(cfg.max_compaction_lag_ms)
        } else {
            cfg.segment_ms
        }
    }

    /// Rolls before appending a batch of `incoming` bytes ending at
    /// `last_offset` when the active segment is full, old, has a full
    /// index, or cannot index the batch: Kafka's `LogSegment.shouldRoll`,
    /// whose offset index holds offsets relative to the segment base as a
    /// u32 (at most `i32::MAX` apart) and positions as a u32. The new
    /// segment starts at `first_offset` (the batch's; a follower's batch
    /// may start past the log end of a compacted log).
    fn maybe_roll(
        &mut self,
        incoming: u64,
        last_offset: i64,
        first_offset: i64,
        now: i64,
    ) -> Result<(), LogError> {
        let cfg = &self.config;
        let seg = self.active();
        let full = seg.size() > 0 && seg.size() + incoming > cfg.segment_bytes;
        let aged = seg.size() > 0
            && now - seg.created_ms
                > self
                    .segment_ms()
                    .saturating_sub(cfg.segment_jitter_ms.max(0));
        let index_full = seg.index_full(cfg.segment_index_bytes);
        let unindexable = last_offset - seg.base_offset > i64::from(i32::MAX)
            || seg.size() + incoming > u64::from(u32::MAX);
        if full || aged || index_full || unindexable {
            self.roll_at(now, first_offset)?;
        }
        Ok(())
    }

    /// Starts a new active segment at the log end offset.
    pub fn roll(&mut self, now: i64) -> Result<(), LogError> {
        let end = self.end_offset();
        self.roll_at(now, end)
    }

    /// Starts a new active segment at `at` (at least the log end offset).
    fn roll_at(&mut self, now: i64, at: i64) -> Result<(), LogError> {
        let end = self.end_offset().max(at);
        if self.active().base_offset == end {
            return Ok(());
        }
        if self.active().size() == 0 {
            // An empty active segment below a follower's sparse batch moves
            // to the batch's offset.
            let base = self.active().base_offset;
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete()?;
            }
            let seg = Segment::create(&self.dir, end, now)?;
            self.segments.insert(end, seg);
            return Ok(());
        }
        // The finished segment is flushed (by the caller's next FlushJob,
        // outside the partition lock), so a crash can only ever tear the
        // active one; the recovery point moves only once it is.
        let files = self.active().files();
        self.rolls.push((self.active().base_offset, end));
        self.owed.extend(files);
        let index = self.active_mut().take_index_writes();
        self.owed_index.extend(index);
        self.owed_upto = end;
        let seg = Segment::create(&self.dir, end, now)?;
        self.segments.insert(end, seg);
        Ok(())
    }

    /// The segments finished since the last call: (finished segment's
    /// base, the new active segment's base), oldest first. The partition
    /// persists its producer state at each new base (see
    /// `replication::producer_persist`).
    pub fn take_rolls(&mut self) -> Vec<(i64, i64)> {
        std::mem::take(&mut self.rolls)
    }

    /// Rolls the active segment if it is older than `segment.ms`.
    pub fn roll_if_aged(&mut self, now: i64) -> Result<(), LogError> {
        let seg = self.active();
        if seg.size() > 0 && now - seg.created_ms > self.segment_ms() {
            self.roll(now)?;
        }
        Ok(())
    }

    fn maybe_flush(&mut self, now: i64) -> Result<(), LogError> {
        if self.unflushed_messages >= self.config.flush_messages
            || (self.config.flush_ms != i64::MAX
                && now - self.last_flush_ms >= self.config.flush_ms)
        {
            self.flush_due = true;
        }
        Ok(())
    }

    /// The fsyncs owed (a rolled segment; the active one when
    /// `flush.messages` or `flush.ms` came due), for the caller to run
    /// outside the partition lock and then report with [`Log::flushed`].
    pub fn take_flush(&mut self) -> Option<FlushJob> {
        if !self.flush_due && self.owed.is_empty() && self.owed_index.is_empty() {
            return None;
        }
        let mut files = std::mem::take(&mut self.owed);
        let mut writes = std::mem::take(&mut self.owed_index);
        let upto = if self.flush_due {
            files.extend(self.active().files());
            writes.extend(self.active_mut().take_index_writes());
            self.unflushed_messages = 0;
            self.last_flush_ms = now_ms();
            self.flush_due = false;
            self.end_offset()
        } else {
            self.owed_upto
        };
        Some(FlushJob {
            writes,
            files,
            upto,
            generation: self.generation,
        })
    }

    /// Records that `job` ran: the log is durable up to its offset.
    pub fn flushed(&mut self, job: &FlushJob) {
        if job.generation == self.generation {
            self.recovery_point = self.recovery_point.max(job.upto.min(self.end_offset()));
        }
    }

    /// fsyncs the active segment and any rolled one not yet flushed, here
    /// and now (shutdown, housekeeping's `flush.ms`).
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.flush_due = true;
        if let Some(job) = self.take_flush() {
            job.run()?;
            self.flushed(&job);
        }
        Ok(())
    }

    /// Plans a read starting at `offset`, of at most `max_bytes` (but at
    /// least one whole batch when `min_one` is set), below `max_offset`,
    /// without I/O: see [`ReadPlan`]. `Ok(None)` when there is nothing below
    /// `max_offset` to read.
    pub fn plan_read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        max_offset: i64,
    ) -> Result<Option<ReadPlan>, LogError> {
        let end = self.end_offset();
        if offset < self.log_start_offset || offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end,
            });
        }
        if offset >= max_offset {
            return Ok(None);
        }
        // The segment holding `offset` and the next one with data: cleaning
        // may leave a segment without a batch at or after `offset`, or empty.
        let mut with_data = 0;
        let segments = self
            .segments
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.segments.range(offset + 1..))
            .take_while(|(_, seg)| {
                let more = with_data < 2;
                with_data += usize::from(seg.size() > 0);
                more
            })
            .map(|(_, seg)| seg.view(offset))
            .collect();
        Ok(Some(ReadPlan {
            segments,
            offset,
            max_bytes,
            min_one,
            max_offset,
        }))
    }

    /// Plans and resolves a read (with I/O): [`Log::plan_read`] then
    /// [`ReadPlan::resolve`].
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        max_offset: i64,
    ) -> Result<Option<ReadSlice>, LogError> {
        match self.plan_read(offset, max_bytes, min_one, max_offset)? {
            Some(plan) => Ok(plan.resolve()?),
            None => Ok(None),
        }
    }

    /// The offset of the first batch whose max timestamp is `>= ts`, with
    /// that timestamp and the batch's leader epoch.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64, i32)>, LogError> {
        for seg in self.segments.values() {
            if seg.max_timestamp.0 < ts {
                continue;
            }
            // Batches are ordered by offset, not time: scan every batch whose
            // max timestamp qualifies and take the first record that does.
            let mut pos = seg.locate_timestamp(ts)?.map(|l| l.position);
            while let Some(p) = pos {
                let Some(h) = seg.header_at(p)? else { break };
                if h.max_timestamp >= ts {
                    let bytes = ReadSlice {
                        file: seg.file(),
                        position: p,
                        len: h.total_size(),
                    }
                    .read()?;
                    let hit = crate::protocol::batch::record_timestamps(&bytes)?
                        .into_iter()
                        .find(|(off, t)| *t >= ts && *off >= self.log_start_offset);
                    if let Some((off, t)) = hit {
                        return Ok(Some((off, t, h.partition_leader_epoch)));
                    }
                }
                pos = Some(p + h.total_size() as u64);
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the (first) record with the largest timestamp.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let best = self
            .segments
            .values()
            .filter(|s| s.max_timestamp.0 >= 0)
            .fold(None, |acc: Option<&Segment>, s| match acc {
                Some(a) if a.max_timestamp.0 >= s.max_timestamp.0 => Some(a),
                _ => Some(s),
            });
        let Some(seg) = best else { return Ok(None) };
        let (ts, batch_last) = seg.max_timestamp;
        let Some(loc) = seg.locate(batch_last)? else {
            return Ok(Some((batch_last, ts)));
        };
        let bytes = ReadSlice {
            file: seg.file(),
            position: loc.position,
            len: loc.header.total_size(),
        }
        .read()?;
        let exact = crate::protocol::batch::record_timestamps(&bytes)?
            .into_iter()
            .find(|(_, t)| *t == ts)
            .map(|(o, _)| o)
            .unwrap_or(batch_last);
        Ok(Some((exact.max(self.log_start_offset), ts)))
    }

    /// The leader epoch of the batch containing `offset` (from the epoch cache).
    pub fn epoch_for_offset(&self, offset: i64) -> i32 {
        self.epochs.epoch_for(offset)
    }

    /// The latest leader epoch recorded.
    pub fn latest_epoch(&self) -> i32 {
        self.epochs.latest().unwrap_or(-1)
    }

    /// Calls `f` with every batch header in the log, in offset order.
    pub fn for_each_header(&self, f: &mut dyn FnMut(&BatchHeader)) -> Result<(), LogError> {
        for seg in self.segments.values() {
            seg.for_each_header(f)?;
        }
        Ok(())
    }

    /// Every batch's header with its transaction marker, if a marker
    /// (rebuilding producer and transaction state).
    pub fn for_each_batch(
        &self,
        f: &mut dyn FnMut(&BatchHeader, Option<crate::txn::marker::EndTxnMarker>),
    ) -> Result<(), LogError> {
        self.for_each_batch_from(i64::MIN, f)
    }

    /// As [`Log::for_each_batch`], for the batches at or past `offset` (a
    /// batch boundary: a producer snapshot's offset) only; segments wholly
    /// below it are not read.
    pub fn for_each_batch_from(
        &self,
        offset: i64,
        f: &mut dyn FnMut(&BatchHeader, Option<crate::txn::marker::EndTxnMarker>),
    ) -> Result<(), LogError> {
        let first = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for seg in self.segments.range(first..).map(|(_, s)| s) {
            seg.for_each_batch(&mut |h, m| {
                if h.base_offset >= offset {
                    f(h, m);
                }
            })?;
        }
        Ok(())
    }

    /// Flushes and closes the log.
    pub fn close(mut self) -> Result<(), LogError> {
        self.flush()
    }

    /// Deletes the log's directory and everything in it.
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => {
                warn!(dir = %dir.display(), error = %e, "cannot delete log directory");
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::stamp;
    use crate::protocol::batch::tests::encode;
    use kafka_protocol::records::Compression;

    fn small_config() -> LogConfig {
        LogConfig {
            segment_bytes: 600,
            ..LogConfig::default()
        }
    }

    #[test]
    fn follower_appends_keep_the_leaders_offsets_and_truncate_on_divergence() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = LogConfig::default();
        let mut leader = Log::open(&dir.path().join("l-0"), cfg.clone(), None, None).expect("l");
        let mut follower = Log::open(&dir.path().join("f-0"), cfg.clone(), None, None).expect("f");
        for epoch in [1, 1, 2, 2, 2] {
            let mut b = encode(4, Compression::None);
            leader.append_as_leader(&mut b, epoch).expect("append");
        }
        let all = leader
            .read(0, 1 << 20, true, i64::MAX)
            .expect("read")
            .expect("data")
            .read()
            .expect("bytes");
        // A size-capped read may end inside a batch: only whole ones land.
        let n = follower
            .append_as_follower(&all[..all.len() - 10], &mut |_| {})
            .expect("follow");
        assert_eq!(follower.end_offset(), 16);
        assert!(n > 0);
        // The same bytes again (a retried fetch) are skipped, the rest lands.
        follower
            .append_as_follower(&all, &mut |_| {})
            .expect("retry");
        assert_eq!(follower.end_offset(), 20);
        assert_eq!(follower.end_offset_for_epoch(1), (1, 8));
        assert_eq!(follower.end_offset_for_epoch(2), (2, 20));
        // A batch overlapping the log end is refused.
        let mut overlap = encode(4, Compression::None);
        stamp(&mut overlap, 18, 2, None);
        assert!(follower.append_as_follower(&overlap, &mut |_| {}).is_err());
        // One past a gap is taken, as Kafka's: a compacted leader's log is sparse.
        let mut gap = encode(1, Compression::None);
        stamp(&mut gap, 25, 2, None);
        follower
            .append_as_follower(&gap, &mut |_| {})
            .expect("sparse");
        assert_eq!(follower.end_offset(), 26);
        // Divergence: cut mid-batch, the whole batch goes.
        assert_eq!(follower.truncate_to(10).expect("truncate"), 8);
        assert_eq!(follower.latest_epoch(), 1);
        assert_eq!(follower.end_offset_for_epoch(2), (-1, -1));
        drop(follower);
        let mut again = Log::open(&dir.path().join("f-0"), cfg, None, Some(0)).expect("reopen");
        assert_eq!(again.end_offset(), 8);
        assert_eq!(again.truncate_to(0).expect("full"), 0);
        assert_eq!(again.end_offset(), 0);
        assert_eq!(again.latest_epoch(), -1);
    }

    #[test]
    fn append_read_lookup_and_recover() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("t-0");
        let mut log = Log::open(&p, small_config(), None, Some(0)).expect("open");
        for _ in 0..5 {
            let mut b = encode(4, Compression::None);
            log.append_as_leader(&mut b, 3).expect("append");
        }
        assert_eq!(log.end_offset(), 20);
        assert!(log.segments.len() > 1, "small segment.bytes rolls");
        // Timestamps restart at 1000 in every batch; the first record at >= 1002 is offset 2.
        assert_eq!(
            log.offset_for_timestamp(1002).expect("ts").map(|x| x.0),
            Some(2)
        );
        assert_eq!(log.max_timestamp().expect("max").map(|x| x.0), Some(3));
        let r = log.read(9, 1 << 20, true, 20).expect("read").expect("data");
        let bytes = r.read().expect("bytes");
        let first = BatchHeader::parse(&bytes).expect("header");
        assert_eq!((first.base_offset, first.partition_leader_epoch), (8, 3));
        drop(log);
        // Tear the tail: half a batch appended after the last whole one.
        let last = std::fs::read_dir(&p)
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|x| x.extension().is_some_and(|e| e == "log"))
            .max()
            .expect("segment");
        let torn = encode(4, Compression::None);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&last)
            .expect("open");
        std::io::Write::write_all(&mut f, &torn[..torn.len() / 2]).expect("write");
        let log = Log::open(&p, small_config(), None, Some(0)).expect("reopen");
        assert_eq!(
            log.end_offset(),
            20,
            "torn tail dropped, whole batches kept"
        );
        assert_eq!(log.epoch_for_offset(19), 3);
    }
}
