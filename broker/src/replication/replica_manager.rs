//! The partitions this broker hosts, kept in step with the cluster image.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use tracing::{error, info};

use super::partition::Partition;
use crate::config::{LogConfig, TopicConfigResolver};
use crate::log::{LogError, LogManager, TopicPartition};
use crate::metadata::{ClusterImage, TopicImage};

/// Hosts partition replicas.
pub struct ReplicaManager {
    node_id: i32,
    logs: LogManager,
    static_props: BTreeMap<String, String>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
}

impl ReplicaManager {
    /// Creates the manager over an opened log directory.
    pub fn new(node_id: i32, logs: LogManager, static_props: BTreeMap<String, String>) -> Self {
        Self {
            node_id,
            logs,
            static_props,
            partitions: RwLock::new(HashMap::new()),
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

    /// A hosted partition, created on demand when the image assigns it here.
    pub fn get(&self, image: &ClusterImage, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let tp = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        if let Some(p) = self.read().get(&tp) {
            let matches = image
                .topics
                .get(topic)
                .is_some_and(|t| t.topic_id == p.topic_id);
            if matches {
                return Some(p.clone());
            }
        }
        self.sync(image);
        self.read().get(&tp).cloned()
    }

    /// Every hosted partition.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.read().values().cloned().collect()
    }

    /// Opens partitions the image assigns here and drops those it no longer
    /// has, and applies config and leader-epoch changes.
    pub fn sync(&self, image: &ClusterImage) {
        let mut parts = self.write();
        // Removed (or recreated) topics.
        let doomed: Vec<TopicPartition> = parts
            .iter()
            .filter(|(tp, p)| {
                image.topics.get(&tp.topic).is_none_or(|t| {
                    t.topic_id != p.topic_id || tp.partition as usize >= t.partitions.len()
                })
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in doomed {
            if let Some(p) = parts.remove(&tp) {
                info!(partition = %tp, "deleting partition no longer in metadata");
                drop(p);
                let dir = self.logs.partition_dir(&tp);
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        error!(dir = %dir.display(), error = %e, "cannot delete partition directory");
                    }
                }
            }
        }
        for t in image.topics.values() {
            let config = self.log_config(image, t);
            for (i, pi) in t.partitions.iter().enumerate() {
                if !pi.replicas.contains(&self.node_id) {
                    continue;
                }
                let tp = TopicPartition {
                    topic: t.name.clone(),
                    partition: i as i32,
                };
                if let Some(p) = parts.get(&tp) {
                    p.set_config(config.clone());
                    p.set_leader_epoch(pi.leader_epoch);
                    continue;
                }
                match self.open(&tp, t, config.clone(), pi.leader_epoch) {
                    Ok(p) => {
                        parts.insert(tp, Arc::new(p));
                    }
                    Err(e) => error!(partition = %tp, error = %e, "cannot open partition log"),
                }
            }
        }
    }

    fn open(
        &self,
        tp: &TopicPartition,
        t: &TopicImage,
        config: LogConfig,
        epoch: i32,
    ) -> Result<Partition, LogError> {
        // A directory left by an earlier topic of the same name goes first.
        if let Some((_, Some(old))) = self.logs.existing().into_iter().find(|(x, _)| x == tp) {
            if old != t.topic_id {
                info!(partition = %tp, "removing log of a deleted topic with the same name");
                std::fs::remove_dir_all(self.logs.partition_dir(tp))?;
            }
        }
        let log = self.logs.open_log(tp, &t.topic_id, config)?;
        Partition::new(tp.clone(), t.topic_id, log, epoch)
    }

    /// Deletes directories of partitions the image does not know (topics
    /// deleted while this broker was down).
    pub fn remove_stray(&self, image: &ClusterImage) {
        for (tp, id) in self.logs.existing() {
            let known = image.topics.get(&tp.topic).is_some_and(|t| {
                Some(t.topic_id) == id && (tp.partition as usize) < t.partitions.len()
            });
            if !known {
                info!(partition = %tp, "deleting stray partition directory");
                if let Err(e) = std::fs::remove_dir_all(self.logs.partition_dir(&tp)) {
                    error!(partition = %tp, error = %e, "cannot delete stray partition directory");
                }
            }
        }
    }

    /// Periodic work: time-based roll, retention, flush.ms, checkpoints.
    pub fn housekeeping(&self, now_ms: i64) {
        let parts = self.all();
        let mut points = Vec::with_capacity(parts.len());
        for p in &parts {
            let r = p.with_log(|log| -> Result<(i64, i64), LogError> {
                log.roll_if_aged(now_ms)?;
                log.apply_retention(now_ms)?;
                let cfg = log.config();
                if cfg.flush_ms != i64::MAX && cfg.flush_ms >= 0 {
                    log.flush()?;
                }
                Ok((log.start_offset(), log.recovery_point))
            });
            match r {
                Ok((start, rp)) => points.push((p.tp.clone(), start, rp)),
                Err(e) => error!(partition = %p.tp, error = %e, "housekeeping failed"),
            }
        }
        self.logs.checkpoint(&points);
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
            let (s, r) = p.with_log(|l| (l.start_offset(), l.end_offset()));
            points.push((p.tp.clone(), s, r));
        }
        self.logs.checkpoint(&points);
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
