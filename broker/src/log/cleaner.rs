//! Log compaction, as Kafka's `Cleaner` (core/.../log/LogCleaner.scala).
//!
//! A cleaning has three steps. [`Log::plan_clean`] (under the partition
//! lock, no I/O) snapshots the segments below the first uncleanable offset.
//! [`CleanPlan::run`] (no lock, blocking I/O: the cleaner's own thread)
//! builds the offset map (key → latest offset) over the dirty section, then
//! copies every group of segments' surviving batches into a new segment
//! written as `<base>.log.cleaned` (with `.index.cleaned`,
//! `.timeindex.cleaned`), fsynced. [`Log::finish_clean`] (under the lock,
//! metadata operations only) swaps each group in: `.log.cleaned` is renamed
//! `.log.swap` (the commit point; the directory is fsynced), the old
//! segments' files are removed, the new index files and then the `.swap`
//! are renamed into place. [`recover_swaps`] on open completes a swap a
//! crash interrupted and drops `.cleaned` files, as Kafka's `LogLoader`.
//!
//! Batches keep their base offset, last offset delta, producer id, epoch and
//! base sequence (Kafka's `MemoryRecords.filterTo`), so offsets become sparse
//! and idempotent producers' sequence state survives; a rewritten batch gets
//! a new CRC.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{error, warn};

use super::segment::{file_stem, Segment};
use super::txn_index::AbortedTxn;
use super::LogError;
use crate::config::LogConfig;
use crate::protocol::batch::{
    check_crc, decompress_bounded, varint, BatchError, BatchHeader, HEADER_LEN, MAX_DECOMPRESSED,
};

/// Suffix of a cleaned segment's files before the swap.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment's `.log` between the commit point and the
/// end of the swap.
pub const SWAP_SUFFIX: &str = ".swap";
/// Test-only: names a step of the swap at which the process aborts (a crash
/// at that step): `cleaned` (cleaned segment written, nothing swapped),
/// `swap` (renamed `.swap`, old segments still there), `deleted` (old
/// segments removed, `.swap` not yet renamed), `swapped` (swap done, cleaner
/// checkpoint not yet written). Used by `tests/durability/test_compaction.py`.
pub const FAILPOINT_ENV: &str = "RUNNEL_TEST_CLEANER_FAILPOINT";

/// Batch attribute: the base timestamp is the delete horizon (KIP-534).
const DELETE_HORIZON_FLAG: i16 = 0x40;
/// Kafka's `dupBufferLoadFactor`.
const LOAD_FACTOR: f64 = 0.9;
/// Bytes Kafka's `SkimpyOffsetMap` spends per entry (MD5 hash + offset).
const MAP_ENTRY_BYTES: u64 = 24;
/// Read buffer of the cleaner.
const READ_CHUNK: usize = 1 << 20;

/// Aborts the process at `step` when the test failpoint names it.
pub(crate) fn failpoint(step: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == step) {
        error!(
            step,
            "test failpoint {FAILPOINT_ENV} reached: aborting the process"
        );
        std::process::abort();
    }
}

/// Broker-wide cleaner settings.
#[derive(Debug, Clone)]
pub struct CleanerSettings {
    /// `log.cleaner.dedupe.buffer.size` divided among the cleaner threads.
    pub dedupe_buffer_bytes: u64,
    /// `log.cleaner.io.max.bytes.per.second` (read and written bytes).
    pub io_bytes_per_sec: f64,
}

/// What one cleaning did.
#[derive(Debug, Clone, Default)]
pub struct CleanStats {
    /// Bytes read (offset map pass and copy pass).
    pub bytes_read: u64,
    /// Bytes of the cleaned segments.
    pub bytes_written: u64,
    /// Bytes of the segments replaced.
    pub bytes_replaced: u64,
    /// Records read in the copy pass.
    pub records_read: u64,
    /// Records kept.
    pub records_kept: u64,
    /// Keys in the offset map.
    pub map_entries: usize,
    /// Wall time of the run (map and copy, not the swap).
    pub elapsed: Duration,
}

