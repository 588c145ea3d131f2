//! The transaction index (`<base offset>.txnindex`): the aborted
//! transactions whose markers are in a segment, so a read_committed Fetch
//! can tell the consumer which records to drop (Kafka's `AbortedTxn` and
//! `TransactionIndex`).
//!
//! Each entry is 34 bytes, big-endian: `int16` version (0), `int64`
//! producer id, `int64` first offset, `int64` last offset (the abort
//! marker's offset), `int64` last stable offset (the LSO once this
//! transaction completed). Entries are appended in increasing last offset.
//! Only whole entries are read, as Kafka's reader does; a trailing partial
//! entry (a crash mid-append) is ignored.

/// Size of one entry.
pub const ENTRY_SIZE: usize = 34;
/// The only entry version.
pub const CURRENT_VERSION: i16 = 0;

/// One aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Offset of its first batch in this partition.
    pub first_offset: i64,
    /// Offset of its abort marker.
    pub last_offset: i64,
    /// The partition's last stable offset once the abort completed.
    pub last_stable_offset: i64,
}

/// Why an index could not be read or appended to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnIndexError {
    /// An entry with a version this code does not know.
    #[error("unexpected aborted transaction version {version} at byte {position}")]
    UnknownVersion {
        /// The version read.
        version: i16,
        /// Byte position of the entry.
        position: usize,
    },
    /// Entries must be appended in increasing last offset.
    #[error("last offset {new} is not greater than the index's last offset {last}")]
    NotIncreasing {
        /// The index's last entry's last offset.
        last: i64,
        /// The new entry's.
        new: i64,
    },
}

