//! The group coordinator: owns every group whose `__consumer_offsets`
//! partition this broker leads, persists offsets and group metadata there in
//! Kafka's record formats, and loads and unloads a partition's groups as its
//! leadership moves (the metadata publisher calls [`GroupCoordinator::on_metadata`]).

use crate::clock::now_ms;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::sync::{Mutex, MutexGuard};
use tracing::{error, info, warn};

use super::classic::{ClassicGroup, GroupState};
use super::consumer::{ConsumerGroup, ConsumerGroupConfig};
use super::consumer_records;
use super::partitions::{CoordinatorPartitions, PartitionState, Transition};
use super::records::{self, OffsetValue, RecordKey};
use super::txn_offsets::PendingTxnOffsets;
use crate::broker::BrokerState;
use crate::controller::NewTopic;
use crate::error::ApiError;
use crate::metadata::ClusterImage;
use crate::replication::Partition;

/// The internal topic holding offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Group settings, from Kafka's broker config keys.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_ms: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_delay: Duration,
    /// `group.max.size`.
    pub max_size: usize,
    /// `offsets.topic.num.partitions`.
    pub partitions: i32,
    /// `offsets.topic.replication.factor`.
    pub replication_factor: i16,
    /// `offsets.topic.segment.bytes`.
    pub segment_bytes: i64,
    /// `offset.metadata.max.bytes`.
    pub max_metadata_bytes: usize,
    /// `offsets.retention.minutes`, in ms.
    pub retention_ms: i64,
    /// `offsets.commit.timeout.ms`: how long a group write waits for the
    /// in-sync replicas (Kafka's coordinator write timeout).
    pub commit_timeout: Duration,
    /// KIP-848 settings (`group.consumer.*`).
    pub consumer: ConsumerGroupConfig,
}

impl GroupConfig {
    /// Reads the settings from the broker config.
    pub fn from_broker(c: &crate::config::BrokerConfig) -> Self {
        Self {
            min_session_ms: c.get_i64("group.min.session.timeout.ms", 6000) as i32,
            max_session_ms: c.get_i64("group.max.session.timeout.ms", 1_800_000) as i32,
            initial_delay: Duration::from_millis(
                c.get_i64("group.initial.rebalance.delay.ms", 3000).max(0) as u64,
            ),
            max_size: c.get_i64("group.max.size", i64::from(i32::MAX)).max(1) as usize,
            partitions: c
                .get_i64("offsets.topic.num.partitions", 50)
                .clamp(1, 10_000) as i32,
            replication_factor: c
                .get_i64("offsets.topic.replication.factor", 3)
                .clamp(1, 100) as i16,
            segment_bytes: c.get_i64("offsets.topic.segment.bytes", 104_857_600),
            max_metadata_bytes: c.get_i64("offset.metadata.max.bytes", 4096).max(0) as usize,
            retention_ms: c
                .get_i64("offsets.retention.minutes", 10080)
                .saturating_mul(60_000),
            commit_timeout: Duration::from_millis(
                c.get_i64("offsets.commit.timeout.ms", 5000)
                    .clamp(1, 3_600_000) as u64,
            ),
            consumer: ConsumerGroupConfig {
                session_timeout_ms: c.get_i64("group.consumer.session.timeout.ms", 45_000) as i32,
                heartbeat_interval_ms: c.get_i64("group.consumer.heartbeat.interval.ms", 5_000)
                    as i32,
                max_size: c
                    .get_i64("group.consumer.max.size", i64::from(i32::MAX))
                    .max(1) as usize,
                default_assignor: c
                    .get("group.consumer.assignors")
                    .and_then(|a| a.split(',').next())
                    .map(|a| a.trim().to_ascii_lowercase())
                    .map(|a| {
                        if a.contains("range") {
                            "range".to_string()
                        } else {
                            "uniform".to_string()
                        }
                    })
                    .unwrap_or_else(|| "uniform".to_string()),
            },
        }
    }
}