/// A segment as the plan saw it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentSnap {
    pub base: i64,
    pub file: Arc<File>,
    pub size: u64,
}

/// A cleaning planned under the partition lock: see the module docs.
#[derive(Debug)]
pub struct CleanPlan {
    pub(crate) dir: PathBuf,
    /// Every segment with a base below `upper`, oldest first (never the active one).
    pub(crate) segments: Vec<SegmentSnap>,
    /// The segments after those (for the producers' last batches).
    pub(crate) later: Vec<SegmentSnap>,
    pub(crate) first_dirty: i64,
    /// The first uncleanable offset.
    pub(crate) upper: i64,
    pub(crate) config: LogConfig,
    pub(crate) generation: u64,
    pub(crate) now: i64,
    /// The partition's aborted transactions: their records are left out
    /// of the offset map, so they never make an older value of their key
    /// go (Kafka's `buildOffsetMap`).
    pub(crate) aborted: Vec<AbortedTxn>,
}

impl CleanPlan {
    /// The plan, with the partition's aborted transactions.
    pub fn with_aborted(mut self, aborted: Vec<AbortedTxn>) -> Self {
        self.aborted = aborted;
        self
    }

    /// Whether the transactional batch `h` belongs to an aborted
    /// transaction.
    fn is_aborted(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && h.producer_id >= 0
            && self.aborted.iter().any(|a| {
                a.producer_id == h.producer_id
                    && a.first_offset <= h.base_offset
                    && h.base_offset < a.last_offset
            })
    }
}

/// One group of old segments cleaned into one new segment.
#[derive(Debug)]
pub(crate) struct CleanedGroup {
    /// The old segments (the new one takes the first one's base).
    pub old: Vec<SegmentSnap>,
}

/// The result of [`CleanPlan::run`], for [`Log::finish_clean`](super::Log::finish_clean).
#[derive(Debug)]
pub struct CleanOutcome {
    pub(crate) dir: PathBuf,
    pub(crate) groups: Vec<CleanedGroup>,
    pub(crate) generation: u64,
    /// The first offset not cleaned: the next first dirty offset.
    pub end_offset: i64,
    /// Statistics.
    pub stats: CleanStats,
}

impl CleanOutcome {
    /// Removes the cleaned files (an abandoned cleaning).
    pub(crate) fn discard(&self) {
        for g in &self.groups {
            if let Some(first) = g.old.first() {
                remove_cleaned(&self.dir, first.base);
            }
        }
    }
}

/// The path of one of a segment's files with a suffix.
pub(crate) fn suffixed(dir: &Path, base: i64, ext: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{}.{ext}{suffix}", file_stem(base)))
}

fn remove_cleaned(dir: &Path, base: i64) {
    for ext in ["log", "index", "timeindex"] {
        let p = suffixed(dir, base, ext, CLEANED_SUFFIX);
        if let Err(e) = std::fs::remove_file(&p) {
            if e.kind() != io::ErrorKind::NotFound {
                warn!(file = %p.display(), error = %e, "cannot remove a cleaned segment file");
            }
        }
    }
}

/// Limits the cleaner's I/O to `log.cleaner.io.max.bytes.per.second`.
struct Throttle {
    limit: f64,
    start: Instant,
    bytes: u64,
}

impl Throttle {
    fn new(limit: f64) -> Self {
        Self {
            limit,
            start: Instant::now(),
            bytes: 0,
        }
    }

    fn account(&mut self, n: u64) {
        self.bytes += n;
        if !(self.limit.is_finite() && self.limit > 0.0) {
            return;
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.limit);
        let spent = self.start.elapsed();
        if due > spent {
            std::thread::sleep(due - spent);
        }
    }
}

