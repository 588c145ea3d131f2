//! One log segment: `<base>.log` with its `.index` and `.timeindex`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use super::index::{OffsetIndex, TimeIndex};
use crate::protocol::batch::{check_crc, BatchHeader, HEADER_LEN};

/// Formats a base offset as Kafka's 20-digit file name stem.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// One segment of a partition log.
#[derive(Debug)]
pub struct Segment {
    /// The first offset this segment may hold.
    pub base_offset: i64,
    file: Arc<File>,
    path: PathBuf,
    size: u64,
    index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_index: u64,
    /// Largest timestamp appended so far, and the offset it came with.
    pub max_timestamp: (i64, i64),
    /// Offset after the last batch in this segment.
    pub next_offset: i64,
    /// Wall-clock time of the first append (for `segment.ms`).
    pub created_ms: i64,
}

/// A batch found by scanning a segment.
#[derive(Debug, Clone, Copy)]
pub struct Located {
    /// Position of the batch in the file.
    pub position: u64,
    /// Its header.
    pub header: BatchHeader,
}

impl Segment {
    fn paths(dir: &Path, base: i64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base);
        (
            dir.join(format!("{stem}.log")),
            dir.join(format!("{stem}.index")),
            dir.join(format!("{stem}.timeindex")),
        )
    }

    /// Creates a new, empty segment.
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64) -> io::Result<Self> {
        Self::create_suffixed(dir, base_offset, "", now_ms)
    }

    /// Creates a new, empty segment whose file names end with `suffix`
    /// (the cleaner's `.cleaned` segments).
    pub fn create_suffixed(
        dir: &Path,
        base_offset: i64,
        suffix: &str,
        now_ms: i64,
    ) -> io::Result<Self> {
        let (log, idx, tidx) = Self::paths(dir, base_offset);
        let add = |p: PathBuf| -> PathBuf {
            let mut s = p.into_os_string();
            s.push(suffix);
            PathBuf::from(s)
        };
        let (log, idx, tidx) = (add(log), add(idx), add(tidx));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log)?;
        file.set_len(0)?;
        let (mut index, _) = OffsetIndex::open(&idx, false)?;
        index.clear()?;
        let (mut time_index, _) = TimeIndex::open(&tidx, false)?;
        time_index.clear()?;
        Ok(Self {
            base_offset,
            file: Arc::new(file),
            path: log,
            size: 0,
            index,
            time_index,
            bytes_since_index: 0,
            max_timestamp: (-1, -1),
            next_offset: base_offset,
            created_ms: now_ms,
        })
    }

    /// Opens an existing segment. With `recover`, every batch is read and
    /// CRC-checked, the indexes are rebuilt, and the file is truncated after
    /// the last whole valid batch. Without it, the indexes are trusted when
    /// well-formed (and rebuilt otherwise); the last batch is still located.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        recover: bool,
        index_interval: u64,
    ) -> io::Result<Self> {
        let (log, idx, tidx) = Self::paths(dir, base_offset);
        let file = OpenOptions::new().read(true).append(true).open(&log)?;
        let size = file.metadata()?.len();
        let (index, idx_ok) = OffsetIndex::open(&idx, !recover)?;
        let (time_index, tidx_ok) = TimeIndex::open(&tidx, !recover)?;
        let created_ms = file
            .metadata()?
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut seg = Self {
            base_offset,
            file: Arc::new(file),
            path: log,
            size,
            index,
            time_index,
            bytes_since_index: 0,
            max_timestamp: (-1, -1),
            next_offset: base_offset,
            created_ms,
        };
        if recover || !idx_ok || !tidx_ok {
            seg.rebuild(index_interval)?;
        } else {
            seg.load_tail()?;
        }
        Ok(seg)
    }

    /// Scans from the last index entry to find the end of the log and the
    /// largest timestamp.
    fn load_tail(&mut self) -> io::Result<()> {
        let start = self.index.last().map(|(_, p)| u64::from(p)).unwrap_or(0);
        if let Some((ts, rel)) = self.time_index.last() {
            self.max_timestamp = (ts, self.base_offset + rel as i64);
        }
        let mut pos = start;
        while let Some(h) = self.header_at(pos)? {
            let end = pos + h.total_size() as u64;
            if end > self.size {
                break;
            }
            if h.max_timestamp > self.max_timestamp.0 {
                self.max_timestamp = (h.max_timestamp, h.last_offset());
            }
            self.next_offset = h.last_offset() + 1;
            pos = end;
        }
        if pos != self.size {
            // The tail is not whole: fall back to a full recovery.
            warn!(segment = %self.path.display(), "segment tail is inconsistent with its index; recovering");
            return self.rebuild(4096);
        }
        Ok(())
    }

    /// Full recovery: validates every batch, rebuilds both indexes and cuts
    /// a torn or corrupt tail.
    fn rebuild(&mut self, index_interval: u64) -> io::Result<()> {
        self.index.clear()?;
        self.time_index.clear()?;
        self.bytes_since_index = 0;
        self.max_timestamp = (-1, -1);
        self.next_offset = self.base_offset;
        let mut pos = 0u64;
        let mut buf = Vec::new();
        while let Some(h) = self.header_at(pos)? {
            let len = h.total_size() as u64;
            if h.magic != 2 || (h.batch_length as usize) < HEADER_LEN - 12 || pos + len > self.size
            {
                break;
            }
            buf.resize(len as usize, 0);
            self.file.read_exact_at(&mut buf, pos)?;
            if check_crc(&buf, &h).is_err() || h.base_offset < self.next_offset {
                break;
            }
            self.index_batch(&h, pos, len, index_interval)?;
            pos += len;
        }
        if pos < self.size {
            warn!(
                segment = %self.path.display(),
                valid_bytes = pos,
                file_bytes = self.size,
                "truncating torn or corrupt tail of segment"
            );
            self.file.set_len(pos)?;
            self.size = pos;
        }
        // Rebuilt indexes go to their files at once: a segment that is not
        // the active one is never flushed again.
        self.index.write_unwritten()?;
        self.time_index.write_unwritten()
    }

    fn index_batch(
        &mut self,
        h: &BatchHeader,
        pos: u64,
        len: u64,
        index_interval: u64,
    ) -> io::Result<()> {
        if self.bytes_since_index >= index_interval || self.index.is_empty() {
            self.index
                .append(h.last_offset() - self.base_offset, pos as u32)?;
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += len;
        if h.max_timestamp > self.max_timestamp.0 {
            self.max_timestamp = (h.max_timestamp, h.last_offset());
            self.time_index
                .append(h.max_timestamp, (h.last_offset() - self.base_offset) as u32)?;
        }
        self.next_offset = h.last_offset() + 1;
        Ok(())
    }

    /// Reads the batch header at `pos`, or `None` at (or past) the end.
    pub fn header_at(&self, pos: u64) -> io::Result<Option<BatchHeader>> {
        if pos + HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let mut b = [0u8; HEADER_LEN];
        self.file.read_exact_at(&mut b, pos)?;
        Ok(BatchHeader::parse(&b).ok())
    }

    /// Appends one batch here and now, write included (the cleaner's
    /// `.cleaned` segments; appends to a partition's log go through
    /// [`crate::log::PendingAppend`]). Index entries reach their files with
    /// [`Segment::write_index`].
    pub fn append(&mut self, batch: &[u8], h: &BatchHeader, index_interval: u64) -> io::Result<()> {
        use std::io::Write;
        let pos = self.size;
        (&*self.file).write_all(batch)?;
        self.appended(h, pos, batch.len() as u64, index_interval)
    }

    /// Writes the index entries not yet in their files, here and now.
    pub fn write_index(&mut self) -> io::Result<()> {
        self.index.write_unwritten()?;
        self.time_index.write_unwritten()
    }

    /// The file and the position the next batch lands at, for an append
    /// that writes outside the partition lock ([`crate::log::PendingAppend`]):
    /// bytes written there stay invisible to reads until
    /// [`Segment::appended`] takes them in.
    pub fn tail(&self) -> (Arc<File>, u64) {
        (self.file.clone(), self.size)
    }

    /// Takes in a batch of `len` bytes already written at `pos` (the end of
    /// the segment): reads see it from now on.
    pub fn appended(
        &mut self,
        h: &BatchHeader,
        pos: u64,
        len: u64,
        index_interval: u64,
    ) -> io::Result<()> {
        if pos != self.size {
            return Err(io::Error::other(format!(
                "segment {}: a batch written at position {pos} does not continue the segment at {}",
                self.path.display(),
                self.size
            )));
        }
        self.size += len;
        self.index_batch(h, pos, len, index_interval)
    }

    /// The index entries not yet in their files, with the files (see
    /// [`crate::log::index::SparseIndex::take_unwritten`]).
    pub fn take_index_writes(&mut self) -> Vec<(Arc<File>, Vec<u8>)> {
        [
            self.index.take_unwritten(),
            self.time_index.take_unwritten(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Cuts the segment before the batch holding `offset` (that whole batch
    /// goes, as in Kafka's `LogSegment.truncateTo`) and rebuilds the
    /// indexes. Returns the bytes removed.
    pub fn truncate_to(&mut self, offset: i64, index_interval: u64) -> io::Result<u64> {
        let Some(loc) = self.locate(offset)? else {
            return Ok(0);
        };
        let removed = self.size - loc.position;
        self.file.set_len(loc.position)?;
        self.size = loc.position;
        self.rebuild(index_interval)?;
        Ok(removed)
    }

    /// Finds the first batch whose last offset is `>= offset`.
    pub fn locate(&self, offset: i64) -> io::Result<Option<Located>> {
        let rel = offset - self.base_offset;
        // Index entries map a batch's last offset to the batch's position, so
        // the floor entry's batch ends at or before `offset`: scan from it.
        let mut pos = match self.index.floor(rel) {
            Some((_, p)) => u64::from(p),
            None => 0,
        };
        while let Some(h) = self.header_at(pos)? {
            if h.last_offset() >= offset {
                return Ok(Some(Located {
                    position: pos,
                    header: h,
                }));
            }
            pos += h.total_size() as u64;
        }
        Ok(None)
    }

    /// Finds the first batch with a max timestamp `>= ts`.
    pub fn locate_timestamp(&self, ts: i64) -> io::Result<Option<Located>> {
        let start = match self.time_index.floor(ts - 1) {
            Some((_, rel)) => self
                .locate(self.base_offset + i64::from(rel))?
                .map(|l| l.position),
            None => Some(0),
        };
        let mut pos = start.unwrap_or(0);
        while let Some(h) = self.header_at(pos)? {
            if h.max_timestamp >= ts {
                return Ok(Some(Located {
                    position: pos,
                    header: h,
                }));
            }
            pos += h.total_size() as u64;
        }
        Ok(None)
    }

    /// What a read starting at `offset` needs from this segment, taken
    /// under the log lock without any I/O: the file, its size now and the
    /// position of the index entry at or below `offset`. The batch scan and
    /// the read itself then happen outside the lock ([`SegmentView`]).
    pub fn view(&self, offset: i64) -> SegmentView {
        let start = match self.index.floor(offset - self.base_offset) {
            Some((_, p)) => u64::from(p),
            None => 0,
        };
        SegmentView {
            file: self.file.clone(),
            size: self.size,
            start,
        }
    }

    /// The file, for reading outside the log lock.
    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// Current size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the offset index is full.
    pub fn index_full(&self, max_bytes: u64) -> bool {
        self.index.is_full(max_bytes) || self.time_index.is_full(max_bytes)
    }

    /// The files [`Segment::flush`] syncs, for an fsync outside the log lock.
    pub fn files(&self) -> [Arc<File>; 3] {
        [self.file.clone(), self.index.file(), self.time_index.file()]
    }

    /// Removes the files of the segment at `base` in `dir` without opening it.
    pub fn remove_files(dir: &Path, base: i64) -> io::Result<()> {
        let (log, idx, tidx) = Self::paths(dir, base);
        for p in [&log, &idx, &tidx] {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Removes the segment's files.
    pub fn delete(self) -> io::Result<()> {
        let idx = self.index.path().to_path_buf();
        let tidx = self.time_index.path().to_path_buf();
        for p in [&self.path, &idx, &tidx] {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A segment as a read saw it under the log lock: the bytes below `size`
/// are whole batches that never change while the segment exists (appends
/// only add after them), so they are read without the lock. A truncation
/// or deletion racing the read makes it fail or come up short, never return
/// bytes past `size`.
#[derive(Debug, Clone)]
pub struct SegmentView {
    file: Arc<File>,
    size: u64,
    start: u64,
}

impl SegmentView {
    fn header_at(&self, pos: u64) -> io::Result<Option<BatchHeader>> {
        if pos + HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let mut b = [0u8; HEADER_LEN];
        self.file.read_exact_at(&mut b, pos)?;
        Ok(BatchHeader::parse(&b).ok())
    }

    /// Plans the bytes to serve from `offset`: whole batches below
    /// `max_offset`, at most `max_bytes` of them (but at least one when
    /// `min_one`). `Ok(None)` when this segment holds no batch at or after
    /// `offset`; a zero `len` when none fits.
    pub fn plan(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        max_offset: i64,
    ) -> io::Result<Option<(Arc<File>, u64, usize)>> {
        // Index entries map a batch's last offset to the batch's position, so
        // the floor entry's batch ends at or before `offset`: scan from it.
        let mut pos = self.start;
        let first = loop {
            let Some(h) = self.header_at(pos)? else {
                return Ok(None);
            };
            if h.last_offset() >= offset {
                break pos;
            }
            pos += h.total_size() as u64;
        };
        let mut len: usize = 0;
        let mut pos = first;
        while let Some(h) = self.header_at(pos)? {
            if h.base_offset >= max_offset {
                break;
            }
            let size = h.total_size();
            if pos + size as u64 > self.size {
                break;
            }
            if len + size > max_bytes && !(min_one && len == 0) {
                break;
            }
            len += size;
            pos += size as u64;
            if len >= max_bytes {
                break;
            }
        }
        Ok(Some((self.file.clone(), first, len)))
    }
}

impl Segment {
    /// Calls `f` with every batch header in the segment, in order.
    pub fn for_each_header(&self, f: &mut dyn FnMut(&BatchHeader)) -> io::Result<()> {
        let mut pos = 0u64;
        while let Some(h) = self.header_at(pos)? {
            f(&h);
            pos += h.total_size() as u64;
        }
        Ok(())
    }

    /// [`Self::for_each_header`], with the transaction marker of every
    /// control batch (read from its first record).
    pub fn for_each_batch(
        &self,
        f: &mut dyn FnMut(&BatchHeader, Option<crate::txn::marker::EndTxnMarker>),
    ) -> io::Result<()> {
        let mut pos = 0u64;
        while let Some(h) = self.header_at(pos)? {
            let marker = if h.is_control() {
                let len = h
                    .total_size()
                    .min(crate::txn::marker::MARKER_READ_BYTES)
                    .min(self.size.saturating_sub(pos) as usize);
                let mut b = vec![0u8; len];
                self.file.read_exact_at(&mut b, pos)?;
                crate::txn::marker::marker_of_batch(&b)
            } else {
                None
            };
            f(&h, marker);
            pos += h.total_size() as u64;
        }
        Ok(())
    }
}