fn record_error(e: records::RecordError) -> i16 {
    warn!(error = %e, "cannot encode a group record");
    ResponseError::InvalidRequest.code()
}

/// A key and value (None: tombstone) to write to `__consumer_offsets`.
pub type GroupRecord = (Bytes, Option<Bytes>);

/// Committed offsets of one group, by (topic, partition).
pub type Offsets = BTreeMap<(String, i32), OffsetValue>;

/// Every group this coordinator owns: classic groups, KIP-848 consumer
/// groups (a group id is one or the other), and committed offsets.
#[derive(Default)]
pub struct Groups {
    /// Classic-protocol groups (and offset-only "simple" groups).
    pub classic: HashMap<String, ClassicGroup>,
    /// KIP-848 consumer groups.
    pub consumer: HashMap<String, ConsumerGroup>,
    /// Committed offsets by group.
    pub offsets: HashMap<String, Offsets>,
    /// What `__consumer_offsets` holds for each consumer group: live record
    /// keys and values, and the member ids with records.
    pub persisted: HashMap<String, PersistedConsumerGroup>,
    /// Transactional offsets waiting for their transaction's marker, by
    /// `__consumer_offsets` partition (TxnOffsetCommit, KIP-98/447).
    pub txn: BTreeMap<i32, PendingTxnOffsets<OffsetValue>>,
}

/// A consumer group's live records in `__consumer_offsets`.
#[derive(Debug, Default, Clone)]
pub struct PersistedConsumerGroup {
    records: BTreeMap<Bytes, Bytes>,
    members: BTreeSet<String>,
}

impl PersistedConsumerGroup {
    /// A group's live records and the members that have records.
    pub fn new(records: BTreeMap<Bytes, Bytes>, members: BTreeSet<String>) -> Self {
        Self { records, members }
    }
}

impl Groups {
    /// Whether a group of either type exists.
    pub fn exists(&self, id: &str) -> bool {
        self.classic.contains_key(id) || self.consumer.contains_key(id)
    }

    /// Whether a group has no members (an unknown group counts as empty).
    pub fn is_empty_group(&self, id: &str) -> bool {
        if let Some(g) = self.classic.get(id) {
            return matches!(g.state, GroupState::Empty | GroupState::Dead);
        }
        self.consumer.get(id).is_none_or(ConsumerGroup::is_empty)
    }

    /// Forgets a group entirely.
    pub fn remove(&mut self, id: &str) {
        self.classic.remove(id);
        self.consumer.remove(id);
        self.offsets.remove(id);
        self.persisted.remove(id);
    }

    /// Forgets every group for which `of(id)` is true (their timers and
    /// members go with them); returns how many groups went.
    pub fn remove_where(&mut self, of: impl Fn(&str) -> bool) -> usize {
        let before = self.classic.len() + self.consumer.len();
        self.classic.retain(|id, _| !of(id));
        self.consumer.retain(|id, _| !of(id));
        self.offsets.retain(|id, _| !of(id));
        self.persisted.retain(|id, _| !of(id));
        before - (self.classic.len() + self.consumer.len())
    }

    /// Adds the groups of a freshly loaded partition.
    pub fn extend(&mut self, other: Groups) {
        self.classic.extend(other.classic);
        self.consumer.extend(other.consumer);
        self.offsets.extend(other.offsets);
        self.persisted.extend(other.persisted);
        self.txn.extend(other.txn);
    }

    /// The pending transactional offsets of `__consumer_offsets` partition
    /// `p`.
    pub fn txn_of(&mut self, p: i32) -> &mut PendingTxnOffsets<OffsetValue> {
        self.txn.entry(p).or_default()
    }

    /// Whether a transaction holds an offset of `group` for (topic,
    /// partition) on offsets partition `p`.
    pub fn has_pending_txn(&self, p: i32, group: &str, topic: &str, partition: i32) -> bool {
        self.txn
            .get(&p)
            .is_some_and(|t| t.has_pending(&(group.to_string(), topic.to_string(), partition)))
    }
}

