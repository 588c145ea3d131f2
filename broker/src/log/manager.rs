//! The log directory: partition directories, checkpoints and the
//! clean-shutdown marker.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use tracing::{error, info, warn};
use uuid::Uuid;

use super::checkpoint;
use super::{Log, LogError};
use crate::config::LogConfig;

const CLEAN_SHUTDOWN: &str = ".kafka_cleanshutdown";
const START_OFFSETS: &str = "log-start-offset-checkpoint";
const RECOVERY_POINTS: &str = "recovery-point-offset-checkpoint";
/// Kafka's high-watermark checkpoint (`replica.high.watermark.checkpoint.interval.ms`).
const HIGH_WATERMARKS: &str = "replication-offset-checkpoint";
/// Kafka's `cleaner-offset-checkpoint`: each compacted log's first dirty offset.
const CLEANER_OFFSETS: &str = "cleaner-offset-checkpoint";
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
    recovery_points: HashMap<TopicPartition, i64>,
    high_watermarks: HashMap<TopicPartition, i64>,
    /// One writer of the high-watermark checkpoint at a time (the periodic
    /// task and shutdown share its temporary file).
    hw_writer: std::sync::Mutex<()>,
    /// The cleaner's first dirty offsets, written to `cleaner-offset-checkpoint`
    /// after every cleaning (the lock also serializes those writes).
    cleaner_offsets: std::sync::Mutex<HashMap<TopicPartition, i64>>,
}

/// One `topic partition offset` entry (topic names hold no spaces).
fn parse_entry(line: &str) -> Option<(TopicPartition, i64)> {
    let mut it = line.split(' ');
    let topic = it.next().filter(|t| !t.is_empty())?;
    let partition = it.next()?.parse().ok().filter(|p: &i32| *p >= 0)?;
    let offset = it.next()?.parse().ok().filter(|o: &i64| *o >= 0)?;
    it.next().is_none().then(|| {
        (
            TopicPartition {
                topic: topic.to_string(),
                partition,
            },
            offset,
        )
    })
}

