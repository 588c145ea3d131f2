//! The controller: validates admin changes against the cluster image and
//! commits them as metadata records through the quorum. Changes are
//! serialized by one lock, as KRaft's controller serializes its event queue.

pub mod channel;
pub mod elections;
mod features;
pub mod leaders;
pub mod liveness;
pub mod placement;
pub mod reassign;
pub mod reassignments;
pub mod rpc;
mod unregister;
mod voters;

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::config::defs::{broker_def, per_broker_only, topic_def, validate};
use crate::config::BrokerConfig;
use crate::error::ApiError;
use crate::metadata::{
    ClusterImage, MetadataError, MetadataQuorum, MetadataRecord, PartitionAssignment,
};

/// Kafka's `ReplicationControlManager.MAX_PARTITIONS_PER_BATCH`: the most
/// partitions one CreateTopics (or CreatePartitions) request may create.
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// Planned records are committed in proposals of about this many encoded
/// bytes, well under the quorum's per-entry limit.
const PROPOSAL_CHUNK_BYTES: usize = 1024 * 1024;

/// Kafka refuses a manual assignment whose replicas are all fenced or
/// shutting down: such a partition could have no leader.
fn check_some_usable(image: &ClusterImage, a: &[PartitionAssignment]) -> Result<(), ApiError> {
    match a
        .iter()
        .find(|x| !x.replicas.iter().any(|r| image.broker_usable(*r)))
    {
        Some(x) => Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            format!(
                "All brokers specified in the partition assignment for partition {} are fenced or in controlled shutdown.",
                x.partition
            ),
        )),
        None => Ok(()),
    }
}

fn too_many_partitions() -> ApiError {
    ApiError::new(
        ResponseError::PolicyViolation,
        "Excessively large number of partitions per request.",
    )
}

/// Broker configs Kafka can change at runtime but this broker cannot.
const RUNTIME_FIXED: &[&str] = &["listeners", "listener.security.protocol.map"];

/// A topic to create.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count, or -1 for the broker default.
    pub num_partitions: i32,
    /// Replication factor, or -1 for the broker default.
    pub replication_factor: i16,
    /// Explicit assignments (partition → replicas), if any.
    pub assignments: Vec<(i32, Vec<i32>)>,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
}

/// The metadata serving a created topic's response.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CreatedTopic {
    /// The new topic id.
    pub topic_id: Uuid,
    /// Partition count.
    pub num_partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
}

/// Validates and commits metadata changes.
pub struct Controller {
    quorum: MetadataQuorum,
    config: BrokerConfig,
    lock: Mutex<()>,
    /// Broker sessions, kept only while this node is the active controller.
    sessions: std::sync::Mutex<liveness::Sessions>,
}

pub(crate) fn quorum_error(e: MetadataError) -> ApiError {
    match e {
        MetadataError::NotController => ApiError::new(ResponseError::NotController, e.to_string()),
        MetadataError::TooLarge { .. } => {
            tracing::warn!(error = %e, "refused a metadata change too large for one log entry");
            ApiError::new(ResponseError::RecordListTooLarge, e.to_string())
        }
        other => {
            tracing::error!(error = %other, "metadata commit failed");
            ApiError::new(ResponseError::UnknownServerError, other.to_string())
        }
    }
}

/// Kafka's topic name rules (`Topic.validate`), with its messages.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let reason = if name.is_empty() {
        "the empty string is not allowed".to_string()
    } else if name == "." {
        "'.' is not allowed".to_string()
    } else if name == ".." {
        "'..' is not allowed".to_string()
    } else if name.encode_utf16().count() > 249 {
        // Java's String.length(): UTF-16 code units.
        format!("the length of '{name}' is longer than the max allowed length 249")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        format!(
            "'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"
        )
    } else {
        return Ok(());
    };
    Err(ApiError::new(
        ResponseError::InvalidTopicException,
        format!("Topic name is invalid: {reason}"),
    ))
}

/// Validates topic config overrides.
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), ApiError> {
    for (k, v) in configs {
        let Some(d) = topic_def(k) else {
            return Err(ApiError::new(
                ResponseError::InvalidConfig,
                format!("Unknown topic config name: {k}"),
            ));
        };
        validate(k, d.ty, d.validator, v)
            .map_err(|m| ApiError::new(ResponseError::InvalidConfig, m))?;
    }
    // Tiered storage is not supported: answer as a Kafka broker with
    // remote.log.storage.system.enable=false (LogConfig's
    // validateRemoteStorageOnlyIfSystemEnabled).
    if configs
        .get("remote.storage.enable")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Err(ApiError::new(
            ResponseError::InvalidConfig,
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.",
        ));
    }
    Ok(())
}

