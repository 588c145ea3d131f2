//! The partitions this broker hosts, driven only by committed metadata.
//!
//! The metadata publisher (`crate::metadata::publisher`) is the only caller
//! of [`ReplicaManager::apply`]; it hands over images in commit order, and an
//! image older than the last one applied is refused. Everything else only
//! looks partitions up: a missing partition is an error for the request,
//! never a reason to touch the disk.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tracing::{error, info, warn};
use uuid::Uuid;

use super::partition::Partition;
use super::quota::ReplicationQuotas;
use crate::config::{LogConfig, TopicConfigResolver};
use crate::log::{LogError, LogManager, TopicPartition, DELETE_SUFFIX, STRAY_SUFFIX};
use crate::metadata::{ClusterImage, TopicImage};

/// Kafka's `file.delete.delay.ms` default: how long a deleted partition's
/// renamed directory stays before it is removed.
const DEFAULT_FILE_DELETE_DELAY_MS: i64 = 60_000;

/// What one [`ReplicaManager::apply`] did (for logs and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Partitions opened or created.
    pub opened: usize,
    /// Partitions retired because committed metadata removed them.
    pub retired: usize,
    /// Whether the image was refused as older than the last applied one.
    pub stale: bool,
}

/// Hosts partition replicas.
pub struct ReplicaManager {
    node_id: i32,
    pub(super) logs: LogManager,
    static_props: BTreeMap<String, String>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// The last image applied (its `last_applied` is the metadata offset).
    /// Held for a whole [`ReplicaManager::apply`], which may open thousands
    /// of logs: async code reads [`Self::applied_offset`] instead.
    applied: Mutex<Option<Arc<ClusterImage>>>,
    /// `last_applied` of the last image applied; `u64::MAX` before the first.
    applied_offset: AtomicU64,
    /// Directories renamed for deletion, with when they were renamed.
    doomed_dirs: Mutex<Vec<(PathBuf, Instant)>>,
    /// The replication throttles, as of the last image applied.
    pub quotas: ReplicationQuotas,
    /// The log cleaner's partitions in progress and totals.
    pub cleaner: super::log_cleaner::CleanerState,
}