/// Reads one of the directory's offset checkpoints. An unusable one is
/// logged and read as empty; `fallback` says what that means for the logs.
fn read_offsets(path: &Path, fallback: &str) -> HashMap<TopicPartition, i64> {
    match checkpoint::read(path, parse_entry) {
        Ok(entries) => entries.unwrap_or_default().into_iter().collect(),
        Err(e) => {
            error!(error = %e, "offset checkpoint unusable: {fallback}");
            HashMap::new()
        }
    }
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

/// Decodes an id printed by [`topic_id_string`] (Kafka's `Uuid.fromString`).
pub fn parse_kafka_uuid(s: &str) -> Option<Uuid> {
    if s.len() != 22 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        })
    };
    let mut bits: u128 = 0;
    let bytes = s.as_bytes();
    for &c in &bytes[..21] {
        bits = (bits << 6) | u128::from(val(c)?);
    }
    // The last character holds the final 2 bits (and 4 zero bits).
    let last = val(bytes[21])?;
    if last & 0xF != 0 {
        return None;
    }
    bits = (bits << 2) | u128::from(last >> 4);
    Some(Uuid::from_u128(bits))
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
            // A later crash must not be taken for a clean shutdown.
            std::fs::remove_file(&marker)?;
            checkpoint::sync_dir(dir)?;
        } else {
            info!(dir = %dir.display(), "no clean shutdown marker: active segments will be recovered");
        }
        let start_offsets = read_offsets(
            &dir.join(START_OFFSETS),
            "each log starts at the base offset of its first segment",
        );
        let recovery_points = read_offsets(
            &dir.join(RECOVERY_POINTS),
            "after an unclean shutdown every segment of every log is recovered",
        );
        let high_watermarks = read_offsets(
            &dir.join(HIGH_WATERMARKS),
            "high watermarks start at each log's start until the leader moves them",
        );
        let cleaner_offsets = read_offsets(
            &dir.join(CLEANER_OFFSETS),
            "compacted logs are cleaned again from their start",
        );
        Ok(Self {
            dir: dir.to_path_buf(),
            clean,
            start_offsets,
            recovery_points,
            high_watermarks,
            hw_writer: std::sync::Mutex::new(()),
            cleaner_offsets: std::sync::Mutex::new(cleaner_offsets),
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
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            checkpoint::sync_dir(&self.dir)?;
        }
        let meta = dir.join("partition.metadata");
        if !meta.exists() {
            let tmp = dir.join("partition.metadata.tmp");
            {
                let mut f = std::fs::File::create(&tmp)?;
                std::io::Write::write_all(
                    &mut f,
                    format!("version: 0\ntopic_id: {}\n", topic_id_string(topic_id)).as_bytes(),
                )?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &meta)?;
            checkpoint::sync_dir(&dir)?;
        }
        // After a clean shutdown nothing is recovered; otherwise recovery
        // starts at the checkpointed recovery point (0, the whole log, when
        // the checkpoint has none for this partition).
        let recover_from =
            (!self.clean).then(|| self.recovery_points.get(tp).copied().unwrap_or(0));
        Log::open(
            &dir,
            config,
            self.start_offsets.get(tp).copied(),
            recover_from,
        )
    }

    /// The high watermark the checkpoint read at start-up holds for `tp`.
    pub fn checkpointed_high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.high_watermarks.get(tp).copied()
    }

    /// Writes the high-watermark checkpoint (`replication-offset-checkpoint`,
    /// Kafka's format: `topic partition offset` per line). Blocking disk I/O.
    pub fn checkpoint_high_watermarks(&self, hws: &[(TopicPartition, i64)]) {
        let lines: Vec<String> = hws
            .iter()
            .map(|(tp, hw)| format!("{} {} {}", tp.topic, tp.partition, hw))
            .collect();
        let _one = self.hw_writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = checkpoint::write(&self.dir.join(HIGH_WATERMARKS), &lines) {
            warn!(file = HIGH_WATERMARKS, error = %e, "cannot write checkpoint");
        }
    }

    /// The cleaner's first dirty offset of `tp`, if it has cleaned it.
    pub fn cleaner_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.cleaner_offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tp)
            .copied()
    }

    /// Records a cleaning of `tp` up to `first_dirty` and writes
    /// `cleaner-offset-checkpoint` (blocking disk I/O). `retain` says which
    /// partitions are still hosted (the others are dropped from the file).
    pub fn set_cleaner_offset(
        &self,
        tp: &TopicPartition,
        first_dirty: i64,
        retain: &dyn Fn(&TopicPartition) -> bool,
    ) {
        let mut m = self
            .cleaner_offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.insert(tp.clone(), first_dirty);
        m.retain(|tp, _| retain(tp));
        let mut lines: Vec<String> = m
            .iter()
            .map(|(tp, o)| format!("{} {} {}", tp.topic, tp.partition, o))
            .collect();
        lines.sort();
        if let Err(e) = checkpoint::write(&self.dir.join(CLEANER_OFFSETS), &lines) {
            warn!(file = CLEANER_OFFSETS, error = %e, "cannot write checkpoint");
        }
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
            if let Err(e) = checkpoint::write(&self.dir.join(name), &lines) {
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
        checkpoint::sync_dir(&self.dir)?;
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
    use crate::protocol::batch::tests::encode;
    use kafka_protocol::records::Compression;

    const EPOCHS: &str = "leader-epoch-checkpoint";

    fn tp() -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition: 0,
        }
    }

    fn small() -> LogConfig {
        LogConfig {
            segment_bytes: 600,
            ..LogConfig::default()
        }
    }

    /// A log of several segments, 10 records in epoch 3 then 10 in epoch 5,
    /// its start moved to the second segment, checkpointed, and left without
    /// a clean shutdown. Returns the temp dir, the topic id, the start offset
    /// and the leader-epoch checkpoint text.
    fn crashed_log() -> (tempfile::TempDir, Uuid, i64, String) {
        let dir = tempfile::tempdir().expect("tmp");
        let id = new_kafka_uuid();
        let m = LogManager::open(dir.path()).expect("open dir");
        let mut log = m.open_log(&tp(), &id, small()).expect("open log");
        for epoch in [3, 3, 5, 5, 5] {
            let mut b = encode(4, Compression::None);
            log.append_as_leader(&mut b, epoch).expect("append");
        }
        assert_eq!(log.end_offset(), 20);
        let bases = log.segment_bases();
        assert!(bases.len() >= 3, "{bases:?}");
        let second = bases[1];
        assert_eq!(log.delete_records_before(second).expect("delete"), second);
        log.flush().expect("flush");
        m.checkpoint(&[(tp(), log.start_offset(), log.recovery_point)]);
        let epochs = std::fs::read_to_string(m.partition_dir(&tp()).join(EPOCHS)).expect("epochs");
        // DeleteRecords moved the start past the first batch of epoch 3.
        assert_eq!(epochs, format!("0\n2\n3 {second}\n5 8\n"));
        (dir, id, second, epochs)
    }

    fn reopen(dir: &Path, id: &Uuid) -> (LogManager, Log) {
        let m = LogManager::open(dir).expect("reopen dir");
        let log = m.open_log(&tp(), id, small()).expect("reopen log");
        (m, log)
    }

    #[test]
    fn checkpoints_load_after_a_crash() {
        let (dir, id, start, _) = crashed_log();
        let (_, log) = reopen(dir.path(), &id);
        assert_eq!((log.start_offset(), log.end_offset()), (start, 20));
        assert_eq!((log.epoch_for_offset(7), log.epoch_for_offset(8)), (3, 5));
    }

    #[test]
    fn a_bad_leader_epoch_checkpoint_is_rebuilt_from_the_batches() {
        for bad in ["", "0\n2\n3 0\n", "junk", "0\n2\n5 0\n3 8\n"] {
            let (dir, id, start, epochs) = crashed_log();
            let pdir = dir.path().join("t-0");
            std::fs::write(pdir.join(EPOCHS), bad).expect("corrupt");
            let (_, log) = reopen(dir.path(), &id);
            assert_eq!(
                (log.start_offset(), log.end_offset()),
                (start, 20),
                "{bad:?}"
            );
            assert_eq!(
                (
                    log.epoch_for_offset(7),
                    log.epoch_for_offset(8),
                    log.latest_epoch()
                ),
                (3, 5, 5),
                "{bad:?}"
            );
            assert_eq!(
                std::fs::read_to_string(pdir.join(EPOCHS)).expect("read"),
                epochs
            );
        }
        // An absent one too.
        let (dir, id, _, epochs) = crashed_log();
        std::fs::remove_file(dir.path().join("t-0").join(EPOCHS)).expect("rm");
        let (_, log) = reopen(dir.path(), &id);
        assert_eq!(log.latest_epoch(), 5);
        let text = std::fs::read_to_string(dir.path().join("t-0").join(EPOCHS)).expect("read");
        assert_eq!(text, epochs);
    }

    #[test]
    fn a_bad_log_start_checkpoint_falls_back_to_the_first_segment() {
        let (dir, id, start, _) = crashed_log();
        std::fs::write(dir.path().join(START_OFFSETS), "0\n1\nt 0\n").expect("corrupt");
        let (_, log) = reopen(dir.path(), &id);
        // The segments below the start were deleted: the first one left starts there.
        assert_eq!((log.start_offset(), log.end_offset()), (start, 20));
        assert_eq!(log.segment_bases()[0], start);
    }

    #[test]
    fn a_bad_recovery_point_checkpoint_recovers_every_segment() {
        let (dir, id, start, _) = crashed_log();
        // Corrupt the CRC of the last batch of the first (flushed, trusted) segment.
        let pdir = dir.path().join("t-0");
        let first = pdir.join(format!("{}.log", super::super::segment::file_stem(start)));
        let mut bytes = std::fs::read(&first).expect("read");
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        std::fs::write(&first, &bytes).expect("write");
        // With the recovery point known (the log end), that segment is trusted.
        {
            let (_, log) = reopen(dir.path(), &id);
            assert_eq!(log.end_offset(), 20);
        }
        // No clean-shutdown marker was written: a crash again, now without a recovery point.
        std::fs::write(dir.path().join(RECOVERY_POINTS), "0\n1\nt 0 zz\n").expect("corrupt");
        let (_, log) = reopen(dir.path(), &id);
        // Full recovery cut the corrupt batch and dropped the segments after it.
        assert_eq!(log.segment_bases(), vec![start]);
        let end = log.end_offset();
        assert!(
            end >= start && end < 20 && (end - start) % 4 == 0,
            "whole batches kept: {start}..{end}"
        );
        assert_eq!(log.epoch_for_offset(end), log.latest_epoch());
    }

    #[test]
    fn topic_ids_roundtrip_in_kafka_form() {
        let id = Uuid::new_v4();
        let s = topic_id_string(&id);
        assert_eq!(s.len(), 22);
        assert_eq!(uuid_from_kafka(&s), Some(id));
    }
}