/// Where group records go: a group's `__consumer_offsets` partition. The
/// broker appends to its hosted partition; unit tests use a fake.
pub trait GroupStore: Sync {
    /// Appends `recs` of `group` to `__consumer_offsets` partition
    /// `partition`. The error is the code the group request answers.
    fn append(&self, partition: i32, group: &str, recs: Vec<GroupRecord>) -> Result<(), i16>;
}

impl<T: GroupStore + Send> GroupStore for std::sync::Arc<T> {
    fn append(&self, partition: i32, group: &str, recs: Vec<GroupRecord>) -> Result<(), i16> {
        (**self).append(partition, group, recs)
    }
}

impl GroupStore for BrokerState {
    fn append(&self, p: i32, group: &str, recs: Vec<GroupRecord>) -> Result<(), i16> {
        self.append_group_records(p, group, recs).map(|_| ())
    }
}

/// Where a group write landed: the replica, the leader epoch it was
/// appended in and the offset just past it.
pub(super) struct Appended {
    pub(super) part: Arc<Partition>,
    pub(super) epoch: i32,
    pub(super) end: i64,
}

impl BrokerState {
    /// Appends group records to `__consumer_offsets` partition `p`, only
    /// while the coordinator holds that partition active in the leader epoch
    /// the replica leads (so a write never lands in a leadership whose state
    /// this coordinator did not load). Does not wait for replication.
    fn append_group_records(
        &self,
        p: i32,
        group: &str,
        recs: Vec<GroupRecord>,
    ) -> Result<Appended, i16> {
        self.append_group_batch(p, group, recs, None)
    }

    /// [`Self::append_group_records`], as one transactional batch of
    /// producer (id, epoch) when `txn` is given (TxnOffsetCommit: Kafka's
    /// coordinator writes it with the producer's id and epoch, origin
    /// COORDINATOR). A producer epoch older than the partition knows is
    /// INVALID_PRODUCER_EPOCH.
    pub(super) fn append_group_batch(
        &self,
        p: i32,
        group: &str,
        recs: Vec<GroupRecord>,
        txn: Option<(i64, i16)>,
    ) -> Result<Appended, i16> {
        let epoch = self.groups.active_epoch(p)?;
        let Some(part) = self.replicas.get(OFFSETS_TOPIC, p) else {
            return Err(ResponseError::NotCoordinator.code());
        };
        if let Some((pid, pepoch)) = txn {
            if part.producer_epoch(pid).is_some_and(|e| e > pepoch) {
                return Err(ResponseError::InvalidProducerEpoch.code());
            }
        }
        let (producer_id, producer_epoch) = txn.unwrap_or((-1, -1));
        let ts = now_ms();
        let records: Vec<Record> = recs
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: txn.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: ts,
                key: Some(key),
                value,
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        if let Err(e) = RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        ) {
            error!(error = %e, "cannot encode group records");
            return Err(ResponseError::UnknownServerError.code());
        }
        let mut bytes = buf.to_vec();
        let appended = if txn.is_some() {
            part.append_coordinator_in_epoch(&mut bytes, epoch)
        } else {
            part.append_in_epoch(&mut bytes, epoch)
        };
        match appended {
            Ok(info) => Ok(Appended {
                part,
                epoch,
                end: info.last_offset + 1,
            }),
            Err(e) => {
                error!(group, error = %e, "cannot persist group records");
                Err(write_error(e.code))
            }
        }
    }
}