/// Reads a segment's batches in large chunks.
struct BatchReader<'a> {
    file: &'a File,
    size: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_at: u64,
}

impl<'a> BatchReader<'a> {
    fn new(seg: &'a SegmentSnap) -> Self {
        Self {
            file: &seg.file,
            size: seg.size,
            pos: 0,
            buf: Vec::new(),
            buf_at: 0,
        }
    }

    /// The next whole batch, CRC-checked; `None` at the end.
    fn next_batch(
        &mut self,
        throttle: &mut Throttle,
    ) -> Result<Option<(BatchHeader, &[u8])>, LogError> {
        if self.pos + HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        self.fill(HEADER_LEN, throttle)?;
        let off = (self.pos - self.buf_at) as usize;
        let h = BatchHeader::parse(&self.buf[off..])?;
        let len = h.total_size();
        if h.magic != 2 || len < HEADER_LEN || self.pos + len as u64 > self.size {
            return Err(LogError::Batch(BatchError::Corrupt(format!(
                "bad batch at position {} of a segment being cleaned",
                self.pos
            ))));
        }
        self.fill(len, throttle)?;
        let off = (self.pos - self.buf_at) as usize;
        let bytes = &self.buf[off..off + len];
        check_crc(bytes, &h)?;
        self.pos += len as u64;
        Ok(Some((h, bytes)))
    }

    /// Makes `[pos, pos + n)` resident in the buffer.
    fn fill(&mut self, n: usize, throttle: &mut Throttle) -> io::Result<()> {
        let have_end = self.buf_at + self.buf.len() as u64;
        if self.pos >= self.buf_at && self.pos + n as u64 <= have_end {
            return Ok(());
        }
        let want = n.max(READ_CHUNK).min((self.size - self.pos) as usize);
        self.buf.resize(want, 0);
        self.file.read_exact_at(&mut self.buf, self.pos)?;
        self.buf_at = self.pos;
        throttle.account(want as u64);
        Ok(())
    }
}

/// One record of a batch, borrowed from its decompressed payload.
struct Rec<'a> {
    attrs: u8,
    ts_delta: i64,
    offset_delta: i64,
    key: Option<&'a [u8]>,
    has_value: bool,
    /// The record's bytes after the offset delta (key, value, headers).
    tail: &'a [u8],
}

