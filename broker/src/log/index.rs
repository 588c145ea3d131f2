//! Sparse offset and time indexes, in Kafka's on-disk formats.
//!
//! `.index` entries are 8 bytes: offset relative to the segment base (u32)
//! and file position (u32). `.timeindex` entries are 12 bytes: timestamp
//! (i64) and relative offset (u32). Both are kept in memory and appended to
//! their files; they are rebuilt from the log whenever they cannot be trusted.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An index of `(key, value)` entries, both sorted ascending.
#[derive(Debug)]
pub struct SparseIndex<const TIME: bool> {
    path: PathBuf,
    file: Arc<File>,
    entries: Vec<(i64, u32)>,
    /// How many of `entries` are in the file. Appends only add to memory;
    /// the file gets them with the log's next flush
    /// ([`SparseIndex::take_unwritten`]), outside the partition lock. A
    /// file that lags behind the log is harmless: lookups scan forward from
    /// the floor entry, and opening a segment scans on from its last entry.
    written: usize,
}

/// The offset index: relative offset → position.
pub type OffsetIndex = SparseIndex<false>;
/// The time index: timestamp → relative offset.
pub type TimeIndex = SparseIndex<true>;

impl<const TIME: bool> SparseIndex<TIME> {
    const ENTRY: usize = if TIME { 12 } else { 8 };

    /// Opens an index file, loading its entries. Returns `None` for the
    /// entries when the file is not a whole number of entries or is not
    /// sorted (the caller then rebuilds it).
    pub fn open(path: &Path, load: bool) -> io::Result<(Self, bool)> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut entries = Vec::new();
        let mut valid = true;
        if load {
            let mut buf = Vec::new();
            file.read_to_end(&mut buf)?;
            if buf.len() % Self::ENTRY != 0 {
                valid = false;
            } else {
                for e in buf.chunks_exact(Self::ENTRY) {
                    let entry = if TIME {
                        let mut ts = [0u8; 8];
                        ts.copy_from_slice(&e[..8]);
                        let mut off = [0u8; 4];
                        off.copy_from_slice(&e[8..12]);
                        (i64::from_be_bytes(ts), u32::from_be_bytes(off))
                    } else {
                        let mut off = [0u8; 4];
                        off.copy_from_slice(&e[..4]);
                        let mut pos = [0u8; 4];
                        pos.copy_from_slice(&e[4..8]);
                        (i64::from(u32::from_be_bytes(off)), u32::from_be_bytes(pos))
                    };
                    if entries
                        .last()
                        .is_some_and(|l: &(i64, u32)| l.0 > entry.0 || (!TIME && l.1 >= entry.1))
                    {
                        valid = false;
                        break;
                    }
                    entries.push(entry);
                }
            }
            if !valid {
                entries.clear();
            }
        }
        let written = entries.len();
        Ok((
            Self {
                path: path.to_path_buf(),
                file: Arc::new(file),
                entries,
                written,
            },
            valid,
        ))
    }

    /// Appends an entry (ignored unless it moves the index forward), in
    /// memory: see [`SparseIndex::take_unwritten`].
    pub fn append(&mut self, key: i64, value: u32) -> io::Result<()> {
        if let Some(&(k, v)) = self.entries.last() {
            if key < k || (TIME && key == k) || (!TIME && value <= v) {
                return Ok(());
            }
        }
        self.entries.push((key, value));
        Ok(())
    }

    /// The entries not yet in the file, encoded, with the file to append
    /// them to (for a flush to write outside the partition lock); they
    /// count as written from now on.
    pub fn take_unwritten(&mut self) -> Option<(Arc<File>, Vec<u8>)> {
        let pending = self.entries.get(self.written..).unwrap_or_default();
        if pending.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(pending.len() * Self::ENTRY);
        for &(key, value) in pending {
            if TIME {
                out.extend_from_slice(&key.to_be_bytes());
            } else {
                out.extend_from_slice(&(key as u32).to_be_bytes());
            }
            out.extend_from_slice(&value.to_be_bytes());
        }
        self.written = self.entries.len();
        Some((self.file.clone(), out))
    }

    /// Writes the entries not yet in the file, here and now.
    pub fn write_unwritten(&mut self) -> io::Result<()> {
        match self.take_unwritten() {
            Some((file, bytes)) => (&*file).write_all(&bytes),
            None => Ok(()),
        }
    }

    /// The last entry whose key is `<= key`.
    pub fn floor(&self, key: i64) -> Option<(i64, u32)> {
        let i = self.entries.partition_point(|e| e.0 <= key);
        i.checked_sub(1).map(|i| self.entries[i])
    }

    /// The last entry.
    pub fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().copied()
    }

    /// Drops every entry and truncates the file.
    pub fn clear(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.written = 0;
        self.file.set_len(0)
    }

    /// Number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the index has reached `max_bytes`.
    pub fn is_full(&self, max_bytes: u64) -> bool {
        ((self.entries.len() + 1) * Self::ENTRY) as u64 > max_bytes
    }

    /// The file, for an fsync outside the log lock.
    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_lookup() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("0.index");
        {
            let (mut idx, _) = OffsetIndex::open(&p, true).expect("open");
            idx.append(0, 0).expect("a");
            idx.append(10, 4096).expect("a");
            idx.append(20, 8192).expect("a");
            idx.append(15, 9000).expect("ignored: goes backwards");
            idx.write_unwritten().expect("write");
        }
        let (idx, valid) = OffsetIndex::open(&p, true).expect("open");
        assert!(valid);
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.floor(15), Some((10, 4096)));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .and_then(|mut f| f.write_all(&[1, 2, 3]))
            .expect("corrupt");
        let (_, valid) = OffsetIndex::open(&p, true).expect("open");
        assert!(!valid);
    }
}