/// Kafka's mapping of a failed coordinator write (append or replication
/// wait) to the error a group request answers
/// (`CoordinatorOperationExceptionHelper.handleOperationException`).
pub(super) fn write_error(code: i16) -> i16 {
    match ResponseError::try_from_code(code) {
        Some(
            ResponseError::MessageTooLarge
            | ResponseError::RecordListTooLarge
            | ResponseError::InvalidFetchSize,
        ) => ResponseError::UnknownServerError.code(),
        Some(ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError) => {
            ResponseError::NotCoordinator.code()
        }
        Some(
            ResponseError::UnknownTopicOrPartition
            | ResponseError::NotEnoughReplicas
            | ResponseError::RequestTimedOut,
        ) => ResponseError::CoordinatorNotAvailable.code(),
        Some(ResponseError::NotCoordinator | ResponseError::CoordinatorLoadInProgress) => code,
        _ => ResponseError::CoordinatorNotAvailable.code(),
    }
}

/// One request's group writes: a [`GroupStore`] that remembers where its
/// appends landed so that the response can wait for their replication
/// ([`GroupWrite::replicated`]) after the group table lock is released, as
/// Kafka's coordinator completes a write only once the high watermark
/// covers it.
pub struct GroupWrite<'a> {
    pub(super) state: &'a BrokerState,
    group: String,
    pub(super) appended: std::sync::Mutex<Vec<Appended>>,
}

impl GroupStore for GroupWrite<'_> {
    fn append(&self, p: i32, group: &str, recs: Vec<GroupRecord>) -> Result<(), i16> {
        let a = self.state.append_group_records(p, group, recs)?;
        self.appended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(a);
        Ok(())
    }
}

impl GroupWrite<'_> {
    /// Waits until what this request wrote, and everything written to its
    /// group's partition before (Kafka's "last written offset", which a
    /// write with no records of its own also waits for), is replicated to
    /// the in-sync replicas: the high watermark covers it while this broker
    /// still leads in the epoch it was written in. Call without holding the
    /// group table lock. The error is what the group request answers
    /// (timeout: COORDINATOR_NOT_AVAILABLE; leadership lost: NOT_COORDINATOR).
    pub async fn replicated(&self) -> Result<(), i16> {
        let appended: Vec<Appended> =
            std::mem::take(&mut *self.appended.lock().unwrap_or_else(|e| e.into_inner()));
        let groups = &self.state.groups;
        let mut waits: Vec<(Arc<Partition>, i32, i64)> = appended
            .into_iter()
            .map(|a| (a.part, a.epoch, a.end))
            .collect();
        if waits.is_empty() {
            let p = groups.partition_for(&self.group);
            let epoch = groups.active_epoch(p)?;
            let Some(part) = self.state.replicas.get(OFFSETS_TOPIC, p) else {
                return Err(ResponseError::NotCoordinator.code());
            };
            let end = part.read_log(|l| l.end_offset());
            waits.push((part, epoch, end));
        }
        for (part, epoch, end) in waits {
            if let Err(e) = part
                .wait_replicated(end, epoch, 0, groups.config.commit_timeout)
                .await
            {
                warn!(group = %self.group, partition = %part.tp, error = %e, "group write not replicated");
                return Err(write_error(e.code));
            }
        }
        Ok(())
    }
}

/// The group coordinator.
pub struct GroupCoordinator {
    /// Settings.
    pub config: GroupConfig,
    /// The groups of every active (and, briefly, loading) partition. Only
    /// [`GroupCoordinator::finish_load`] makes a partition active, and it
    /// does so under this lock, together with installing its groups.
    groups: Mutex<Groups>,
    /// Which `__consumer_offsets` partitions this broker coordinates, with
    /// the leader epoch each state belongs to. Changed synchronously by the
    /// metadata publisher (never held across an await).
    partitions: std::sync::Mutex<CoordinatorPartitions>,
}

