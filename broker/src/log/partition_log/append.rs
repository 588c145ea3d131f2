//! Appends in three steps, so that the bytes are written with no lock that
//! reads take: [`Log::prepare_append`] (or
//! [`Log::prepare_follower_append`]) stamps the batches and picks where they
//! go, under the partition lock and without I/O; [`PendingAppend::write`]
//! writes them, outside it (the partition's writer lock keeps every other
//! log writer out meanwhile); [`Log::commit_append`] takes them in under the
//! partition lock, and only then do reads see them.

use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::sync::Arc;

use super::{AppendInfo, Log};
use crate::clock::now_ms;
use crate::log::LogError;
use crate::protocol::batch::{
    check_crc, stamp, validate_produced, BatchError, BatchHeader, RecordChecks, HEADER_LEN,
};

/// An append planned under the partition lock: its batches, stamped, go at
/// `position` of the active segment's file.
#[derive(Debug)]
#[must_use = "a pending append does nothing until it is written and committed"]
pub struct PendingAppend {
    segment: i64,
    file: Arc<File>,
    position: u64,
    /// The batches' headers (as stamped) and where each is in the caller's
    /// buffer.
    batches: Vec<(BatchHeader, Range<usize>)>,
    generation: u64,
    log_append_time: i64,
}

impl PendingAppend {
    /// Writes the batches from `buf` (the buffer they were planned in) to
    /// the segment file (blocking). On an error nothing of them stays in
    /// the file.
    pub fn write(&self, buf: &[u8]) -> io::Result<()> {
        let mut f = &*self.file;
        for (_, range) in &self.batches {
            let written = match buf.get(range.clone()) {
                Some(bytes) => f.write_all(bytes),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a pending append was written from another buffer",
                )),
            };
            if let Err(e) = written {
                // The next append goes at `position`: cut what got written.
                if let Err(cut) = self.file.set_len(self.position) {
                    tracing::error!(error = %cut, "cannot cut a failed append off its segment");
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// The headers of the batches, as stamped.
    pub fn headers(&self) -> impl Iterator<Item = &BatchHeader> {
        self.batches.iter().map(|(h, _)| h)
    }
}

/// What a produce request's batches are checked against
/// ([`Log::produce_checks`]), owned, so that the check runs without the
/// partition lock.
#[derive(Debug, Clone)]
pub struct ProduceChecks {
    max_message_bytes: i64,
    require_key: bool,
    timestamps: Option<(i64, i64)>,
    partition: Arc<str>,
}

impl ProduceChecks {
    /// Validates every batch (size, CRC, and record by record: keys on
    /// compacted topics, CreateTime timestamps), as Kafka's `LogValidator`.
    pub fn validate(
        &self,
        records: &[u8],
        batches: &[(BatchHeader, Range<usize>)],
    ) -> Result<(), LogError> {
        let checks = RecordChecks {
            require_key: self.require_key,
            timestamps: self.timestamps,
            partition: &self.partition,
        };
        for (h, range) in batches {
            let bytes = records.get(range.clone()).ok_or_else(|| {
                BatchError::Invalid("a record batch lies outside the request".into())
            })?;
            validate_produced(bytes, h, self.max_message_bytes, &checks)?;
        }
        Ok(())
    }
}

/// Splits batches fetched from a leader and checks their CRCs (no lock
/// needed). A partial batch at the end (a size-capped read) is left out.
pub fn scan_replicated(records: &[u8]) -> Result<Vec<(BatchHeader, Range<usize>)>, LogError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while records.len() - pos >= HEADER_LEN {
        let h = BatchHeader::parse(&records[pos..])?;
        let size = h.total_size();
        if size < HEADER_LEN || records.len() - pos < size {
            break;
        }
        check_crc(&records[pos..pos + size], &h)?;
        out.push((h, pos..pos + size));
        pos += size;
    }
    Ok(out)
}

impl Log {
    /// What a produce request for this log is validated against, at `now`.
    pub fn produce_checks(&self, now: i64) -> ProduceChecks {
        ProduceChecks {
            max_message_bytes: self.config.max_message_bytes,
            require_key: self.config.compact,
            timestamps: (!self.config.log_append_time).then(|| {
                (
                    now.saturating_sub(self.config.timestamp_before_max_ms),
                    now.saturating_add(self.config.timestamp_after_max_ms),
                )
            }),
            partition: self.name.clone(),
        }
    }

    /// Validates, stamps and appends the record batches of one produce
    /// request, as leader in `leader_epoch`, all in one call (under one
    /// lock): for callers with no reads to keep going meanwhile.
    pub fn append_batches(
        &mut self,
        records: &mut [u8],
        batches: &[(BatchHeader, Range<usize>)],
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        let now = now_ms();
        self.produce_checks(now).validate(records, batches)?;
        let pending = self.prepare_append(records, batches, leader_epoch, now)?;
        pending.write(records)?;
        self.commit_append(pending, &mut |_| {})
    }

