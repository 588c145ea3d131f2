//! The log directory: partition directories, checkpoints and the
//! clean-shutdown marker.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use tracing::{info, warn};
use uuid::Uuid;

use super::epoch_cache::{read_checkpoint, write_checkpoint};
use super::{Log, LogError};
use crate::config::LogConfig;

const CLEAN_SHUTDOWN: &str = ".kafka_cleanshutdown";
const START_OFFSETS: &str = "log-start-offset-checkpoint";
const RECOVERY_POINTS: &str = "recovery-point-offset-checkpoint";
/// Suffix of a partition directory renamed for deletion (Kafka's `-delete`).
pub const DELETE_SUFFIX: &str = "-delete";
/// Suffix of a partition directory set aside because the metadata does not
/// know it (Kafka's `-stray`): kept, never deleted automatically.
pub const STRAY_SUFFIX: &str = "-stray";

/// A topic name and partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Owns one log directory (`log.dirs`' first entry).
#[derive(Debug)]
pub struct LogManager {
    dir: PathBuf,
    clean: bool,
    start_offsets: HashMap<TopicPartition, i64>,
}

/// Encodes a topic id as Kafka prints it (URL-safe base64, no padding).
pub fn topic_id_string(id: &Uuid) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = id.as_bytes();
    let mut out = String::with_capacity(22);
    let mut i = 0;
    while i < 16 {
        let chunk = [
            b[i],
            *b.get(i + 1).unwrap_or(&0),
            *b.get(i + 2).unwrap_or(&0),
        ];
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        let chars = if i + 3 <= 16 { 4 } else { 2 };
        for k in 0..chars {
            out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
        }
        i += 3;
    }
    out
}

/// A random id as Kafka's `Uuid.randomUuid()` makes them: never nil, never
/// the reserved all-but-one-zero id, and never printing with a leading '-'
/// (command-line tools would take it for an option).
pub fn new_kafka_uuid() -> Uuid {
    loop {
        let id = Uuid::new_v4();
        if id != Uuid::nil() && id != Uuid::from_u128(1) && !topic_id_string(&id).starts_with('-') {
            return id;
        }
    }
}