fn parse_records(payload: &[u8], count: i32) -> Result<Vec<Rec<'_>>, BatchError> {
    let corrupt = |m: &str| BatchError::Corrupt(format!("record in a cleaned segment: {m}"));
    let mut out = Vec::with_capacity(count.clamp(0, 1 << 16) as usize);
    let mut b = payload;
    for _ in 0..count {
        let len = varint(&mut b)?;
        if len < 1 || len as usize > b.len() {
            return Err(corrupt("length out of bounds"));
        }
        let (mut rec, rest) = b.split_at(len as usize);
        b = rest;
        let attrs = rec[0];
        rec = &rec[1..];
        let ts_delta = varint(&mut rec)?;
        let offset_delta = varint(&mut rec)?;
        let tail = rec;
        let klen = varint(&mut rec)?;
        let key = if klen < 0 {
            None
        } else {
            let k = klen as usize;
            if k > rec.len() {
                return Err(corrupt("key out of bounds"));
            }
            let key = &rec[..k];
            rec = &rec[k..];
            Some(key)
        };
        let vlen = varint(&mut rec)?;
        out.push(Rec {
            attrs,
            ts_delta,
            offset_delta,
            key,
            has_value: vlen >= 0,
            tail,
        });
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Compresses a records payload with a batch codec (Kafka's framings).
fn compress(codec: i16, raw: &[u8]) -> Result<Vec<u8>, LogError> {
    Ok(match codec {
        0 => raw.to_vec(),
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(raw)?;
            e.finish()?
        }
        2 => {
            // xerial framing, as Kafka's Java clients write it.
            let mut out = b"\x82SNAPPY\x00".to_vec();
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in raw.chunks(32 * 1024) {
                let block = enc
                    .compress_vec(chunk)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            out
        }
        3 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(raw)?;
            e.finish().map_err(|e| io::Error::other(e.to_string()))?
        }
        4 => zstd::stream::encode_all(raw, 3)?,
        other => return Err(LogError::Batch(BatchError::UnsupportedCompression(other))),
    })
}

/// Key → latest offset over the dirty section (Kafka's `SkimpyOffsetMap`:
/// keys are stored as 128-bit hashes, the entry count bounded by the
/// dedupe buffer).
struct OffsetMap {
    map: HashMap<u128, i64>,
    slots: usize,
    latest: i64,
}

fn key_hash(key: &[u8]) -> u128 {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0x9e37_79b9_u32.hash(&mut b);
    key.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

impl OffsetMap {
    fn new(buffer_bytes: u64) -> Self {
        let slots = ((buffer_bytes / MAP_ENTRY_BYTES) as f64 * LOAD_FACTOR) as usize;
        Self {
            map: HashMap::new(),
            slots: slots.max(1),
            latest: -1,
        }
    }

    fn get(&self, key: &[u8]) -> i64 {
        self.map.get(&key_hash(key)).copied().unwrap_or(-1)
    }
}

/// Whether a batch whose records are all dropped stays as an empty batch.
fn retain_empty(h: &BatchHeader, last_of_producer: &HashMap<i64, i64>, upper: i64) -> bool {
    (h.producer_id >= 0 && last_of_producer.get(&h.producer_id) == Some(&h.last_offset()))
        || h.last_offset() + 1 == upper
}

impl CleanPlan {
    /// Builds the offset map and writes the cleaned segments (blocking I/O,
    /// no lock). `Ok(None)` when the dirty section held nothing to map.
    pub fn run(&self, settings: &CleanerSettings) -> Result<Option<CleanOutcome>, LogError> {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(settings.io_bytes_per_sec);
        let mut stats = CleanStats::default();
        let mut map = OffsetMap::new(settings.dedupe_buffer_bytes);
        self.build_map(&mut map, &mut throttle)?;
        if map.latest < self.first_dirty {
            return Ok(None);
        }
        let end_offset = map.latest + 1;
        stats.map_entries = map.map.len();
        let last_of_producer = self.last_batches_of_producers()?;
        let planned = self.group_segments(end_offset);
        let mut groups = Vec::new();
        for group in planned.iter() {
            if let Err(e) =
                self.clean_group(group, &map, &last_of_producer, &mut throttle, &mut stats)
            {
                for g in &planned {
                    remove_cleaned(&self.dir, g[0].base);
                }
                return Err(e);
            }
            groups.push(CleanedGroup { old: group.clone() });
        }
        let outcome = CleanOutcome {
            dir: self.dir.clone(),
            groups,
            generation: self.generation,
            end_offset,
            stats,
        };
        let mut outcome = outcome;
        outcome.stats.bytes_read = throttle.bytes;
        outcome.stats.elapsed = t0.elapsed();
        failpoint("cleaned");
        Ok(Some(outcome))
    }

    /// Kafka's `buildOffsetMap`: every keyed record in
    /// `[first_dirty, upper)`, until the map is full (at a batch boundary).
    fn build_map(&self, map: &mut OffsetMap, throttle: &mut Throttle) -> Result<(), LogError> {
        let dirty = self
            .segments
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                let next_base = self
                    .segments
                    .get(i + 1)
                    .map(|n| n.base)
                    .unwrap_or(self.upper);
                next_base > self.first_dirty && s.base < self.upper
            })
            .map(|(_, s)| s);
        for seg in dirty {
            let mut r = BatchReader::new(seg);
            while let Some((h, bytes)) = r.next_batch(throttle)? {
                if h.last_offset() < self.first_dirty {
                    continue;
                }
                if h.base_offset >= self.upper {
                    return Ok(());
                }
                if map.map.len() + h.records_count.max(0) as usize > map.slots && map.latest >= 0 {
                    warn!(dir = %self.dir.display(), entries = map.map.len(), "cleaner offset map full (log.cleaner.dedupe.buffer.size): cleaning part of the dirty section");
                    return Ok(());
                }
                if !h.is_control() && !self.is_aborted(&h) {
                    let payload = decompress_bounded(
                        h.compression(),
                        &bytes[HEADER_LEN..],
                        MAX_DECOMPRESSED,
                    )?;
                    for rec in parse_records(&payload, h.records_count)? {
                        let off = h.base_offset + rec.offset_delta;
                        if off < self.first_dirty || off >= self.upper {
                            continue;
                        }
                        if let Some(k) = rec.key {
                            map.map.insert(key_hash(k), off);
                        }
                    }
                }
                map.latest = map.latest.max(h.last_offset().min(self.upper - 1));
            }
        }
        Ok(())
    }

    /// The last batch of every producer id in the log (Kafka keeps it, even
    /// empty, so the producer's sequence state survives cleaning).
    fn last_batches_of_producers(&self) -> Result<HashMap<i64, i64>, LogError> {
        let mut out = HashMap::new();
        for seg in self.segments.iter().chain(self.later.iter()) {
            let mut pos = 0u64;
            let mut b = [0u8; HEADER_LEN];
            while pos + HEADER_LEN as u64 <= seg.size {
                seg.file.read_exact_at(&mut b, pos)?;
                let h = BatchHeader::parse(&b)?;
                if h.producer_id >= 0 {
                    out.insert(h.producer_id, h.last_offset());
                }
                pos += h.total_size().max(HEADER_LEN) as u64;
            }
        }
        Ok(out)
    }

    /// Kafka's `groupSegmentsBySize`: consecutive segments below `end`
    /// whose total size fits `segment.bytes` and whose offsets fit an
    /// index's relative offsets.
    fn group_segments(&self, end: i64) -> Vec<Vec<SegmentSnap>> {
        let segs: Vec<&SegmentSnap> = self.segments.iter().filter(|s| s.base < end).collect();
        let mut groups: Vec<Vec<SegmentSnap>> = Vec::new();
        let mut i = 0;
        while i < segs.len() {
            let mut group = vec![segs[i].clone()];
            let mut size = segs[i].size;
            i += 1;
            while i < segs.len() {
                let next = segs[i];
                // The last offset the next segment may hold.
                let last = segs
                    .get(i + 1)
                    .map(|s| s.base - 1)
                    .unwrap_or(self.upper - 1);
                if size + next.size > self.config.segment_bytes
                    || (next.size > 0 && last - group[0].base > i64::from(i32::MAX))
                {
                    break;
                }
                size += next.size;
                group.push(next.clone());
                i += 1;
            }
            groups.push(group);
        }
        groups
    }

    fn clean_group(
        &self,
        group: &[SegmentSnap],
        map: &OffsetMap,
        last_of_producer: &HashMap<i64, i64>,
        throttle: &mut Throttle,
        stats: &mut CleanStats,
    ) -> Result<(), LogError> {
        let base = group[0].base;
        remove_cleaned(&self.dir, base);
        let mut out = Segment::create_suffixed(&self.dir, base, CLEANED_SUFFIX, self.now)?;
        let interval = self.config.index_interval_bytes;
        let mut buf = Vec::new();
        for seg in group {
            stats.bytes_replaced += seg.size;
            let mut r = BatchReader::new(seg);
            while let Some((h, bytes)) = r.next_batch(throttle)? {
                buf.clear();
                if self.filter_batch(&h, bytes, map, last_of_producer, stats, &mut buf)? {
                    let nh = BatchHeader::parse(&buf)?;
                    out.append(&buf, &nh, interval)?;
                    stats.bytes_written += buf.len() as u64;
                    throttle.account(buf.len() as u64);
                }
            }
        }
        out.write_index()?;
        for f in out.files() {
            f.sync_all()?;
        }
        Ok(())
    }

    /// Kafka's `filterTo` for one batch: writes what survives into `out`
    /// (the original bytes when nothing changes). Returns whether anything
    /// is written.
    fn filter_batch(
        &self,
        h: &BatchHeader,
        bytes: &[u8],
        map: &OffsetMap,
        last_of_producer: &HashMap<i64, i64>,
        stats: &mut CleanStats,
        out: &mut Vec<u8>,
    ) -> Result<bool, LogError> {
        if h.is_control() {
            // Transaction markers: kept until transactions are supported.
            out.extend_from_slice(bytes);
            return Ok(true);
        }
        let payload = decompress_bounded(h.compression(), &bytes[HEADER_LEN..], MAX_DECOMPRESSED)?;
        let records = parse_records(&payload, h.records_count)?;
        let horizon = (h.attributes & DELETE_HORIZON_FLAG != 0).then_some(h.base_timestamp);
        stats.records_read += records.len() as u64;
        let keep: Vec<&Rec> = records
            .iter()
            .filter(|r| {
                let off = h.base_offset + r.offset_delta;
                if off > map.latest {
                    return true;
                }
                let Some(k) = r.key else { return false };
                let latest = off >= map.get(k);
                let retained_value = r.has_value || horizon.is_none_or(|hz| self.now < hz);
                latest && retained_value
            })
            .collect();
        stats.records_kept += keep.len() as u64;
        if keep.is_empty() {
            if !retain_empty(h, last_of_producer, self.upper) {
                return Ok(false);
            }
            let attrs = (h.attributes & !0x07) & !DELETE_HORIZON_FLAG;
            write_batch(out, h, attrs, h.max_timestamp, h.max_timestamp, 0, &[]);
            return Ok(true);
        }
        let tombstones = keep.iter().any(|r| !r.has_value);
        let set_horizon = tombstones && horizon.is_none();
        if keep.len() == records.len() && !set_horizon {
            out.extend_from_slice(bytes);
            return Ok(true);
        }
        let new_base_ts = if set_horizon {
            self.now.saturating_add(self.config.delete_retention_ms)
        } else {
            h.base_timestamp
        };
        let mut raw = Vec::with_capacity(payload.len());
        let mut body = Vec::new();
        let mut max_ts = i64::MIN;
        for r in &keep {
            let ts = h.base_timestamp.wrapping_add(r.ts_delta);
            max_ts = max_ts.max(ts);
            body.clear();
            body.push(r.attrs);
            put_varint(&mut body, ts.wrapping_sub(new_base_ts));
            put_varint(&mut body, r.offset_delta);
            body.extend_from_slice(r.tail);
            put_varint(&mut raw, body.len() as i64);
            raw.extend_from_slice(&body);
        }
        if h.log_append_time() {
            max_ts = h.max_timestamp;
        }
        let mut attrs = h.attributes;
        if set_horizon {
            attrs |= DELETE_HORIZON_FLAG;
        }
        let records_bytes = compress(h.compression(), &raw)?;
        write_batch(
            out,
            h,
            attrs,
            new_base_ts,
            max_ts,
            keep.len() as i32,
            &records_bytes,
        );
        Ok(true)
    }
}

