//! Producer state snapshots (`<offset>.snapshot`, Kafka's
//! `ProducerStateManager` snapshot files): the idempotent and
//! transactional state of every producer of a partition as of `offset`
//! (everything below it applied), so a restarted or truncated replica
//! replays only the batches from the latest snapshot on instead of the
//! whole log, and keeps producers whose batches retention already deleted.
//!
//! The bytes are Kafka's version 1 layout, big-endian: `int16` version,
//! `uint32` CRC-32C of everything after it, `int32` entry count, then per
//! producer `int64` producer id, `int16` epoch, `int32` last sequence,
//! `int64` last offset, `int32` offset delta (last minus first sequence of
//! its last batch), `int64` timestamp (the last batch's max timestamp),
//! `int32` coordinator epoch, `int64` first offset of its open transaction
//! (-1 for none). A producer whose only entry is a marker has last offset
//! and sequence -1.
//!
//! Files are written whole (a temporary file, fsynced, then renamed), so a
//! crash leaves the old set or the new one, never a torn file; a file that
//! does not decode is deleted and the next older one is used.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::warn;

use super::segment::file_stem;

/// The snapshot format version Kafka writes.
pub const VERSION: i16 = 1;
/// Bytes of one producer entry.
pub const ENTRY_SIZE: usize = 46;
const HEADER_SIZE: usize = 2 + 4 + 4;
/// The file name suffix.
pub const SUFFIX: &str = ".snapshot";

/// One producer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub epoch: i16,
    /// Last sequence of its last batch (-1: none).
    pub last_sequence: i32,
    /// Last offset of its last batch (-1: none).
    pub last_offset: i64,
    /// Last minus first sequence of that batch.
    pub offset_delta: i32,
    /// The batch's max timestamp (for `producer.id.expiration.ms`).
    pub timestamp: i64,
    /// The coordinator epoch of its last marker (-1: none).
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction, if any (-1: none).
    pub current_txn_first_offset: i64,
}

/// Why a snapshot was not used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read.
    #[error("producer snapshot I/O error: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not a snapshot Runnel can read.
    #[error("corrupt producer snapshot: {0}")]
    Corrupt(String),
}

/// A snapshot's bytes, entries in producer id order.
pub fn encode(entries: &[SnapshotEntry]) -> Vec<u8> {
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|e| e.producer_id);
    let mut b = Vec::with_capacity(HEADER_SIZE + sorted.len() * ENTRY_SIZE);
    b.extend_from_slice(&VERSION.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&(sorted.len() as i32).to_be_bytes());
    for e in &sorted {
        b.extend_from_slice(&e.producer_id.to_be_bytes());
        b.extend_from_slice(&e.epoch.to_be_bytes());
        b.extend_from_slice(&e.last_sequence.to_be_bytes());
        b.extend_from_slice(&e.last_offset.to_be_bytes());
        b.extend_from_slice(&e.offset_delta.to_be_bytes());
        b.extend_from_slice(&e.timestamp.to_be_bytes());
        b.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        b.extend_from_slice(&e.current_txn_first_offset.to_be_bytes());
    }
    let crc = crc32c::crc32c(&b[6..]);
    b[2..6].copy_from_slice(&crc.to_be_bytes());
    b
}

fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

/// The entries of a snapshot's bytes. The entry count is checked against
/// the bytes present before anything is sized by it.
pub fn decode(b: &[u8]) -> Result<Vec<SnapshotEntry>, SnapshotError> {
    if b.len() < HEADER_SIZE {
        return Err(SnapshotError::Corrupt(format!("{} bytes", b.len())));
    }
    let version = i16::from_be_bytes(be(b, 0));
    if version != VERSION {
        return Err(SnapshotError::Corrupt(format!("unknown version {version}")));
    }
    let stored = u32::from_be_bytes(be(b, 2));
    let computed = crc32c::crc32c(&b[6..]);
    if stored != computed {
        return Err(SnapshotError::Corrupt(format!(
            "stored crc {stored} != computed {computed}"
        )));
    }
    let count = i32::from_be_bytes(be(b, 6));
    let body = &b[HEADER_SIZE..];
    if count < 0 || body.len() != count as usize * ENTRY_SIZE {
        return Err(SnapshotError::Corrupt(format!(
            "{count} entries in {} bytes",
            body.len()
        )));
    }
    Ok(body
        .chunks_exact(ENTRY_SIZE)
        .map(|e| SnapshotEntry {
            producer_id: i64::from_be_bytes(be(e, 0)),
            epoch: i16::from_be_bytes(be(e, 8)),
            last_sequence: i32::from_be_bytes(be(e, 10)),
            last_offset: i64::from_be_bytes(be(e, 14)),
            offset_delta: i32::from_be_bytes(be(e, 22)),
            timestamp: i64::from_be_bytes(be(e, 26)),
            coordinator_epoch: i32::from_be_bytes(be(e, 34)),
            current_txn_first_offset: i64::from_be_bytes(be(e, 38)),
        })
        .collect())
}