impl ReplicaManager {
    /// Creates the manager over an opened log directory. Directories left
    /// renamed for deletion by an earlier run are scheduled for removal.
    pub fn new(node_id: i32, logs: LogManager, static_props: BTreeMap<String, String>) -> Self {
        let now = Instant::now();
        let doomed = logs
            .pending_deletes()
            .into_iter()
            .map(|d| (d, now))
            .collect();
        Self {
            node_id,
            logs,
            static_props,
            partitions: RwLock::new(HashMap::new()),
            applied: Mutex::new(None),
            applied_offset: AtomicU64::new(u64::MAX),
            doomed_dirs: Mutex::new(doomed),
            quotas: ReplicationQuotas::default(),
            cleaner: Default::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.partitions.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The effective log config of a topic under `image`.
    pub fn log_config(&self, image: &ClusterImage, topic: &TopicImage) -> LogConfig {
        TopicConfigResolver {
            static_props: &self.static_props,
            cluster: &image.cluster_configs,
            node: image.broker_configs.get(&self.node_id),
        }
        .log_config(&topic.configs)
    }

    /// A hosted partition. A plain lookup: it never opens, creates or
    /// deletes anything.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let tp = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        self.read().get(&tp).cloned()
    }

    /// A hosted partition of the topic as `image` knows it: a plain lookup
    /// that also refuses a replica of another incarnation of the topic (the
    /// handler's image predates a delete and re-create). Never touches disk.
    pub fn hosted(
        &self,
        image: &ClusterImage,
        topic: &str,
        partition: i32,
    ) -> Option<Arc<Partition>> {
        let p = self.get(topic, partition)?;
        match image.topics.get(topic) {
            Some(t) if t.topic_id != p.topic_id => None,
            _ => Some(p),
        }
    }

    /// The partition for a client request that must go to its leader:
    /// UNKNOWN_TOPIC_OR_PARTITION when `image` has no such partition,
    /// NOT_LEADER_OR_FOLLOWER when another broker leads it (or this broker
    /// has not opened it yet), as Kafka's ReplicaManager answers.
    pub fn leader_of(
        &self,
        image: &ClusterImage,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, crate::error::ApiError> {
        use kafka_protocol::error::ResponseError;
        let pi = image.topics.get(topic).and_then(|t| {
            usize::try_from(partition)
                .ok()
                .and_then(|i| t.partitions.get(i))
        });
        let Some(pi) = pi else {
            return Err(crate::error::ApiError::code(
                ResponseError::UnknownTopicOrPartition,
            ));
        };
        if pi.leader != self.node_id {
            return Err(crate::error::ApiError::code(
                ResponseError::NotLeaderOrFollower,
            ));
        }
        self.hosted(image, topic, partition)
            .ok_or_else(|| crate::error::ApiError::code(ResponseError::NotLeaderOrFollower))
    }

    /// This broker's id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// Every hosted partition.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.read().values().cloned().collect()
    }

    /// The metadata offset (`last_applied`) of the last image applied, or
    /// `None` before the first.
    /// Never waits for an apply in progress (heartbeats call it on async
    /// workers).
    pub fn applied_offset(&self) -> Option<u64> {
        match self.applied_offset.load(Ordering::Acquire) {
            u64::MAX => None,
            o => Some(o),
        }
    }

    /// Brings the hosted partitions in line with `image`: opens partitions
    /// assigned here, retires those committed metadata removed (their
    /// directories are renamed `-delete` and removed after
    /// `file.delete.delay.ms`), and applies config and leader-epoch changes.
    ///
    /// Blocking (disk I/O): call it from a blocking thread. Only the
    /// metadata publisher calls it, in commit order; an image older than the
    /// last one applied is refused and changes nothing.
    pub fn apply(&self, image: &Arc<ClusterImage>) -> ApplyOutcome {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = ApplyOutcome::default();
        let prev = applied.clone();
        if let Some(prev) = &prev {
            if image.last_applied < prev.last_applied {
                warn!(
                    offset = image.last_applied,
                    applied = prev.last_applied,
                    "refusing a metadata image older than the one applied"
                );
                out.stale = true;
                return out;
            }
        }
        self.quotas.update(image, self.node_id, &self.static_props);
        let configs_changed = prev.as_ref().is_none_or(|p| {
            p.cluster_configs != image.cluster_configs
                || p.broker_configs.get(&self.node_id) != image.broker_configs.get(&self.node_id)
        });
        // Replicas committed metadata no longer places here: the topic was
        // deleted (or deleted and re-created under a new id). The map lock
        // is held only to take them out; the renames happen after.
        let doomed: Vec<Arc<Partition>> = {
            let mut parts = self.write();
            let keys: Vec<TopicPartition> = parts
                .iter()
                .filter(|(tp, p)| !self.placed_here(image, tp, Some(p.topic_id)))
                .map(|(tp, _)| tp.clone())
                .collect();
            keys.iter().filter_map(|tp| parts.remove(tp)).collect()
        };
        for p in &doomed {
            self.retire(p);
        }
        out.retired = doomed.len();
        // Config and epoch changes, and the partitions to open.
        let mut to_open = Vec::new();
        {
            let parts = self.read();
            for t in image.topics.values() {
                let unchanged = !configs_changed
                    && prev
                        .as_ref()
                        .and_then(|p| p.topics.get(&t.name))
                        .is_some_and(|old| old == t);
                if unchanged {
                    continue;
                }
                let config = self.log_config(image, t);
                for (i, pi) in t.partitions.iter().enumerate() {
                    if !pi.replicas.contains(&self.node_id) {
                        continue;
                    }
                    let tp = TopicPartition {
                        topic: t.name.clone(),
                        partition: i as i32,
                    };
                    match parts.get(&tp) {
                        Some(p) => {
                            p.set_config(config.clone());
                            p.apply_metadata(pi);
                        }
                        None => to_open.push((tp, t, config.clone(), pi)),
                    }
                }
            }
        }
        // Opening does disk I/O: without the map lock, so lookups by
        // request handlers never wait for it.
        for (tp, t, config, pi) in to_open {
            match self.open(&tp, t, config) {
                Ok(p) => {
                    p.apply_metadata(pi);
                    self.write().insert(tp, Arc::new(p));
                    out.opened += 1;
                }
                Err(e) => error!(partition = %tp, error = %e, "cannot open partition log"),
            }
        }
        *applied = Some(image.clone());
        self.applied_offset
            .store(image.last_applied, Ordering::Release);
        out
    }

    /// Whether committed metadata places a replica of `tp`, of the topic
    /// incarnation `topic_id`, on this broker.
    fn placed_here(
        &self,
        image: &ClusterImage,
        tp: &TopicPartition,
        topic_id: Option<Uuid>,
    ) -> bool {
        image.topics.get(&tp.topic).is_some_and(|t| {
            Some(t.topic_id) == topic_id
                && usize::try_from(tp.partition)
                    .ok()
                    .and_then(|i| t.partitions.get(i))
                    .is_some_and(|pi| pi.replicas.contains(&self.node_id))
        })
    }

    /// Retires a replica removed by committed metadata: renames its
    /// directory for deletion with the log locked.
    fn retire(&self, p: &Partition) {
        info!(partition = %p.tp, "metadata removed this replica: renaming its log for deletion");
        let renamed = p.retire(|| self.logs.rename_partition_dir(&p.tp, DELETE_SUFFIX));
        match renamed {
            Ok(dir) => self
                .doomed_dirs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((dir, Instant::now())),
            Err(e) => {
                error!(partition = %p.tp, error = %e, "cannot rename the log of a removed replica")
            }
        }
    }

    fn open(
        &self,
        tp: &TopicPartition,
        t: &TopicImage,
        config: LogConfig,
    ) -> Result<Partition, LogError> {
        // A directory left by an earlier topic of the same name is set aside
        // for deletion first (it was not hosted, so no committed record
        // retired it in this run: the topic was deleted while we were down).
        if let Some(old) = self.logs.stored_topic_id(tp) {
            if old != Some(t.topic_id) {
                info!(partition = %tp, "renaming the log of an earlier topic with the same name for deletion");
                let dir = self.logs.rename_partition_dir(tp, DELETE_SUFFIX)?;
                self.doomed_dirs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((dir, Instant::now()));
            }
        }
        let log = self.logs.open_log(tp, &t.topic_id, config)?;
        let hw = self.logs.checkpointed_high_watermark(tp);
        Partition::new(tp.clone(), t.topic_id, self.node_id, log, hw)
    }

    /// At start-up, once the image is caught up: partition directories the
    /// image does not place here (an unknown topic id, or a topic deleted
    /// while this broker was down) are renamed `-stray` and kept, as Kafka
    /// does, so a damaged or foreign metadata log can never delete data.
    pub fn set_aside_strays(&self, image: &ClusterImage) {
        for (tp, id) in self.logs.existing() {
            if !self.placed_here(image, &tp, id) {
                warn!(partition = %tp, "partition directory unknown to the metadata: renaming it -stray (kept, not deleted)");
                if let Err(e) = self.logs.rename_partition_dir(&tp, STRAY_SUFFIX) {
                    error!(partition = %tp, error = %e, "cannot set aside stray partition directory");
                }
            }
        }
    }

    /// Removes directories renamed for deletion more than `delay` ago.
    pub fn delete_doomed(&self, delay: Duration) {
        let due: Vec<PathBuf> = {
            let mut d = self.doomed_dirs.lock().unwrap_or_else(|e| e.into_inner());
            let (due, keep): (Vec<_>, Vec<_>) =
                d.drain(..).partition(|(_, at)| at.elapsed() >= delay);
            *d = keep;
            due.into_iter().map(|(p, _)| p).collect()
        };
        for dir in due {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => info!(dir = %dir.display(), "deleted the log of a removed replica"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    error!(dir = %dir.display(), error = %e, "cannot delete a removed replica's log")
                }
            }
        }
    }

