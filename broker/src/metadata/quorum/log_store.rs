//! The durable raft log store: an append-only file of CRC-checked frames plus
//! a vote file and a (best effort) committed-log-id file, all under one
//! directory.
//!
//! Files:
//! - `log`: frames (see [`super::frame`]) holding JSON [`LogRecord`]s. The file
//!   may start with one `Purged` record (written when the log is purged, by
//!   rewriting the file atomically); every other record is an entry, with
//!   consecutive indexes. Recovery stops at the first bad frame and truncates
//!   the file there (a torn tail from a crash mid-append).
//! - `vote`: one frame holding the JSON vote, replaced atomically and fsynced.
//! - `committed`: one frame holding the last committed log id, replaced
//!   atomically but not fsynced. It only lets a restart re-apply committed
//!   entries eagerly; losing it is harmless.
//!
//! All entries are also kept in memory (the metadata log is small and purged
//! after every snapshot), so reads never touch the disk.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, OptionalSend, RaftLogReader, StorageIOError};
use serde::{Deserialize, Serialize};

use super::frame;
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const LOG_FILE: &str = "log";
const VOTE_FILE: &str = "vote";
const COMMITTED_FILE: &str = "committed";

/// One record of the log file.
#[derive(Serialize, Deserialize)]
enum LogRecord {
    /// Everything up to and including this log id was purged.
    Purged(LogId),
    /// A log entry.
    Entry(Entry),
}

/// The borrowed twin of [`LogRecord`], for writing without cloning.
#[derive(Serialize)]
enum LogRecordRef<'a> {
    Purged(&'a LogId),
    Entry(&'a Entry),
}

struct Inner {
    dir: PathBuf,
    /// The log file, opened for appending.
    file: Arc<File>,
    /// The valid length of the log file.
    file_len: u64,
    /// Present entries by index.
    entries: BTreeMap<u64, Entry>,
    /// File offset of each present entry's frame, by index.
    offsets: BTreeMap<u64, u64>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

/// The raft log store. Clones share state; a clone is also the log reader.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

fn encode_record(rec: &LogRecordRef<'_>) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(rec).map_err(io::Error::other)?;
    frame::encode(&json)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

/// Runs blocking file IO off the async worker threads.
async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("blocking IO task failed: {e}")))?
}

fn sto_err(e: &io::Error, make: fn(AnyError) -> StorageIOError<u64>) -> StorageError {
    make(AnyError::new(e)).into()
}

struct Loaded {
    entries: BTreeMap<u64, Entry>,
    offsets: BTreeMap<u64, u64>,
    last_purged: Option<LogId>,
    valid_len: u64,
}

/// Parses the log file's bytes up to the first bad frame.
fn parse_log(buf: &[u8]) -> Loaded {
    let mut out = Loaded {
        entries: BTreeMap::new(),
        offsets: BTreeMap::new(),
        last_purged: None,
        valid_len: 0,
    };
    let mut pos = 0usize;
    while pos < buf.len() {
        let Some((payload, n)) = buf.get(pos..).and_then(frame::decode) else {
            break;
        };
        let Ok(rec) = serde_json::from_slice::<LogRecord>(payload) else {
            break;
        };
        match rec {
            LogRecord::Purged(id) if pos == 0 => out.last_purged = Some(id),
            LogRecord::Purged(_) => break,
            LogRecord::Entry(e) => {
                let idx = e.log_id.index;
                let expected = match (out.entries.keys().next_back(), &out.last_purged) {
                    (Some(last), _) => Some(last + 1),
                    (None, Some(p)) => Some(p.index + 1),
                    (None, None) => None,
                };
                if expected.is_some_and(|x| x != idx) {
                    break;
                }
                out.offsets.insert(idx, pos as u64);
                out.entries.insert(idx, e);
            }
        }
        pos += n;
        out.valid_len = pos as u64;
    }
    out
}