/// Writes a v2 batch with `h`'s offsets, epoch and producer fields.
fn write_batch(
    out: &mut Vec<u8>,
    h: &BatchHeader,
    attrs: i16,
    base_ts: i64,
    max_ts: i64,
    count: i32,
    records: &[u8],
) {
    let start = out.len();
    out.extend_from_slice(&h.base_offset.to_be_bytes());
    let batch_length = (HEADER_LEN - 12 + records.len()) as i32;
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    out.push(2);
    out.extend_from_slice(&[0u8; 4]);
    let crc_from = out.len();
    out.extend_from_slice(&attrs.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&base_ts.to_be_bytes());
    out.extend_from_slice(&max_ts.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(records);
    let crc = crc32c::crc32c(&out[crc_from..]);
    out[crc_from - 4..crc_from].copy_from_slice(&crc.to_be_bytes());
    debug_assert_eq!(out.len() - start, HEADER_LEN + records.len());
}

/// The offset after the last whole batch of a segment file.
fn next_offset_of(path: &Path, base: i64) -> io::Result<i64> {
    let f = File::open(path)?;
    let size = f.metadata()?.len();
    let mut pos = 0u64;
    let mut next = base;
    let mut b = [0u8; HEADER_LEN];
    while pos + HEADER_LEN as u64 <= size {
        f.read_exact_at(&mut b, pos)?;
        let Ok(h) = BatchHeader::parse(&b) else { break };
        let len = h.total_size() as u64;
        if len < HEADER_LEN as u64 || pos + len > size {
            break;
        }
        next = h.last_offset() + 1;
        pos += len;
    }
    Ok(next)
}

/// Kafka's `LogLoader` handling of an interrupted cleaning, run before the
/// segments are opened: `.cleaned` files go (the swap never started);
/// a `<base>.log.swap` is the committed result of a cleaning, so the old
/// segments whose base lies in `[base, its next offset)` are removed and
/// the swap renamed `<base>.log`, its indexes to be rebuilt. `bases` (the
/// `.log` files found) is updated; returns the bases that must be
/// recovered (re-indexed).
pub(crate) fn recover_swaps(dir: &Path, bases: &mut Vec<i64>) -> Result<Vec<i64>, LogError> {
    let mut swaps = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy().to_string();
        if name.ends_with(CLEANED_SUFFIX) || name.ends_with(".deleted") {
            std::fs::remove_file(dir.join(&name))?;
        } else if let Some(stem) = name.strip_suffix(".log.swap") {
            match stem.parse::<i64>() {
                Ok(b) if stem.len() == 20 => swaps.push(b),
                _ => std::fs::remove_file(dir.join(&name))?,
            }
        } else if name.ends_with(SWAP_SUFFIX) {
            std::fs::remove_file(dir.join(&name))?;
        }
    }
    swaps.sort_unstable();
    for &b in &swaps {
        let swap = suffixed(dir, b, "log", SWAP_SUFFIX);
        let next = next_offset_of(&swap, b)?;
        warn!(dir = %dir.display(), segment = %file_stem(b), next_offset = next, "completing an interrupted cleaner swap");
        let doomed: Vec<i64> = bases
            .iter()
            .copied()
            .filter(|&x| x == b || (x > b && x < next))
            .collect();
        for d in doomed {
            Segment::remove_files(dir, d)?;
        }
        Segment::remove_files(dir, b)?;
        std::fs::rename(&swap, dir.join(format!("{}.log", file_stem(b))))?;
        bases.retain(|&x| !(x == b || (x > b && x < next)));
        bases.push(b);
    }
    if !swaps.is_empty() {
        super::checkpoint::sync_dir(dir)?;
        bases.sort_unstable();
    }
    Ok(swaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_roundtrip() {
        for v in [0i64, 1, -1, 63, -64, 64, 300, -300, i64::MAX, i64::MIN] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut s = &b[..];
            assert_eq!(varint(&mut s).expect("varint"), v);
            assert!(s.is_empty());
        }
    }

    #[test]
    fn compressed_payloads_decompress() {
        let raw: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in 0..=4 {
            let c = compress(codec, &raw).expect("compress");
            assert_eq!(
                decompress_bounded(codec, &c, MAX_DECOMPRESSED).expect("decompress"),
                raw,
                "codec {codec}"
            );
        }
    }
}