impl GroupCoordinator {
    /// A coordinator that leads no partition until metadata says so.
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: Mutex::new(Groups::default()),
            partitions: std::sync::Mutex::new(CoordinatorPartitions::default()),
        }
    }

    fn partitions(&self) -> std::sync::MutexGuard<'_, CoordinatorPartitions> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether some partition's groups are still being loaded.
    pub fn is_loading(&self) -> bool {
        self.partitions().any_loading()
    }

    /// The leader epoch of an active partition, else the error its groups
    /// answer (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS).
    pub fn active_epoch(&self, partition: i32) -> Result<i32, i16> {
        self.partitions().active_epoch(partition)
    }

    fn is_active(&self, group: &str) -> bool {
        self.active_epoch(self.partition_for(group)).is_ok()
    }

    /// A [`GroupStore`] for one request's writes on `group`; call
    /// [`GroupWrite::replicated`] before answering.
    pub fn writer<'a>(&self, state: &'a BrokerState, group: &str) -> GroupWrite<'a> {
        GroupWrite {
            state,
            group: group.to_string(),
            appended: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Follows `__consumer_offsets` leadership in a committed image (Kafka's
    /// `onElection`/`onResignation`): starts loading each partition this
    /// broker now leads in a new leader epoch and unloads each it no longer
    /// leads (or leads in another epoch). Called by the metadata publisher
    /// after the image is applied to the replicas and before handlers see
    /// it; returns at once (loads and unloads run as tasks).
    pub fn on_metadata(state: &Arc<BrokerState>, image: &ClusterImage) {
        let leaders: Vec<(i32, i32, i32)> = image
            .topics
            .get(OFFSETS_TOPIC)
            .map(|t| {
                t.partitions
                    .iter()
                    .enumerate()
                    .map(|(i, pi)| (i as i32, pi.leader, pi.leader_epoch))
                    .collect()
            })
            .unwrap_or_default();
        let transitions = state.groups.partitions().apply(state.node_id, leaders);
        for t in transitions {
            let st = state.clone();
            match t {
                Transition::Unload { partition } => {
                    tokio::spawn(async move { st.groups.unload(partition).await });
                }
                Transition::Load { partition, epoch } => {
                    let image = image.group_configs.clone();
                    tokio::spawn(async move {
                        load_partition(st, partition, epoch, image).await;
                    });
                }
            }
        }
    }

    /// Drops the groups of a partition this broker stopped leading, unless
    /// it has been loaded again since.
    async fn unload(&self, partition: i32) {
        let mut groups = self.groups.lock().await;
        if matches!(
            self.partitions().state(partition),
            Some(PartitionState::Active { .. })
        ) {
            return;
        }
        let n = self.config.partitions;
        let count = groups.remove_where(|id| records::partition_for(id, n) == partition);
        groups.txn.remove(&partition);
        info!(
            partition,
            groups = count,
            "unloaded {OFFSETS_TOPIC} partition"
        );
    }

    /// Installs a loaded partition's groups and makes it active, unless the
    /// load is stale (the partition moved on meanwhile): then it is dropped.
    async fn finish_load(&self, partition: i32, epoch: i32, loaded: Groups) -> bool {
        let mut groups = self.groups.lock().await;
        if !self.partitions().loaded(partition, epoch) {
            return false;
        }
        let n = self.config.partitions;
        groups.remove_where(|id| records::partition_for(id, n) == partition);
        groups.txn.remove(&partition);
        groups.extend(loaded);
        true
    }

    /// Marks every partition active (unit tests without metadata).
    #[cfg(test)]
    pub fn activate_all_for_tests(&self) {
        let mut p = self.partitions();
        let all: Vec<(i32, i32, i32)> = (0..self.config.partitions).map(|i| (i, 0, 0)).collect();
        p.apply(0, all);
        for i in 0..self.config.partitions {
            p.loaded(i, 0);
        }
    }

    /// The `__consumer_offsets` partition of a group.
    pub fn partition_for(&self, group: &str) -> i32 {
        records::partition_for(group, self.config.partitions)
    }

    /// Locks the group table.
    pub async fn lock(&self) -> MutexGuard<'_, Groups> {
        self.groups.lock().await
    }

    /// Creates `__consumer_offsets` if it does not exist yet.
    pub async fn ensure_offsets_topic(&self, state: &BrokerState) -> Result<(), ApiError> {
        if state.image().topics.contains_key(OFFSETS_TOPIC) {
            return Ok(());
        }
        let configs: BTreeMap<String, String> = [
            ("cleanup.policy", "compact".to_string()),
            ("compression.type", "producer".to_string()),
            ("segment.bytes", self.config.segment_bytes.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let topic = NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: self.config.partitions,
            // Never capped at the brokers registered: with fewer live
            // brokers the controller refuses (INVALID_REPLICATION_FACTOR),
            // FindCoordinator answers COORDINATOR_NOT_AVAILABLE and a later
            // one tries again, as Kafka does.
            replication_factor: self.config.replication_factor,
            assignments: vec![],
            configs,
        };
        create_internal_topic(state, topic).await
    }

    /// Checks that this broker coordinates `group` and has loaded its state.
    pub fn check_coordinator(&self, state: &BrokerState, group: &str) -> Result<(), i16> {
        if group.is_empty() {
            return Err(ResponseError::InvalidGroupId.code());
        }
        let p = self.partition_for(group);
        let code = match self.active_epoch(p) {
            Ok(_) => return Ok(()),
            Err(code) => code,
        };
        if code != ResponseError::NotCoordinator.code() {
            return Err(code);
        }
        let image = state.image();
        let Some(t) = image.topics.get(OFFSETS_TOPIC) else {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        };
        match t.partitions.get(p as usize) {
            // Led here by an image the publisher has not handed over yet.
            Some(pi) if pi.leader == state.node_id => {
                Err(ResponseError::CoordinatorLoadInProgress.code())
            }
            Some(_) => Err(ResponseError::NotCoordinator.code()),
            None => Err(ResponseError::CoordinatorNotAvailable.code()),
        }
    }

    /// The error for a member whose pending join or sync lost its group
    /// before an answer (the group was unloaded: this broker stopped leading
    /// its partition): the coordinator error, else UNKNOWN_MEMBER_ID.
    pub fn group_gone_error(&self, state: &BrokerState, group: &str) -> i16 {
        self.check_coordinator(state, group)
            .err()
            .unwrap_or(ResponseError::UnknownMemberId.code())
    }

    /// Appends records to the group's `__consumer_offsets` partition. The
    /// error is the code Kafka answers group requests with when its append
    /// of group records fails.
    pub fn persist(
        &self,
        store: &dyn GroupStore,
        group: &str,
        recs: Vec<GroupRecord>,
    ) -> Result<(), i16> {
        if recs.is_empty() {
            return Ok(());
        }
        store.append(self.partition_for(group), group, recs)
    }

    /// Writes what changed in a consumer group since its records were last
    /// written (Kafka's records, compacted by key), and tombstones for members
    /// that left. On failure nothing is recorded as persisted.
    pub fn persist_consumer(
        &self,
        store: &dyn GroupStore,
        groups: &mut Groups,
        id: &str,
    ) -> Result<(), i16> {
        let Some(g) = groups.consumer.get(id) else {
            return Ok(());
        };
        let recs = consumer_records::consumer_group_records(g).map_err(record_error)?;
        let members: BTreeSet<String> = g.members().map(|m| m.member_id.clone()).collect();
        let old = groups.persisted.get(id).cloned().unwrap_or_default();
        let mut writes: Vec<GroupRecord> = Vec::new();
        for gone in old.members.difference(&members) {
            writes.extend(consumer_records::member_tombstones(id, gone).map_err(record_error)?);
        }
        let mut live = old.records.clone();
        for (k, v) in &writes {
            if v.is_none() {
                live.remove(k);
            }
        }
        for (k, v) in recs {
            match v {
                Some(v) if live.get(&k) != Some(&v) => {
                    live.insert(k.clone(), v.clone());
                    writes.push((k, Some(v)));
                }
                _ => {}
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        self.persist(store, id, writes)?;
        groups.persisted.insert(
            id.to_string(),
            PersistedConsumerGroup {
                records: live,
                members,
            },
        );
        Ok(())
    }

    /// Tombstones for every record of a consumer group.
    pub fn consumer_group_tombstones(groups: &Groups, id: &str) -> Result<Vec<GroupRecord>, i16> {
        let members: Vec<&str> = groups
            .persisted
            .get(id)
            .map(|p| p.members.iter().map(String::as_str).collect())
            .unwrap_or_default();
        consumer_records::group_tombstones(id, &members).map_err(record_error)
    }

    /// Time-driven group transitions (expired sessions, ended join phases).
    /// A change that must be stored counts only once it is: if the append
    /// fails, the group returns to its state before the tick (what
    /// `__consumer_offsets` holds) and the next tick tries again.
    pub async fn tick(&self, store: &dyn GroupStore) {
        let now = Instant::now();
        let ms = now_ms();
        let mut groups = self.groups.lock().await;
        let active: BTreeSet<i32> = {
            let p = self.partitions();
            (0..self.config.partitions)
                .filter(|i| p.active_epoch(*i).is_ok())
                .collect()
        };
        let n = self.config.partitions;
        let is_active = |id: &str| active.contains(&records::partition_for(id, n));
        for g in groups.classic.values_mut() {
            if !g.tick_due(now) || !is_active(&g.id) {
                continue;
            }
            let before = g.snapshot();
            if g.tick(now, ms) {
                if let Err(code) = self.persist_group(store, g) {
                    warn!(group = %g.id, code, "cannot store that the group became Empty; keeping its stored state, will retry");
                    g.rollback(before);
                }
            }
        }
        let due: Vec<String> = groups
            .consumer
            .iter()
            .filter(|(id, g)| is_active(id) && g.next_deadline().is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(g) = groups.consumer.get_mut(&id) else {
                continue;
            };
            let before = g.clone();
            if !g.tick(now) {
                continue;
            }
            if let Err(code) = self.persist_consumer(store, &mut groups, &id) {
                warn!(group = %id, code, "cannot store consumer group changes; keeping its stored state, will retry");
                groups.consumer.insert(id, before);
            }
        }
    }

    /// The group metadata record of a group.
    pub fn group_record(&self, g: &ClassicGroup) -> Result<GroupRecord, i16> {
        Ok((
            records::encode_key(&RecordKey::GroupMetadata {
                group: g.id.clone(),
            })
            .map_err(record_error)?,
            Some(records::encode_group_value(&g.to_record()).map_err(record_error)?),
        ))
    }

    /// The tombstone of a group's metadata.
    pub fn group_tombstone(group: &str) -> Result<GroupRecord, i16> {
        Ok((
            records::encode_key(&RecordKey::GroupMetadata {
                group: group.to_string(),
            })
            .map_err(record_error)?,
            None,
        ))
    }

    /// Persists a group's metadata record.
    pub fn persist_group(&self, store: &dyn GroupStore, g: &ClassicGroup) -> Result<(), i16> {
        let rec = self.group_record(g)?;
        self.persist(store, &g.id, vec![rec])
    }

    /// Removes expired offsets of empty groups (`offsets.retention.minutes`).
    pub async fn expire_offsets(&self, state: &BrokerState) {
        let now = now_ms();
        let mut groups = self.groups.lock().await;
        let ids: Vec<String> = groups.offsets.keys().cloned().collect();
        for id in ids {
            if !groups.is_empty_group(&id) || !self.is_active(&id) {
                continue;
            }
            let base = groups
                .classic
                .get(&id)
                .map(|g| g.state_timestamp_ms)
                .unwrap_or(0);
            let Some(offsets) = groups.offsets.get(&id) else {
                continue;
            };
            let expired: Vec<(String, i32)> = offsets
                .iter()
                .filter(|(_, v)| {
                    let deadline = v.expire_timestamp.unwrap_or(
                        base.max(v.commit_timestamp)
                            .saturating_add(self.config.retention_ms),
                    );
                    deadline <= now
                })
                .map(|(k, _)| k.clone())
                .collect();
            if expired.is_empty() {
                continue;
            }
            let recs: Result<Vec<GroupRecord>, i16> = expired
                .iter()
                .map(|(t, p)| Self::offset_record(&id, t, *p, None))
                .collect();
            if recs.and_then(|r| self.persist(state, &id, r)).is_err() {
                continue;
            }
            info!(group = %id, count = expired.len(), "expired committed offsets");
            let now_empty = match groups.offsets.get_mut(&id) {
                Some(o) => {
                    for k in &expired {
                        o.remove(k);
                    }
                    o.is_empty()
                }
                None => true,
            };
            let memberless = groups.classic.get(&id).is_none_or(|g| g.members.is_empty())
                && !groups.consumer.contains_key(&id);
            if now_empty
                && memberless
                && Self::group_tombstone(&id)
                    .and_then(|t| self.persist(state, &id, vec![t]))
                    .is_ok()
            {
                groups.remove(&id);
            }
        }
    }

    /// Builds an offset record (a tombstone when `v` is `None`).
    pub fn offset_record(
        group: &str,
        topic: &str,
        partition: i32,
        v: Option<&OffsetValue>,
    ) -> Result<GroupRecord, i16> {
        let key = records::encode_key(&RecordKey::Offset {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        })
        .map_err(record_error)?;
        let value = match v {
            Some(v) => Some(records::encode_offset_value(v).map_err(record_error)?),
            None => None,
        };
        Ok((key, value))
    }
}

/// Loads partition `p`'s groups for leader epoch `epoch` on the blocking
/// pool and installs them unless the partition moved on meanwhile.
async fn load_partition(
    state: Arc<BrokerState>,
    p: i32,
    epoch: i32,
    group_configs: BTreeMap<String, BTreeMap<String, String>>,
) {
    let started = Instant::now();
    let Some(part) = state.replicas.get(OFFSETS_TOPIC, p) else {
        // The publisher opens hosted partitions before calling on_metadata.
        error!(
            partition = p,
            epoch, "{OFFSETS_TOPIC} partition to load is not hosted"
        );
        return;
    };
    let base = state.groups.config.consumer.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        super::loader::load_partition(&part, |id| {
            super::group_configs::consumer_config(&base, group_configs.get(id))
        })
    })
    .await;
    let (groups, count) = match loaded {
        Ok(l) => l,
        Err(e) => {
            error!(partition = p, epoch, error = %e, "loading {OFFSETS_TOPIC} failed");
            return;
        }
    };
    let n = groups.classic.len() + groups.consumer.len();
    if state.groups.finish_load(p, epoch, groups).await {
        info!(
            partition = p,
            epoch,
            records = count,
            groups = n,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded {OFFSETS_TOPIC} partition"
        );
    } else {
        info!(
            partition = p,
            epoch, "discarded a stale load of {OFFSETS_TOPIC}"
        );
    }
}

/// Creates a coordinator's internal topic (`__consumer_offsets`,
/// `__transaction_state`) through the controller. One that already exists is
/// fine; any other failure is COORDINATOR_NOT_AVAILABLE with the reason, so
/// the client's FindCoordinator tries again later, as with Kafka.
pub(crate) async fn create_internal_topic(
    state: &BrokerState,
    topic: NewTopic,
) -> Result<(), ApiError> {
    let name = topic.name.clone();
    match state
        .controller
        .create_topics(vec![topic], false)
        .await
        .pop()
    {
        Some(Ok(_)) => {
            info!("created {name}");
            Ok(())
        }
        Some(Err(e)) if e.code == ResponseError::TopicAlreadyExists.code() => Ok(()),
        Some(Err(e)) => {
            warn!(error = %e, "cannot create {name}");
            Err(ApiError::new(
                ResponseError::CoordinatorNotAvailable,
                e.to_string(),
            ))
        }
        None => Err(ApiError::code(ResponseError::CoordinatorNotAvailable)),
    }
}