impl Controller {
    /// Creates the controller over the quorum.
    pub fn new(quorum: MetadataQuorum, config: BrokerConfig) -> Self {
        Self {
            quorum,
            config,
            lock: Mutex::new(()),
            sessions: std::sync::Mutex::new(liveness::Sessions::default()),
        }
    }

    /// The quorum.
    pub fn quorum(&self) -> &MetadataQuorum {
        &self.quorum
    }

    pub(crate) async fn commit(&self, records: Vec<MetadataRecord>) -> Result<(), ApiError> {
        self.quorum.propose(records).await.map_err(quorum_error)
    }

    /// Commits `records` in proposals of about [`PROPOSAL_CHUNK_BYTES`],
    /// stopping at the first that fails.
    pub(crate) async fn commit_chunked(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<(), ApiError> {
        for chunk in chunk_records(records.into_iter().map(|r| ((), r)).collect()) {
            self.commit(chunk.into_iter().map(|(_, r)| r).collect())
                .await?;
        }
        Ok(())
    }

    /// Commits each planned record (paired with its answer's index in
    /// `out`) in proposals of about [`PROPOSAL_CHUNK_BYTES`]; the answers of
    /// a proposal that fails get its error through `fail`.
    pub(crate) async fn commit_planned<R>(
        &self,
        planned: Vec<(usize, MetadataRecord)>,
        out: &mut [R],
        fail: impl Fn(&mut R, ApiError),
    ) {
        for chunk in chunk_records(planned) {
            let (indexes, records): (Vec<usize>, Vec<MetadataRecord>) = chunk.into_iter().unzip();
            if let Err(e) = self.commit(records).await {
                for i in indexes {
                    fail(&mut out[i], e.clone());
                }
            }
        }
    }

    /// Commits the cluster-wide records `kafka-storage format` bootstraps a
    /// new Kafka 4.x cluster with: the dynamic cluster default
    /// `min.insync.replicas=1` (so topics report it as
    /// DYNAMIC_DEFAULT_BROKER_CONFIG, as on Kafka), and on a new cluster
    /// `transaction.version` 2.
    /// `metadata_version` is the level the formatting node was given
    /// (`--release-version`); the first bootstrap to commit finalizes it.
    pub async fn bootstrap_cluster_defaults(&self, metadata_version: i16) -> Result<(), ApiError> {
        let _g = self.lock.lock().await;
        let mut records = vec![MetadataRecord::AlterBrokerConfigs {
            node_id: None,
            changes: BTreeMap::from([("min.insync.replicas".to_string(), Some("1".to_string()))]),
        }];
        if !self
            .quorum
            .image()
            .features
            .contains_key(crate::metadata::features::METADATA_VERSION)
        {
            records.push(MetadataRecord::FeatureLevel {
                name: crate::metadata::features::METADATA_VERSION.to_string(),
                level: metadata_version,
            });
            // A new cluster: transaction.version 2, as Kafka 4.x formats.
            records.push(MetadataRecord::FeatureLevel {
                name: crate::metadata::features::TRANSACTION_VERSION.to_string(),
                level: crate::metadata::features::LATEST_TRANSACTION_VERSION,
            });
        }
        self.commit(records).await
    }

    /// Reserves the next block of producer ids for `node_id` (Kafka's
    /// AllocateProducerIds): returns `(first, size)`.
    pub async fn allocate_producer_ids(&self, node_id: i32) -> Result<(i64, i64), ApiError> {
        const BLOCK: i64 = 1000;
        let _g = self.lock.lock().await;
        let first = self.quorum.image().next_producer_id;
        self.commit(vec![MetadataRecord::AllocateProducerIds {
            node_id,
            first,
            size: BLOCK,
        }])
        .await?;
        Ok((first, BLOCK))
    }

    /// Registers a broker (fenced until it catches up). A new incarnation
    /// of a broker loses its leaderships and ISR places at once: it may
    /// have lost what it had not flushed.
    pub async fn register_broker(&self, record: MetadataRecord) -> Result<(), ApiError> {
        let _g = self.lock.lock().await;
        if let MetadataRecord::RegisterBroker {
            node_id,
            incarnation_id,
            features,
            ..
        } = &record
        {
            if let Err(e) =
                crate::metadata::features::check_registration(&self.quorum.image(), features)
            {
                tracing::warn!(node_id, error = %e, "refused a broker registration");
                return Err(e);
            }
            // Kafka's ClusterControlManager: another live process already
            // holds this id (a duplicate node.id, or this broker's previous
            // process still within its session).
            if let Some(b) = self.quorum.image().brokers.get(node_id) {
                if b.incarnation_id == *incarnation_id {
                    // A retry of a registration already committed (its
                    // answer was lost): the broker keeps that epoch.
                    self.note_alive(*node_id);
                    return Ok(());
                }
                if self.has_session(*node_id) {
                    return Err(ApiError::new(
                        ResponseError::DuplicateBrokerRegistration,
                        "Another broker is registered with that broker id.",
                    ));
                }
            }
            self.note_alive(*node_id);
        }
        self.commit(vec![record]).await?;
        self.reconcile_partitions().await
    }

    fn assign(
        &self,
        image: &ClusterImage,
        first: i32,
        count: i32,
        rf: i16,
    ) -> Result<Vec<PartitionAssignment>, ApiError> {
        if rf < 1 {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ));
        }
        let start = rand::random::<u32>() as usize;
        placement::place(image, first, count, rf as usize, start).ok_or_else(|| {
            let live = placement::live_brokers(image).len();
            ApiError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {live} broker(s) are registered."
                ),
            )
        })
    }

    fn plan_topic(
        &self,
        image: &ClusterImage,
        t: &NewTopic,
    ) -> Result<(MetadataRecord, CreatedTopic), ApiError> {
        validate_topic_name(&t.name)?;
        if image.topics.contains_key(&t.name) {
            return Err(ApiError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{}' already exists.", t.name),
            ));
        }
        validate_topic_configs(&t.configs)?;
        let assignments = if !t.assignments.is_empty() {
            if t.num_partitions != -1 || t.replication_factor != -1 {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
                ));
            }
            let mut a: Vec<PartitionAssignment> = t
                .assignments
                .iter()
                .map(|(p, r)| PartitionAssignment {
                    partition: *p,
                    replicas: r.clone(),
                })
                .collect();
            a.sort_by_key(|x| x.partition);
            for (i, x) in a.iter().enumerate() {
                if x.partition != i as i32 {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        "Partitions should be consecutive, starting at 0.",
                    ));
                }
                if x.replicas.is_empty() {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        "A partition needs at least one replica.",
                    ));
                }
                let mut seen = x.replicas.clone();
                seen.sort_unstable();
                seen.dedup();
                if seen.len() != x.replicas.len() {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Duplicate brokers not allowed in replica assignment: {:?}",
                            x.replicas
                        ),
                    ));
                }
                if let Some(b) = x.replicas.iter().find(|b| !image.brokers.contains_key(b)) {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!("The manual partition assignment includes broker {b}, but no such broker is registered."),
                    ));
                }
            }
            check_some_usable(image, &a)?;
            a
        } else {
            let n = if t.num_partitions == -1 {
                self.config.get_i64("num.partitions", 1) as i32
            } else {
                t.num_partitions
            };
            if n < 1 {
                return Err(ApiError::new(
                    ResponseError::InvalidPartitions,
                    "Number of partitions was set to an invalid non-positive value.",
                ));
            }
            let rf = if t.replication_factor == -1 {
                self.config.get_i64("default.replication.factor", 1) as i16
            } else {
                t.replication_factor
            };
            self.assign(image, 0, n, rf)?
        };
        let topic_id = crate::log::new_kafka_uuid();
        let created = CreatedTopic {
            topic_id,
            num_partitions: assignments.len() as i32,
            replication_factor: assignments
                .first()
                .map(|a| a.replicas.len() as i16)
                .unwrap_or(0),
        };
        Ok((
            MetadataRecord::CreateTopic {
                name: t.name.clone(),
                topic_id,
                partitions: assignments,
                configs: t.configs.clone(),
            },
            created,
        ))
    }

    /// Creates topics. Each result is independent, as in Kafka, but the
    /// records are committed together (in as few proposals as fit), so a
    /// request for many topics costs a few metadata commits, not one each.
    /// A request for more than [`MAX_PARTITIONS_PER_REQUEST`] partitions in
    /// all is refused whole with POLICY_VIOLATION, as Kafka refuses it.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<CreatedTopic, ApiError>> {
        let default_partitions = self.config.get_i64("num.partitions", 1);
        let total: i64 = topics
            .iter()
            .map(|t| {
                if !t.assignments.is_empty() {
                    t.assignments.len() as i64
                } else if t.num_partitions == -1 {
                    default_partitions
                } else {
                    i64::from(t.num_partitions.max(0))
                }
            })
            .sum();
        if total > MAX_PARTITIONS_PER_REQUEST {
            return topics.iter().map(|_| Err(too_many_partitions())).collect();
        }
        let _g = self.lock.lock().await;
        let image = self.quorum.image();
        let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for t in &topics {
            *counts.entry(t.name.as_str()).or_default() += 1;
        }
        let mut out: Vec<Result<CreatedTopic, ApiError>> = Vec::with_capacity(topics.len());
        // (index in `out`, record) of every topic planned for commit.
        let mut planned: Vec<(usize, MetadataRecord)> = Vec::new();
        for t in &topics {
            if counts.get(t.name.as_str()).copied().unwrap_or(0) > 1 {
                out.push(Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!(
                        "Create topics request from client contains multiple entries for topic {}",
                        t.name
                    ),
                )));
                continue;
            }
            match self.plan_topic(&image, t) {
                Err(e) => out.push(Err(e)),
                Ok((record, created)) => {
                    if !validate_only {
                        planned.push((out.len(), record));
                    }
                    out.push(Ok(created));
                }
            }
        }
        self.commit_planned(planned, &mut out, |r, e| *r = Err(e))
            .await;
        out
    }

    /// Deletes a topic by id.
    pub async fn delete_topic(&self, topic_id: Uuid) -> Result<(), ApiError> {
        let _g = self.lock.lock().await;
        if self.quorum.image().topic_by_id(&topic_id).is_none() {
            return Err(ApiError::code(ResponseError::UnknownTopicOrPartition));
        }
        self.commit(vec![MetadataRecord::DeleteTopic { topic_id }])
            .await
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _g = self.lock.lock().await;
        let image = self.quorum.image();
        let Some(t) = image.topics.get(name) else {
            // Kafka sends no message here.
            return Err(ApiError::code(ResponseError::UnknownTopicOrPartition));
        };
        let current = t.partitions.len() as i32;
        if i64::from(count) - i64::from(current) > MAX_PARTITIONS_PER_REQUEST {
            return Err(too_many_partitions());
        }
        if count < current {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("The topic {name} currently has {current} partition(s); {count} would not be an increase."),
            ));
        }
        if count == current {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("Topic already has {current} partition(s)."),
            ));
        }
        let rf = t
            .partitions
            .first()
            .map(|p| p.replicas.len() as i16)
            .unwrap_or(1);
        let new = match assignments {
            Some(a) => {
                if a.len() as i32 != count - current {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!("Attempted to add {} additional partition(s), but only {} assignment(s) were specified.", count - current, a.len()),
                    ));
                }
                for r in &a {
                    if let Some(b) = r.iter().find(|b| !image.brokers.contains_key(b)) {
                        return Err(ApiError::new(
                            ResponseError::InvalidReplicaAssignment,
                            format!("The manual partition assignment includes broker {b}, but no such broker is registered."),
                        ));
                    }
                }
                let a: Vec<PartitionAssignment> = a
                    .into_iter()
                    .enumerate()
                    .map(|(i, replicas)| PartitionAssignment {
                        partition: current + i as i32,
                        replicas,
                    })
                    .collect();
                check_some_usable(&image, &a)?;
                a
            }
            None => self.assign(&image, current, count - current, rf)?,
        };
        if validate_only {
            return Ok(());
        }
        self.commit(vec![MetadataRecord::CreatePartitions {
            topic_id: t.topic_id,
            partitions: new,
        }])
        .await
    }

    /// Changes topic config overrides (`None` removes). With `replace`, every
    /// other override is removed (legacy AlterConfigs).
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: BTreeMap<String, Option<String>>,
        replace: bool,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _g = self.lock.lock().await;
        let image = self.quorum.image();
        let Some(t) = image.topics.get(name) else {
            return Err(ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("The topic '{name}' does not exist."),
            ));
        };
        let mut all = changes;
        if replace {
            for k in t.configs.keys() {
                all.entry(k.clone()).or_insert(None);
            }
        }
        let set: BTreeMap<String, String> = all
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        validate_topic_configs(&set)?;
        if let Some(k) = all.keys().find(|k| topic_def(k).is_none()) {
            return Err(ApiError::new(
                ResponseError::InvalidConfig,
                format!("Unknown topic config name: {k}"),
            ));
        }
        if validate_only || all.is_empty() {
            return Ok(());
        }
        self.commit(vec![MetadataRecord::AlterTopicConfigs {
            topic_id: t.topic_id,
            changes: all,
        }])
        .await
    }

    /// Changes a group's config overrides (`None` removes; with `replace`,
    /// every other override is removed). The resulting set is validated as
    /// Kafka's `GroupConfig.validate` does, against this broker's bounds.
    pub async fn alter_group_configs(
        &self,
        group: &str,
        changes: BTreeMap<String, Option<String>>,
        replace: bool,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        if group.is_empty() {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "Default group resources are not allowed.",
            ));
        }
        let _g = self.lock.lock().await;
        let image = self.quorum.image();
        let current = image.group_configs.get(group);
        let mut all = changes;
        if replace {
            for k in current.into_iter().flat_map(|m| m.keys()) {
                all.entry(k.clone()).or_insert(None);
            }
        }
        let mut after = current.cloned().unwrap_or_default();
        for (k, v) in &all {
            match v {
                Some(v) => after.insert(k.clone(), v.clone()),
                None => after.remove(k),
            };
        }
        crate::group::group_configs::validate(&after, &self.config)
            .map_err(|m| ApiError::new(ResponseError::InvalidConfig, m))?;
        if validate_only || all.is_empty() {
            return Ok(());
        }
        self.commit(vec![MetadataRecord::AlterGroupConfigs {
            group: group.to_string(),
            changes: all,
        }])
        .await
    }

    /// Changes dynamic broker config (`node_id` `None`: the cluster default).
    pub async fn alter_broker_configs(
        &self,
        node_id: Option<i32>,
        changes: BTreeMap<String, Option<String>>,
        replace: bool,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _g = self.lock.lock().await;
        let image = self.quorum.image();
        let mut all = changes;
        if replace {
            let current = match node_id {
                None => Some(&image.cluster_configs),
                Some(id) => image.broker_configs.get(&id),
            };
            for k in current.into_iter().flat_map(|m| m.keys()) {
                all.entry(k.clone()).or_insert(None);
            }
        }
        for (k, v) in &all {
            let Some(d) = broker_def(k) else {
                return Err(ApiError::new(
                    ResponseError::InvalidConfig,
                    format!("Unknown broker config name: {k}"),
                ));
            };
            if !d.dynamic {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Cannot update these configs dynamically: Set({k})"),
                ));
            }
            if node_id.is_none() && per_broker_only(k) {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Cannot update these configs at default cluster level, broker id must be specified: Set({k})"),
                ));
            }
            if RUNTIME_FIXED.contains(&k.as_str()) {
                // Dynamic in Kafka (and described so), but this broker binds
                // its listeners once, at start-up.
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Cannot update these configs dynamically: Set({k}) (runnel-broker does not reconfigure listeners at runtime; change server.properties and restart)"),
                ));
            }
            if let Some(v) = v {
                // Kafka answers broker config errors with INVALID_REQUEST.
                validate(k, d.ty, d.validator, v)
                    .map_err(|m| ApiError::new(ResponseError::InvalidRequest, m))?;
            }
        }
        if validate_only || all.is_empty() {
            return Ok(());
        }
        self.commit(vec![MetadataRecord::AlterBrokerConfigs {
            node_id,
            changes: all,
        }])
        .await
    }
}

/// Splits planned records into proposals of about [`PROPOSAL_CHUNK_BYTES`]
/// each (a single record larger than that is a proposal of its own, which
/// the quorum refuses if it exceeds its per-entry limit).
fn chunk_records<T>(planned: Vec<(T, MetadataRecord)>) -> Vec<Vec<(T, MetadataRecord)>> {
    let mut chunks = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0usize;
    for (k, r) in planned {
        let size = serde_json::to_vec(&r)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if !cur.is_empty() && bytes.saturating_add(size) > PROPOSAL_CHUNK_BYTES {
            chunks.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
        cur.push((k, r));
    }
    if !cur.is_empty() {
        chunks.push(cur);
    }
    chunks
}