    /// Periodic work: time-based roll, retention, flush.ms, checkpoints,
    /// and removal of deleted partitions' directories.
    pub fn housekeeping(&self, now_ms: i64) {
        let parts = self.all();
        let mut points = Vec::with_capacity(parts.len());
        for p in &parts {
            if p.is_retired() {
                continue;
            }
            let r = p.with_log(|log| -> Result<(i64, i64), LogError> {
                log.roll_if_aged(now_ms)?;
                log.apply_retention(now_ms)?;
                let cfg = log.config();
                if cfg.flush_ms != i64::MAX && cfg.flush_ms >= 0 {
                    log.flush()?;
                }
                Ok((log.start_offset(), log.recovery_point))
            });
            // A roll above owes the finished segment's fsync: run it
            // without the partition lock.
            let r = r.and_then(|x| p.flush_owed().map(|()| x));
            match r {
                Ok((start, rp)) => points.push((p.tp.clone(), start, rp)),
                Err(e) => error!(partition = %p.tp, error = %e, "housekeeping failed"),
            }
        }
        self.logs.checkpoint(&points);
        let delay = self
            .static_props
            .get("file.delete.delay.ms")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(DEFAULT_FILE_DELETE_DELAY_MS)
            .max(0);
        self.delete_doomed(Duration::from_millis(delay as u64));
    }

