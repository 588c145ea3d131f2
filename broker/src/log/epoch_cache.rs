//! The leader-epoch cache and its `leader-epoch-checkpoint` file.
//!
//! Each entry records the first offset written in a leader epoch. The file
//! uses Kafka's checkpoint format: a version line (0), a count line, then
//! `epoch start_offset` lines.

use std::io;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::checkpoint;
use crate::protocol::batch::BatchHeader;

/// The epoch → start offset map of one partition.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<(i32, i64)>,
    /// The file was absent or unusable: [`LeaderEpochCache::rebuild`] must run.
    stale: bool,
}

/// One `epoch start_offset` entry.
fn parse_entry(line: &str) -> Option<(i32, i64)> {
    let mut it = line.split_whitespace();
    let epoch = it.next()?.parse().ok()?;
    let offset = it.next()?.parse().ok()?;
    it.next().is_none().then_some((epoch, offset))
}

impl LeaderEpochCache {
    /// Loads the cache from `dir/leader-epoch-checkpoint`. A file that is
    /// absent, unreadable, or whose epochs and offsets do not increase is
    /// logged and marked stale: the log rebuilds it from its batches with
    /// [`LeaderEpochCache::rebuild`] (it is never silently taken as empty).
    pub fn open(dir: &Path) -> Self {
        let path = dir.join("leader-epoch-checkpoint");
        let (entries, stale) = match checkpoint::read(&path, parse_entry) {
            Ok(Some(entries)) if ordered(&entries) => (entries, false),
            Ok(Some(entries)) => {
                warn!(file = %path.display(), ?entries, "leader-epoch checkpoint out of order; rebuilding it from the log's batches");
                (Vec::new(), true)
            }
            Ok(None) => (Vec::new(), true),
            Err(e) => {
                warn!(error = %e, "leader-epoch checkpoint unusable; rebuilding it from the log's batches");
                (Vec::new(), true)
            }
        };
        Self {
            path,
            entries,
            stale,
        }
    }

    /// Whether the checkpoint was absent or unusable and the cache must be rebuilt.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Rebuilds the cache from the batch headers of the whole log, in offset
    /// order: each epoch starts at the base offset of its first batch.
    pub fn rebuild(
        &mut self,
        for_each_header: impl FnOnce(&mut dyn FnMut(&BatchHeader)) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut entries: Vec<(i32, i64)> = Vec::new();
        for_each_header(&mut |h: &BatchHeader| {
            let epoch = h.partition_leader_epoch;
            if epoch >= 0 && entries.last().is_none_or(|&(e, _)| epoch > e) {
                entries.push((epoch, h.base_offset));
            }
        })?;
        self.stale = false;
        if entries.is_empty() && !self.path.exists() {
            // A new, empty log: the first epoch assigned writes the file.
            return Ok(());
        }
        info!(file = %self.path.display(), ?entries, "rebuilt the leader-epoch cache from the log");
        self.entries = entries;
        self.persist()
    }

    fn persist(&self) -> io::Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|(e, o)| format!("{e} {o}"))
            .collect();
        checkpoint::write(&self.path, &lines)
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// Records that `epoch` starts at `offset` (no-op if already current).
    pub fn assign(&mut self, epoch: i32, offset: i64) -> io::Result<()> {
        if epoch < 0 {
            return Ok(());
        }
        match self.entries.last() {
            Some(&(e, _)) if e >= epoch => Ok(()),
            _ => {
                self.entries.push((epoch, offset));
                self.persist()
            }
        }
    }

    /// Forgets what lies before the log start `start` (after DeleteRecords or
    /// retention), as Kafka does: entries that begin before it go, but the
    /// epoch in force at `start` stays, now beginning at `start`.
    pub fn truncate_from_start(&mut self, start: i64) -> io::Result<()> {
        let below = self.entries.iter().take_while(|(_, o)| *o < start).count();
        if below == 0 {
            return Ok(());
        }
        let epoch = self.entries[below - 1].0;
        self.entries.drain(..below);
        if self.entries.first().is_none_or(|&(_, o)| o > start) {
            self.entries.insert(0, (epoch, start));
        }
        self.persist()
    }

    /// Drops entries starting at or beyond `end` (after log truncation).
    pub fn truncate_from_end(&mut self, end: i64) -> io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|(_, o)| *o < end);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// The epoch in force at `offset`, or -1.
    pub fn epoch_for(&self, offset: i64) -> i32 {
        self.entries
            .iter()
            .rev()
            .find(|(_, o)| *o <= offset)
            .map(|(e, _)| *e)
            .unwrap_or(-1)
    }

    /// The latest epoch.
    pub fn latest(&self) -> Option<i32> {
        self.entries.last().map(|(e, _)| *e)
    }

    /// Forgets every entry (the log was truncated fully).
    pub fn clear(&mut self) -> io::Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        self.entries.clear();
        self.persist()
    }

    /// Kafka's `LeaderEpochFileCache.endOffsetFor`: the largest epoch `<=
    /// requested` this log knows and the offset where the next epoch starts
    /// (`log_end` for the latest epoch). `(-1, -1)` when `requested` is
    /// undefined or beyond the latest epoch; `(requested, first start)`
    /// when it is before every epoch known.
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        if requested < 0 {
            return (-1, -1);
        }
        if self.latest() == Some(requested) {
            return (requested, log_end);
        }
        let Some(higher) = self.entries.iter().find(|(e, _)| *e > requested) else {
            return (-1, -1);
        };
        match self.entries.iter().rev().find(|(e, _)| *e <= requested) {
            Some(&(floor, _)) => (floor, higher.1),
            None => (requested, higher.1),
        }
    }
}

/// Epochs strictly increase and their start offsets do not decrease.
fn ordered(entries: &[(i32, i64)]) -> bool {
    entries
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        && entries.iter().all(|&(e, o)| e >= 0 && o >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offset_for_matches_kafka() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = LeaderEpochCache::open(dir.path());
        for (e, o) in [(1, 0), (3, 10), (5, 20)] {
            c.assign(e, o).expect("assign");
        }
        assert_eq!(c.end_offset_for(5, 30), (5, 30), "latest: the log end");
        assert_eq!(c.end_offset_for(3, 30), (3, 20));
        assert_eq!(c.end_offset_for(4, 30), (3, 20), "a gap: the floor epoch");
        assert_eq!(c.end_offset_for(0, 30), (0, 0), "before every epoch");
        assert_eq!(c.end_offset_for(6, 30), (-1, -1), "beyond the latest");
        assert_eq!(c.end_offset_for(-1, 30), (-1, -1));
    }

    #[test]
    fn truncate_from_start_keeps_the_epoch_in_force() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = LeaderEpochCache::open(dir.path());
        assert!(c.is_stale(), "no file yet");
        for (e, o) in [(1, 0), (3, 10), (5, 20)] {
            c.assign(e, o).expect("assign");
        }
        c.truncate_from_start(0).expect("noop");
        assert_eq!(c.entries(), &[(1, 0), (3, 10), (5, 20)]);
        c.truncate_from_start(15).expect("mid");
        assert_eq!(c.entries(), &[(3, 15), (5, 20)]);
        c.truncate_from_start(20).expect("exact");
        assert_eq!(c.entries(), &[(5, 20)]);
        let again = LeaderEpochCache::open(dir.path());
        assert!(!again.is_stale());
        assert_eq!(again.entries(), &[(5, 20)]);
    }
}