impl LogStore {
    /// Opens (creating if needed) the log store in `dir`, recovering a torn
    /// tail of the log file by truncating it at the first bad frame.
    pub fn open(dir: &Path) -> io::Result<Self> {
        if !dir.exists() {
            fs::create_dir_all(dir)?;
            if let Some(parent) = dir.parent() {
                frame::sync_dir(parent)?;
            }
        }
        let path = dir.join(LOG_FILE);
        let existed = path.exists();
        let file = open_append(&path)?;
        if !existed {
            frame::sync_dir(dir)?;
        }
        let buf = fs::read(&path)?;
        let loaded = parse_log(&buf);
        if loaded.valid_len < buf.len() as u64 {
            tracing::warn!(
                path = %path.display(),
                valid = loaded.valid_len,
                len = buf.len(),
                "metadata log has a torn or corrupt tail; truncating it"
            );
            file.set_len(loaded.valid_len)?;
            file.sync_all()?;
        }
        let vote = match frame::read_single(&dir.join(VOTE_FILE))? {
            Some(p) => Some(serde_json::from_slice::<Vote>(&p).map_err(io::Error::other)?),
            None => None,
        };
        // The committed id is a hint: ignore it if unreadable.
        let committed = frame::read_single(&dir.join(COMMITTED_FILE))
            .ok()
            .flatten()
            .and_then(|p| serde_json::from_slice::<LogId>(&p).ok());
        tracing::info!(
            dir = %dir.display(),
            entries = loaded.entries.len(),
            last_purged = ?loaded.last_purged,
            "opened metadata log"
        );
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_path_buf(),
                file: Arc::new(file),
                file_len: loaded.valid_len,
                entries: loaded.entries,
                offsets: loaded.offsets,
                last_purged: loaded.last_purged,
                vote,
                committed,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn last_log_id(inner: &Inner) -> Option<LogId> {
        inner
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(inner.last_purged)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let inner = self.lock();
        Ok(inner.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let inner = self.lock();
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: Self::last_log_id(&inner),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let path = self.lock().dir.join(VOTE_FILE);
        let json = serde_json::to_vec(vote)
            .map_err(|e| sto_err(&io::Error::other(e), StorageIOError::write_vote))?;
        let bytes = frame::encode(&json).map_err(|e| sto_err(&e, StorageIOError::write_vote))?;
        blocking(move || frame::write_atomic(&path, &bytes, true))
            .await
            .map_err(|e| sto_err(&e, StorageIOError::write_vote))?;
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let path = {
            let mut inner = self.lock();
            inner.committed = committed;
            inner.dir.join(COMMITTED_FILE)
        };
        let Some(id) = committed else {
            return Ok(());
        };
        let res = serde_json::to_vec(&id)
            .map_err(io::Error::other)
            .and_then(|json| frame::encode(&json));
        let res = match res {
            Ok(bytes) => blocking(move || frame::write_atomic(&path, &bytes, false)).await,
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            // Only a restart hint; never fatal.
            tracing::warn!(error = %e, "failed to save the committed log id");
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let inner = self.lock();
        let Some(c) = inner.committed else {
            return Ok(None);
        };
        // Trust the hint only if it names an entry we hold (or purged).
        let known = inner
            .entries
            .get(&c.index)
            .map(|e| e.log_id == c)
            .unwrap_or_else(|| inner.last_purged.is_some_and(|p| c.index <= p.index));
        Ok(known.then_some(c))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let prepared = {
            let mut inner = self.lock();
            let mut buf = Vec::new();
            let mut res = Ok(());
            for e in entries {
                let frame = match encode_record(&LogRecordRef::Entry(&e)) {
                    Ok(f) => f,
                    Err(err) => {
                        res = Err(err);
                        break;
                    }
                };
                let idx = e.log_id.index;
                let offset = inner.file_len + buf.len() as u64;
                inner.offsets.insert(idx, offset);
                inner.entries.insert(idx, e);
                buf.extend_from_slice(&frame);
            }
            inner.file_len += buf.len() as u64;
            res.map(|()| (inner.file.clone(), buf))
        };
        let res = match prepared {
            Ok((file, buf)) => {
                blocking(move || {
                    (&*file).write_all(&buf)?;
                    file.sync_data()
                })
                .await
            }
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(sto_err(&e, StorageIOError::write_logs))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let (file, offset) = {
            let mut inner = self.lock();
            let Some(offset) = inner.offsets.range(log_id.index..).next().map(|(_, o)| *o) else {
                return Ok(());
            };
            inner.entries.split_off(&log_id.index);
            inner.offsets.split_off(&log_id.index);
            inner.file_len = offset;
            (inner.file.clone(), offset)
        };
        tracing::debug!(since = %log_id, "truncating metadata log");
        blocking(move || {
            file.set_len(offset)?;
            file.sync_data()
        })
        .await
        .map_err(|e| sto_err(&e, StorageIOError::write_logs))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let (path, bytes, offsets) = {
            let mut inner = self.lock();
            if inner.last_purged.is_some_and(|p| p.index >= log_id.index) {
                return Ok(());
            }
            inner.last_purged = Some(log_id);
            let kept = inner.entries.split_off(&log_id.index.saturating_add(1));
            inner.entries = kept;
            let mut buf = encode_record(&LogRecordRef::Purged(&log_id))
                .map_err(|e| sto_err(&e, StorageIOError::write_logs))?;
            let mut offsets = BTreeMap::new();
            for (idx, e) in &inner.entries {
                let f = encode_record(&LogRecordRef::Entry(e))
                    .map_err(|e| sto_err(&e, StorageIOError::write_logs))?;
                offsets.insert(*idx, buf.len() as u64);
                buf.extend_from_slice(&f);
            }
            (inner.dir.join(LOG_FILE), buf, offsets)
        };
        tracing::debug!(upto = %log_id, "purging metadata log");
        let len = bytes.len() as u64;
        let file = blocking(move || {
            frame::write_atomic(&path, &bytes, true)?;
            open_append(&path)
        })
        .await
        .map_err(|e| sto_err(&e, StorageIOError::write_logs))?;
        let mut inner = self.lock();
        inner.file = Arc::new(file);
        inner.file_len = len;
        inner.offsets = offsets;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::metadata::quorum::types::RecordBatch;

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(RecordBatch(Vec::new())),
        }
    }

    fn frames(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            out.extend(encode_record(&LogRecordRef::Entry(e)).expect("encode"));
        }
        out
    }

    #[test]
    fn parse_stops_at_gaps_and_bad_frames() {
        let mut buf = frames(&[entry(1), entry(2), entry(4)]);
        let l = parse_log(&buf);
        assert_eq!(l.entries.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        buf.truncate(frames(&[entry(1), entry(2)]).len());
        buf.extend_from_slice(&[9, 0, 0]);
        let l = parse_log(&buf);
        assert_eq!(l.entries.len(), 2);
        assert_eq!(l.valid_len, frames(&[entry(1), entry(2)]).len() as u64);
        assert_eq!(l.offsets[&2], frames(&[entry(1)]).len() as u64);
    }

    #[tokio::test]
    async fn open_truncates_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = frames(&[entry(0), entry(1), entry(2)]);
        let mut bytes = good.clone();
        let next = frames(&[entry(3)]);
        bytes.extend_from_slice(&next[..next.len() - 3]);
        fs::write(dir.path().join(LOG_FILE), &bytes).expect("write");

        let mut store = LogStore::open(dir.path()).expect("open");
        assert_eq!(
            fs::metadata(dir.path().join(LOG_FILE)).expect("meta").len(),
            good.len() as u64
        );
        let st = store.get_log_state().await.expect("state");
        assert_eq!(st.last_log_id.map(|l| l.index), Some(2));
        let got = store.try_get_log_entries(0..10).await.expect("read");
        assert_eq!(got.len(), 3);

        store
            .truncate(LogId::new(CommittedLeaderId::new(1, 1), 1))
            .await
            .expect("truncate");
        store
            .purge(LogId::new(CommittedLeaderId::new(1, 1), 0))
            .await
            .expect("purge");
        drop(store);
        let mut store = LogStore::open(dir.path()).expect("reopen");
        let st = store.get_log_state().await.expect("state");
        assert_eq!(st.last_purged_log_id.map(|l| l.index), Some(0));
        assert_eq!(st.last_log_id.map(|l| l.index), Some(0));
        assert!(store
            .try_get_log_entries(0..10)
            .await
            .expect("read")
            .is_empty());
    }
}