    /// Stamps a produce request's batches (already validated) with their
    /// offsets and `leader_epoch`, rolls the segment when they would not
    /// fit (once per append, as Kafka's `maybeRoll`), and plans where they
    /// go. No I/O unless the segment rolls.
    pub fn prepare_append(
        &mut self,
        records: &mut [u8],
        batches: &[(BatchHeader, Range<usize>)],
        leader_epoch: i32,
        now: i64,
    ) -> Result<PendingAppend, LogError> {
        if batches.is_empty() {
            return Err(LogError::Batch(BatchError::Invalid(
                "the produce request holds no record batch".into(),
            )));
        }
        let total: usize = batches.iter().map(|(_, r)| r.len()).sum();
        let base = self.end_offset();
        let count: i64 = batches
            .iter()
            .map(|(h, _)| i64::from(h.last_offset_delta) + 1)
            .sum();
        self.maybe_roll(total as u64, base + count - 1, base, now)?;
        let append_time = self.config.log_append_time.then_some(now);
        let mut next = self.end_offset();
        let mut stamped = Vec::with_capacity(batches.len());
        for (_, range) in batches {
            let bytes = records.get_mut(range.clone()).ok_or_else(|| {
                BatchError::Invalid("a record batch lies outside the request".into())
            })?;
            stamp(bytes, next, leader_epoch, append_time);
            let h = BatchHeader::parse(bytes)?;
            next = h.last_offset() + 1;
            stamped.push((h, range.clone()));
        }
        Ok(self.pending(stamped, append_time.unwrap_or(-1)))
    }

    /// Plans appending batches fetched from the leader (from
    /// [`scan_replicated`]) as they are: offsets, leader epochs and
    /// timestamps are the leader's. Batches wholly below the log end (a
    /// retried fetch) are skipped; the rest must follow on, with gaps
    /// allowed (a compacted leader's log is sparse; Kafka's follower append
    /// refuses only offsets going backwards). `None` when nothing is new.
    pub fn prepare_follower_append(
        &mut self,
        batches: Vec<(BatchHeader, Range<usize>)>,
        now: i64,
    ) -> Result<Option<PendingAppend>, LogError> {
        let mut next = self.end_offset();
        let mut kept = Vec::with_capacity(batches.len());
        for (h, range) in batches {
            if h.last_offset() < next {
                continue;
            }
            if h.base_offset < next {
                return Err(LogError::Batch(BatchError::Invalid(format!(
                    "replicated batch at offset {} does not continue the log at {next}",
                    h.base_offset
                ))));
            }
            next = h.last_offset() + 1;
            kept.push((h, range));
        }
        let (Some((first, _)), Some((last, _))) = (kept.first(), kept.last()) else {
            return Ok(None);
        };
        let (first, last) = (first.base_offset, last.last_offset());
        let total: usize = kept.iter().map(|(_, r)| r.len()).sum();
        self.maybe_roll(total as u64, last, first, now)?;
        Ok(Some(self.pending(kept, -1)))
    }

    fn pending(
        &self,
        batches: Vec<(BatchHeader, Range<usize>)>,
        log_append_time: i64,
    ) -> PendingAppend {
        let seg = self.active();
        let (file, position) = seg.tail();
        PendingAppend {
            segment: seg.base_offset,
            file,
            position,
            batches,
            generation: self.generation,
            log_append_time,
        }
    }

    /// Takes in an append [`PendingAppend::write`] wrote: reads see its
    /// batches from now on. Calls `each` with every batch's header.
    pub fn commit_append(
        &mut self,
        p: PendingAppend,
        each: &mut dyn FnMut(&BatchHeader),
    ) -> Result<AppendInfo, LogError> {
        let (Some((first, _)), Some((last, _))) = (p.batches.first(), p.batches.last()) else {
            return Err(LogError::Batch(BatchError::Invalid(
                "an append with no record batch".into(),
            )));
        };
        let (base_offset, last_offset) = (first.base_offset, last.last_offset());
        if p.generation != self.generation
            || self.active().base_offset != p.segment
            || self.end_offset() > base_offset
        {
            // Only a second writer could cause this; the writer lock rules
            // it out. Never take in bytes the log no longer expects.
            return Err(LogError::Io(io::Error::other(format!(
                "{}: the log changed while an append at offset {base_offset} was written",
                self.dir.display()
            ))));
        }
        let interval = self.config.index_interval_bytes;
        let mut pos = p.position;
        for (h, range) in &p.batches {
            self.epochs
                .assign(h.partition_leader_epoch, h.base_offset)?;
            let len = range.len() as u64;
            self.active_mut().appended(h, pos, len, interval)?;
            pos += len;
            self.unflushed_messages += i64::from(h.records_count);
            each(h);
        }
        self.maybe_flush(now_ms())?;
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time: p.log_append_time,
            log_start_offset: self.log_start_offset,
        })
    }

    /// Appends batches fetched from the leader as they are, all in one call
    /// (see [`Log::prepare_follower_append`]). Calls `appended_batch` with
    /// the header of every batch appended. Returns the bytes appended.
    pub fn append_as_follower(
        &mut self,
        records: &[u8],
        appended_batch: &mut dyn FnMut(&BatchHeader),
    ) -> Result<usize, LogError> {
        let batches = scan_replicated(records)?;
        let Some(pending) = self.prepare_follower_append(batches, now_ms())? else {
            return Ok(0);
        };
        let bytes = pending.batches.iter().map(|(_, r)| r.len()).sum();
        pending.write(records)?;
        self.commit_append(pending, appended_batch)?;
        Ok(bytes)
    }
}
