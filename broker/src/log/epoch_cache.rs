//! The leader-epoch cache and its `leader-epoch-checkpoint` file.
//!
//! Each entry records the first offset written in a leader epoch. The file
//! uses Kafka's checkpoint format: a version line (0), a count line, then
//! `epoch start_offset` lines.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The epoch → start offset map of one partition.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<(i32, i64)>,
}

/// Writes `lines` to `path` atomically in Kafka's checkpoint format.
pub fn write_checkpoint(path: &Path, lines: &[String]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "0")?;
        writeln!(f, "{}", lines.len())?;
        for l in lines {
            writeln!(f, "{l}")?;
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Reads the entry lines of a Kafka checkpoint file (`None` if absent or malformed).
pub fn read_checkpoint(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let n: usize = lines.next()?.trim().parse().ok()?;
    let out: Vec<String> = lines.take(n).map(str::to_string).collect();
    (out.len() == n).then_some(out)
}

impl LeaderEpochCache {
    /// Loads the cache from `dir/leader-epoch-checkpoint`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join("leader-epoch-checkpoint");
        let entries = read_checkpoint(&path)
            .unwrap_or_default()
            .iter()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
            })
            .collect();
        Ok(Self { path, entries })
    }

    fn persist(&self) -> io::Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|(e, o)| format!("{e} {o}"))
            .collect();
        write_checkpoint(&self.path, &lines)
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
}