impl LogManager {
    /// Opens the log directory, noting whether the last shutdown was clean.
    pub fn open(dir: &Path) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir)?;
        let marker = dir.join(CLEAN_SHUTDOWN);
        let clean = marker.exists();
        if clean {
            std::fs::remove_file(&marker)?;
        } else {
            info!(dir = %dir.display(), "no clean shutdown marker: active segments will be recovered");
        }
        let mut start_offsets = HashMap::new();
        for line in read_checkpoint(&dir.join(START_OFFSETS)).unwrap_or_default() {
            let mut it = line.rsplitn(3, ' ');
            let (Some(off), Some(p), Some(t)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            if let (Ok(off), Ok(p)) = (off.parse(), p.parse()) {
                start_offsets.insert(
                    TopicPartition {
                        topic: t.to_string(),
                        partition: p,
                    },
                    off,
                );
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            clean,
            start_offsets,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of one partition.
    pub fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        self.dir.join(tp.to_string())
    }

    /// Whether a partition's directory exists, and if so the topic id it
    /// records (`Some(None)`: present, but no readable id).
    pub fn stored_topic_id(&self, tp: &TopicPartition) -> Option<Option<Uuid>> {
        let dir = self.partition_dir(tp);
        dir.is_dir().then(|| read_topic_id(&dir))
    }

    /// Partition directories on disk with their stored topic ids.
    pub fn existing(&self) -> Vec<(TopicPartition, Option<Uuid>)> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for e in rd.flatten() {
            if !e.path().is_dir() {
                continue;
            }
            let name = e.file_name().to_string_lossy().to_string();
            // The metadata quorum's log lives beside the partitions, as in KRaft;
            // directories renamed for deletion or set aside as strays are not
            // partitions any more.
            if name.starts_with("__cluster_metadata")
                || name.ends_with(DELETE_SUFFIX)
                || name.ends_with(STRAY_SUFFIX)
            {
                continue;
            }
            let Some((topic, p)) = name.rsplit_once('-') else {
                continue;
            };
            let Ok(partition) = p.parse::<i32>() else {
                continue;
            };
            let id = read_topic_id(&e.path());
            out.push((
                TopicPartition {
                    topic: topic.to_string(),
                    partition,
                },
                id,
            ));
        }
        out
    }

    /// Opens or creates the log of a partition, recording its topic id.
    pub fn open_log(
        &self,
        tp: &TopicPartition,
        topic_id: &Uuid,
        config: LogConfig,
    ) -> Result<Log, LogError> {
        let dir = self.partition_dir(tp);
        std::fs::create_dir_all(&dir)?;
        let meta = dir.join("partition.metadata");
        if !meta.exists() {
            let tmp = dir.join("partition.metadata.tmp");
            std::fs::write(
                &tmp,
                format!("version: 0\ntopic_id: {}\n", topic_id_string(topic_id)),
            )?;
            std::fs::rename(&tmp, &meta)?;
        }
        Log::open(
            &dir,
            config,
            self.start_offsets.get(tp).copied(),
            self.clean,
        )
    }

    /// Writes the start-offset and recovery-point checkpoints.
    pub fn checkpoint(&self, logs: &[(TopicPartition, i64, i64)]) {
        let starts: Vec<String> = logs
            .iter()
            .map(|(tp, s, _)| format!("{} {} {}", tp.topic, tp.partition, s))
            .collect();
        let points: Vec<String> = logs
            .iter()
            .map(|(tp, _, r)| format!("{} {} {}", tp.topic, tp.partition, r))
            .collect();
        for (name, lines) in [(START_OFFSETS, starts), (RECOVERY_POINTS, points)] {
            if let Err(e) = write_checkpoint(&self.dir.join(name), &lines) {
                warn!(file = name, error = %e, "cannot write checkpoint");
            }
        }
    }

    /// Renames a partition's directory to `<topic>-<p>.<uuid><suffix>`, as
    /// Kafka's `LocalLog.logDeleteDirName`/`logStrayDirName` do, and fsyncs
    /// the parent so the rename survives a crash. Returns the new path.
    pub fn rename_partition_dir(
        &self,
        tp: &TopicPartition,
        suffix: &str,
    ) -> Result<PathBuf, LogError> {
        let from = self.partition_dir(tp);
        let unique = Uuid::new_v4().simple().to_string();
        let mut base = tp.to_string();
        // Kafka caps the whole name at 255 bytes by truncating the prefix.
        let tail = format!(".{unique}{suffix}");
        while base.len() + tail.len() > 255 {
            base.pop();
        }
        let to = self.dir.join(format!("{base}{tail}"));
        std::fs::rename(&from, &to)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(to)
    }

    /// Directories renamed for deletion (`*-delete`), oldest first by name.
    pub fn pending_deletes(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(DELETE_SUFFIX))
            .map(|e| e.path())
            .collect();
        out.sort();
        out
    }

    /// Marks the directory cleanly shut down (call after every log is flushed).
    pub fn mark_clean_shutdown(&self) -> Result<(), LogError> {
        let f = std::fs::File::create(self.dir.join(CLEAN_SHUTDOWN))?;
        f.sync_all()?;
        Ok(())
    }
}

/// The topic id a partition directory's `partition.metadata` records.
fn read_topic_id(dir: &Path) -> Option<Uuid> {
    std::fs::read_to_string(dir.join("partition.metadata"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("topic_id: ").map(str::to_string))
        })
        .and_then(|s| Uuid::parse_str(&s).ok().or_else(|| uuid_from_kafka(&s)))
}

fn uuid_from_kafka(s: &str) -> Option<Uuid> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if s.len() != 22 {
        return None;
    }
    let mut bits: u128 = 0;
    for (i, c) in s.bytes().enumerate() {
        let v = A.iter().position(|x| *x == c)? as u128;
        if i == 21 {
            bits = (bits << 2) | (v >> 4);
        } else {
            bits = (bits << 6) | v;
        }
    }
    Some(Uuid::from_u128(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_roundtrip_in_kafka_form() {
        let id = Uuid::new_v4();
        let s = topic_id_string(&id);
        assert_eq!(s.len(), 22);
        assert_eq!(uuid_from_kafka(&s), Some(id));
    }
}