impl AbortedTxn {
    /// The entry's bytes.
    pub fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..2].copy_from_slice(&CURRENT_VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn decode(b: &[u8; ENTRY_SIZE], position: usize) -> Result<Self, TxnIndexError> {
        let i64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            i64::from_be_bytes(a)
        };
        let version = i16::from_be_bytes([b[0], b[1]]);
        if version != CURRENT_VERSION {
            return Err(TxnIndexError::UnknownVersion { version, position });
        }
        Ok(AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// The whole entries of an index file's bytes.
pub fn parse(bytes: &[u8]) -> Result<Vec<AbortedTxn>, TxnIndexError> {
    bytes
        .chunks_exact(ENTRY_SIZE)
        .enumerate()
        .map(|(i, chunk)| {
            let mut a = [0u8; ENTRY_SIZE];
            a.copy_from_slice(chunk);
            AbortedTxn::decode(&a, i * ENTRY_SIZE)
        })
        .collect()
}

/// Checks that `new` may follow `last` in an index.
pub fn check_append(last: Option<&AbortedTxn>, new: &AbortedTxn) -> Result<(), TxnIndexError> {
    match last {
        Some(l) if l.last_offset >= new.last_offset => Err(TxnIndexError::NotIncreasing {
            last: l.last_offset,
            new: new.last_offset,
        }),
        _ => Ok(()),
    }
}

/// The aborted transactions of one segment's index that overlap
/// `[fetch_offset, upper_bound)`, and whether the search is complete (an
/// entry's LSO reached `upper_bound`, so later segments cannot add any),
/// as Kafka's `TransactionIndex.collectAbortedTxns`.
pub fn collect_aborted(
    entries: &[AbortedTxn],
    fetch_offset: i64,
    upper_bound: i64,
) -> (Vec<AbortedTxn>, bool) {
    let mut out = Vec::new();
    for e in entries {
        if e.last_offset >= fetch_offset && e.first_offset < upper_bound {
            out.push(*e);
        }
        if e.last_stable_offset >= upper_bound {
            return (out, true);
        }
    }
    (out, false)
}

/// The aborted transactions a read_committed Fetch reports for
/// `[fetch_offset, upper_bound)`: the indexes of the segment holding
/// `fetch_offset` and the segments after it, in order, searched until one
/// search is complete (Kafka's `LocalLog.collectAbortedTransactions`). The
/// Fetch response lists each as (producer id, first offset).
pub fn collect_aborted_from<'a>(
    segment_indexes: impl IntoIterator<Item = &'a [AbortedTxn]>,
    fetch_offset: i64,
    upper_bound: i64,
) -> Vec<AbortedTxn> {
    let mut out = Vec::new();
    for entries in segment_indexes {
        let (found, complete) = collect_aborted(entries, fetch_offset, upper_bound);
        out.extend(found);
        if complete {
            break;
        }
    }
    out
}

/// The file name suffix.
pub const SUFFIX: &str = ".txnindex";

/// The path of the index of the segment at `base` in `dir`.
pub fn path(dir: &std::path::Path, base: i64) -> std::path::PathBuf {
    dir.join(format!("{}{SUFFIX}", super::segment::file_stem(base)))
}

/// Writes the index of the segment at `base` whole (a temporary file,
/// fsynced, renamed over the old one); no entries removes it.
pub fn write_file(dir: &std::path::Path, base: i64, entries: &[AbortedTxn]) -> std::io::Result<()> {
    use std::io::Write;
    let dest = path(dir, base);
    if entries.is_empty() {
        return match std::fs::remove_file(&dest) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let tmp = dir.join(format!("{}{SUFFIX}.tmp", super::segment::file_stem(base)));
    {
        let mut f = std::fs::File::create(&tmp)?;
        let mut bytes = Vec::with_capacity(entries.len() * ENTRY_SIZE);
        for e in entries {
            bytes.extend_from_slice(&e.encode());
        }
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &dest)
}

/// Every entry of every index file in `dir`, by increasing last offset, a
/// transaction listed twice (a segment merged by the cleaner keeps its old
/// index next to the new one) once. A file that does not parse is skipped
/// with an error logged: its transactions are then found again only by a
/// replay from below them.
pub fn read_all(dir: &std::path::Path) -> std::io::Result<Vec<AbortedTxn>> {
    let mut out = Vec::new();
    for (_, file) in files(dir)? {
        match parse(&std::fs::read(&file)?) {
            Ok(es) => out.extend(es),
            Err(e) => {
                tracing::error!(file = %file.display(), error = %e, "skipping a transaction index that does not parse");
            }
        }
    }
    out.sort_by_key(|e| (e.last_offset, e.producer_id));
    out.dedup_by_key(|e| (e.last_offset, e.producer_id));
    Ok(out)
}

fn files(dir: &std::path::Path) -> std::io::Result<Vec<(i64, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name
            .to_string_lossy()
            .strip_suffix(SUFFIX)
            .map(str::to_owned)
        else {
            continue;
        };
        if stem.len() == 20 {
            if let Ok(base) = stem.parse::<i64>() {
                out.push((base, entry.path()));
            }
        }
    }
    Ok(out)
}

/// Drops every entry at or past `offset` from the index files in `dir` (a
/// truncated log: no transaction the log no longer holds may be reported
/// as aborted once offsets are reused); files left empty are removed.
/// `i64::MIN` removes them all.
pub fn truncate_files(dir: &std::path::Path, offset: i64) -> std::io::Result<()> {
    for (base, file) in files(dir)? {
        if base >= offset {
            std::fs::remove_file(&file)?;
            continue;
        }
        let entries = parse(&std::fs::read(&file)?).unwrap_or_default();
        if entries.iter().any(|e| e.last_offset >= offset) {
            let kept: Vec<AbortedTxn> = entries
                .into_iter()
                .filter(|e| e.last_offset < offset)
                .collect();
            write_file(dir, base, &kept)?;
        }
    }
    Ok(())
}

/// Removes the index files all of whose transactions ended below
/// `log_start` (retention deleted their segments; a file the cleaner left
/// next to a merged segment goes the same way).
pub fn delete_below(dir: &std::path::Path, log_start: i64) -> std::io::Result<()> {
    for (base, file) in files(dir)? {
        if base >= log_start {
            continue;
        }
        let entries = parse(&std::fs::read(&file)?).unwrap_or_default();
        if entries.iter().all(|e| e.last_offset < log_start) {
            std::fs::remove_file(&file)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entry_matches_kafka() {
        // Kafka 4.1.1: new AbortedTxn(1000, 10, 20, 15)'s buffer.
        let kafka = unhex("000000000000000003e8000000000000000a0000000000000014000000000000000f");
        let e = txn(1000, 10, 20, 15);
        assert_eq!(e.encode().to_vec(), kafka);
        assert_eq!(parse(&kafka).expect("valid"), vec![e]);
    }

    #[test]
    fn parse_ignores_a_partial_tail_and_refuses_unknown_versions() {
        let mut b = txn(1, 0, 5, 6).encode().to_vec();
        b.extend_from_slice(&txn(2, 3, 9, 10).encode());
        b.extend_from_slice(&[0; 20]);
        assert_eq!(parse(&b).expect("valid").len(), 2);
        b[ENTRY_SIZE + 1] = 1;
        assert_eq!(
            parse(&b),
            Err(TxnIndexError::UnknownVersion {
                version: 1,
                position: ENTRY_SIZE
            })
        );
        assert_eq!(parse(&[]).expect("valid"), vec![]);
    }

    #[test]
    fn appends_must_increase() {
        let a = txn(1, 0, 5, 6);
        assert!(check_append(None, &a).is_ok());
        assert!(check_append(Some(&a), &txn(2, 1, 5, 6)).is_err());
        assert!(check_append(Some(&a), &txn(2, 1, 7, 8)).is_ok());
    }

    #[test]
    fn files_round_trip_and_merge() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b, c) = (txn(1, 0, 5, 6), txn(2, 7, 12, 13), txn(3, 14, 20, 21));
        write_file(dir.path(), 0, &[a, b]).expect("write");
        write_file(dir.path(), 7, &[b, c]).expect("write");
        assert_eq!(read_all(dir.path()).expect("read"), vec![a, b, c]);
        write_file(dir.path(), 7, &[]).expect("remove");
        assert!(!path(dir.path(), 7).exists());
        assert_eq!(read_all(dir.path()).expect("read"), vec![a, b]);
        write_file(dir.path(), 7, &[b, c]).expect("write");
        // Truncating at 12 drops b (marker at 12) and c from both files.
        truncate_files(dir.path(), 12).expect("truncate");
        assert_eq!(read_all(dir.path()).expect("read"), vec![a]);
        assert!(path(dir.path(), 0).exists() && !path(dir.path(), 7).exists());
        write_file(dir.path(), 7, &[b]).expect("write");
        delete_below(dir.path(), 6).expect("delete");
        assert!(!path(dir.path(), 0).exists() && path(dir.path(), 7).exists());
        truncate_files(dir.path(), i64::MIN).expect("truncate");
        assert_eq!(read_all(dir.path()).expect("read"), vec![]);
    }

    #[test]
    fn collect_as_kafka() {
        let entries = [txn(1, 0, 5, 6), txn(2, 3, 9, 10), txn(3, 12, 20, 21)];
        // Fetch from 6 up to 12: only the second overlaps; the third starts
        // at 12 but its LSO (21) reaches 12, so the search is complete.
        assert_eq!(collect_aborted(&entries, 6, 12), (vec![entries[1]], true));
        // Nothing reaches an upper bound of 30: later segments may hold more.
        assert_eq!(
            collect_aborted(&entries, 6, 30),
            (entries[1..].to_vec(), false)
        );
        // Up to 10: the second's LSO reaches it: complete.
        assert_eq!(
            collect_aborted(&entries, 0, 10),
            (vec![entries[0], entries[1]], true)
        );
        assert_eq!(collect_aborted(&entries, 25, 30), (vec![], false));
    }

    #[test]
    fn collect_across_segments_stops_when_complete() {
        // Transaction 3 was open when 2 aborted: 2's LSO is 3's first offset.
        let seg0 = [txn(1, 0, 5, 6)];
        let seg1 = [txn(2, 7, 12, 10), txn(3, 10, 20, 21)];
        let seg2 = [txn(4, 22, 30, 31)];
        let segs = [&seg0[..], &seg1[..], &seg2[..]];
        // Up to 9: transaction 2's LSO (10) reaches the bound, so the search
        // stops there and transaction 3 (first offset 10) is not reported.
        assert_eq!(collect_aborted_from(segs, 4, 9), vec![seg0[0], seg1[0]]);
        // Up to 25: every transaction from the fetch offset on.
        assert_eq!(
            collect_aborted_from(segs, 4, 25),
            vec![seg0[0], seg1[0], seg1[1], seg2[0]]
        );
        // From 6: transaction 1 ended at 5 and is not reported.
        assert_eq!(
            collect_aborted_from(segs, 6, 25),
            vec![seg1[0], seg1[1], seg2[0]]
        );
        assert_eq!(collect_aborted_from(segs, 40, 50), vec![]);
    }
}