    /// Forgets, in every hosted replica, the producers idle for
    /// `expiration_ms` (`producer.id.expiration.ms`, run every
    /// `producer.id.expiration.check.interval.ms` as Kafka does).
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) {
        let mut n = 0;
        for p in self.all().iter().filter(|p| !p.is_retired()) {
            n += p.expire_producers(now_ms, expiration_ms);
        }
        if n > 0 {
            info!(producers = n, expiration_ms, "expired idle producer ids");
        }
    }

    /// Writes every hosted replica's high watermark to the log directory's
    /// `replication-offset-checkpoint` (every
    /// `replica.high.watermark.checkpoint.interval.ms` and at shutdown), where
    /// a restart takes it from. Blocking disk I/O.
    pub fn checkpoint_high_watermarks(&self) {
        let hws: Vec<(TopicPartition, i64)> = self
            .all()
            .iter()
            .filter(|p| !p.is_retired())
            .map(|p| (p.tp.clone(), p.high_watermark()))
            .collect();
        self.logs.checkpoint_high_watermarks(&hws);
    }

    /// Flushes every log, writes checkpoints and the clean-shutdown marker.
    pub fn shutdown(&self) {
        let parts = self.all();
        let mut points = Vec::new();
        let mut ok = true;
        for p in &parts {
            if let Err(e) = p.close() {
                error!(partition = %p.tp, error = %e, "flush on shutdown failed");
                ok = false;
            }
            let (s, r) = p.read_log(|l| (l.start_offset(), l.end_offset()));
            points.push((p.tp.clone(), s, r));
        }
        self.logs.checkpoint(&points);
        self.checkpoint_high_watermarks();
        if ok {
            if let Err(e) = self.logs.mark_clean_shutdown() {
                error!(error = %e, "cannot write clean shutdown marker");
            }
        }
    }

    /// The log directory.
    pub fn log_dir(&self) -> &std::path::Path {
        self.logs.dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{MetadataRecord, PartitionAssignment};

    fn create(name: &str, id: Uuid) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.to_string(),
            topic_id: id,
            partitions: vec![PartitionAssignment {
                partition: 0,
                replicas: vec![1],
            }],
            configs: BTreeMap::new(),
        }
    }

    /// Applies `records` to a copy of `base`, as committed at `offset`.
    fn next(base: &ClusterImage, offset: u64, records: &[MetadataRecord]) -> Arc<ClusterImage> {
        let mut img = base.clone();
        for r in records {
            img.apply(r);
        }
        img.last_applied = offset;
        Arc::new(img)
    }

    use uuid::Uuid;

    fn manager(dir: &std::path::Path) -> ReplicaManager {
        ReplicaManager::new(1, LogManager::open(dir).expect("log dir"), BTreeMap::new())
    }

    fn append_one(p: &Partition) {
        // A minimal valid RecordBatch v2 with one record.
        let mut batch =
            crate::protocol::batch::tests::encode(1, kafka_protocol::records::Compression::None);
        p.append(&mut batch).expect("append");
    }

    #[test]
    fn an_older_image_is_refused_and_changes_nothing_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rm = manager(dir.path());
        let (d, x) = (Uuid::new_v4(), Uuid::new_v4());
        let with_d = next(&ClusterImage::default(), 1, &[create("d", d)]);
        let with_d_x = next(&with_d, 2, &[create("x", x)]);
        let with_x = next(&with_d_x, 3, &[MetadataRecord::DeleteTopic { topic_id: d }]);
        rm.apply(&with_d);
        rm.apply(&with_d_x);
        let px = rm.get("x", 0).expect("x hosted");
        append_one(&px);
        rm.apply(&with_x);
        assert!(rm.get("d", 0).is_none(), "d retired");
        // A handler still holding the first image: lookups never re-create d
        // or drop x, and applying that image is refused.
        assert!(rm.hosted(&with_d, "d", 0).is_none());
        assert!(rm.hosted(&with_d, "x", 0).is_some());
        assert!(rm.apply(&with_d).stale);
        assert!(rm.apply(&with_d_x).stale);
        assert_eq!(rm.applied_offset(), Some(3));
        let px = rm.get("x", 0).expect("x still hosted");
        assert_eq!(px.high_watermark(), 1, "x's acked record is still there");
        assert!(dir.path().join("x-0").is_dir());
        assert!(
            !dir.path().join("d-0").exists(),
            "d's directory does not come back"
        );
    }

    #[test]
    fn a_deleted_topic_is_renamed_for_deletion_then_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rm = manager(dir.path());
        let d = Uuid::new_v4();
        let with_d = next(&ClusterImage::default(), 1, &[create("d", d)]);
        rm.apply(&with_d);
        let pd = rm.get("d", 0).expect("hosted");
        rm.apply(&next(
            &with_d,
            2,
            &[MetadataRecord::DeleteTopic { topic_id: d }],
        ));
        // A request that still holds the partition gets an error, not a write
        // into a renamed directory.
        let mut batch =
            crate::protocol::batch::tests::encode(1, kafka_protocol::records::Compression::None);
        let e = pd.append(&mut batch).expect_err("retired");
        assert_eq!(
            e.code,
            kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code()
        );
        let renamed: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("d-0."))
            .collect();
        assert_eq!(renamed.len(), 1, "{renamed:?}");
        assert!(renamed[0].ends_with("-delete"), "{renamed:?}");
        rm.delete_doomed(Duration::from_secs(3600));
        assert!(
            dir.path().join(&renamed[0]).exists(),
            "kept until the delay passes"
        );
        rm.delete_doomed(Duration::ZERO);
        assert!(!dir.path().join(&renamed[0]).exists());
    }

    fn create_on(name: &str, id: Uuid, replicas: Vec<i32>) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.to_string(),
            topic_id: id,
            partitions: vec![PartitionAssignment {
                partition: 0,
                replicas,
            }],
            configs: BTreeMap::new(),
        }
    }

    /// A replica restarted as a follower starts at its checkpointed high
    /// watermark (without the checkpoint: at the log start, 0, until the
    /// leader's first fetch answer), bounded by its log end.
    #[test]
    fn a_restarted_replica_starts_at_the_checkpointed_high_watermark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let x = Uuid::new_v4();
        {
            let rm = manager(dir.path());
            rm.apply(&next(&ClusterImage::default(), 1, &[create("x", x)]));
            let p = rm.get("x", 0).expect("hosted");
            for _ in 0..3 {
                append_one(&p);
            }
            assert_eq!(p.high_watermark(), 3, "the only ISR member");
            rm.checkpoint_high_watermarks();
            let text = std::fs::read_to_string(dir.path().join("replication-offset-checkpoint"))
                .expect("checkpoint written");
            assert_eq!(text, "0\n1\nx 0 3\n", "Kafka's format");
            rm.shutdown();
        }
        // Back as a follower of node 2, which has not answered a fetch yet.
        let follower = next(
            &ClusterImage::default(),
            1,
            &[create_on("x", x, vec![2, 1])],
        );
        let rm = manager(dir.path());
        rm.apply(&follower);
        let p = rm.get("x", 0).expect("hosted");
        assert_eq!(p.following(), Some(2));
        assert_eq!(p.high_watermark(), 3);
        drop(rm);
        // A checkpoint beyond the log (e.g. a log that lost its tail) is
        // bounded by the log end.
        std::fs::write(
            dir.path().join("replication-offset-checkpoint"),
            "0\n1\nx 0 99\n",
        )
        .expect("write checkpoint");
        let rm = manager(dir.path());
        rm.apply(&follower);
        assert_eq!(rm.get("x", 0).expect("hosted").high_watermark(), 3);
        drop(rm);
        // No checkpoint: the log start.
        std::fs::remove_file(dir.path().join("replication-offset-checkpoint")).expect("rm");
        let rm = manager(dir.path());
        rm.apply(&follower);
        assert_eq!(rm.get("x", 0).expect("hosted").high_watermark(), 0);
    }

    #[test]
    fn unknown_directories_are_set_aside_not_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let rm = manager(dir.path());
            rm.apply(&next(
                &ClusterImage::default(),
                1,
                &[create("old", Uuid::new_v4())],
            ));
            append_one(&rm.get("old", 0).expect("hosted"));
            rm.shutdown();
        }
        // The metadata no longer knows "old" (e.g. a re-formatted metadata log).
        let rm = manager(dir.path());
        rm.set_aside_strays(&ClusterImage::default());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("old-0"))
            .collect();
        assert_eq!(names.len(), 1);
        assert!(names[0].ends_with("-stray"), "{names:?}");
        assert!(dir
            .path()
            .join(&names[0])
            .join("00000000000000000000.log")
            .exists());
    }
}