/// The path of the snapshot at `offset` in `dir`.
pub fn path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{}{SUFFIX}", file_stem(offset)))
}

/// The offsets of the snapshot files in `dir`, ascending.
pub fn list(dir: &Path) -> io::Result<Vec<i64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(SUFFIX) {
            if stem.len() == 20 {
                if let Ok(o) = stem.parse::<i64>() {
                    out.push(o);
                }
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Writes the snapshot at `offset` whole: a temporary file, fsynced, then
/// renamed over any old one.
pub fn write(dir: &Path, offset: i64, bytes: &[u8]) -> io::Result<()> {
    let dest = path(dir, offset);
    let tmp = dir.join(format!("{}{SUFFIX}.tmp", file_stem(offset)));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &dest)?;
    Ok(())
}

/// Deletes the snapshot at `offset` (gone already is fine).
pub fn delete(dir: &Path, offset: i64) -> io::Result<()> {
    match std::fs::remove_file(path(dir, offset)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The newest snapshot at or below `max_offset` that decodes, deleting
/// those above it (a truncated log's) and any that do not decode, as
/// Kafka's `truncateAndReload`/`loadFromSnapshot`.
pub fn load_latest(dir: &Path, max_offset: i64) -> io::Result<Option<(i64, Vec<SnapshotEntry>)>> {
    let offsets = list(dir)?;
    for &o in offsets.iter().filter(|&&o| o > max_offset) {
        delete(dir, o)?;
    }
    for &o in offsets.iter().rev().filter(|&&o| o <= max_offset) {
        match std::fs::read(path(dir, o))
            .map_err(SnapshotError::from)
            .and_then(|b| decode(&b))
        {
            Ok(entries) => return Ok(Some((o, entries))),
            Err(e) => {
                warn!(dir = %dir.display(), offset = o, error = %e, "deleting a producer snapshot that cannot be used");
                delete(dir, o)?;
            }
        }
    }
    Ok(None)
}

/// Deletes every snapshot in `dir`.
pub fn delete_all(dir: &Path) -> io::Result<()> {
    for o in list(dir)? {
        delete(dir, o)?;
    }
    Ok(())
}

/// Deletes the snapshots below `offset` except the newest snapshot of all
/// (retention moved the log start past them).
pub fn delete_below(dir: &Path, offset: i64) -> io::Result<()> {
    let offsets = list(dir)?;
    let newest = offsets.last().copied();
    for o in offsets {
        if o < offset && Some(o) != newest {
            delete(dir, o)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64) -> SnapshotEntry {
        SnapshotEntry {
            producer_id: pid,
            epoch: 3,
            last_sequence: 9,
            last_offset: 120,
            offset_delta: 4,
            timestamp: 1_700_000_000_000,
            coordinator_epoch: 2,
            current_txn_first_offset: -1,
        }
    }

    #[test]
    fn round_trips_and_checks_crc_version_and_count() {
        let es = vec![entry(7), entry(5)];
        let b = encode(&es);
        assert_eq!(b.len(), HEADER_SIZE + 2 * ENTRY_SIZE);
        let back = decode(&b).expect("valid");
        assert_eq!(back, vec![entry(5), entry(7)]);
        let mut bad = b.clone();
        bad[HEADER_SIZE + 3] ^= 1;
        assert!(decode(&bad).is_err(), "crc");
        let mut bad = b.clone();
        bad[1] = 2;
        assert!(decode(&bad).is_err(), "version");
        assert!(decode(&b[..b.len() - 1]).is_err(), "short");
        assert!(decode(&b[..3]).is_err(), "header");
        assert_eq!(decode(&encode(&[])).expect("valid"), vec![]);
    }

    #[test]
    fn header_layout_is_kafkas() {
        // An empty snapshot: version 1, CRC-32C of the zero entry count.
        let b = encode(&[]);
        assert_eq!(&b[0..2], &[0, 1]);
        assert_eq!(&b[6..10], &[0, 0, 0, 0]);
        assert_eq!(u32::from_be_bytes(be(&b, 2)), crc32c::crc32c(&[0, 0, 0, 0]));
    }

    #[test]
    fn load_latest_skips_corrupt_and_drops_those_above() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), 10, &encode(&[entry(1)])).expect("write");
        write(dir.path(), 20, &encode(&[entry(2)])).expect("write");
        std::fs::write(path(dir.path(), 30), b"garbage").expect("write");
        write(dir.path(), 40, &encode(&[entry(4)])).expect("write");
        let (o, es) = load_latest(dir.path(), 35).expect("io").expect("one");
        assert_eq!((o, es[0].producer_id), (20, 2));
        assert_eq!(list(dir.path()).expect("list"), vec![10, 20]);
        delete_below(dir.path(), 100).expect("delete");
        assert_eq!(list(dir.path()).expect("list"), vec![20]);
        delete_all(dir.path()).expect("delete");
        assert!(load_latest(dir.path(), 100).expect("io").is_none());
    }
}
