//! The group coordinator: owns every classic group whose
//! `__consumer_offsets` partition this broker leads, persists offsets and
//! group metadata there in Kafka's record formats, and reloads them on start.

use crate::clock::now_ms;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::sync::{Mutex, MutexGuard};
use tracing::{error, info, warn};

use super::classic::{ClassicGroup, GroupState};
use super::consumer::{ConsumerGroup, ConsumerGroupConfig};
use super::consumer_records::{self, ConsumerGroupReplayer};
use super::records::{self, OffsetValue, RecordKey};
use crate::broker::BrokerState;
use crate::controller::NewTopic;
use crate::error::ApiError;

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
}

/// A consumer group's live records in `__consumer_offsets`.
#[derive(Debug, Default, Clone)]
pub struct PersistedConsumerGroup {
    records: BTreeMap<Bytes, Bytes>,
    members: BTreeSet<String>,
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
        let image = self.image();
        let Some(part) = self.replicas.hosted(&image, OFFSETS_TOPIC, p) else {
            return Err(ResponseError::NotCoordinator.code());
        };
        let ts = now_ms();
        let records: Vec<Record> = recs
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
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
        part.append(&mut bytes).map(|_| ()).map_err(|e| {
            error!(group, error = %e, "cannot persist group records");
            // Kafka's mapping of append errors to group responses.
            match ResponseError::try_from_code(e.code) {
                Some(
                    ResponseError::MessageTooLarge
                    | ResponseError::RecordListTooLarge
                    | ResponseError::InvalidFetchSize,
                ) => ResponseError::UnknownServerError.code(),
                Some(ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError) => {
                    ResponseError::NotCoordinator.code()
                }
                _ => ResponseError::CoordinatorNotAvailable.code(),
            }
        })
    }
}

/// The group coordinator.
pub struct GroupCoordinator {
    /// Settings.
    pub config: GroupConfig,
    groups: Mutex<Groups>,
    loading: AtomicBool,
}

impl GroupCoordinator {
    /// A coordinator that starts in the loading state.
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: Mutex::new(Groups::default()),
            loading: AtomicBool::new(true),
        }
    }

    /// Whether state is still being loaded from `__consumer_offsets`.
    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
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
        let brokers = state.image().brokers.len().max(1) as i16;
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
            // One replica each until the coordinator loads and unloads
            // groups as `__consumer_offsets` leadership moves between
            // brokers and waits for group writes to replicate (issue 9,
            // still open); `offsets.topic.replication.factor` is not acted on.
            replication_factor: self.config.replication_factor.min(brokers).min(1),
            assignments: vec![],
            configs,
        };
        match state
            .controller
            .create_topics(vec![topic], false)
            .await
            .pop()
        {
            Some(Ok(_)) => {
                info!("created {OFFSETS_TOPIC}");
                Ok(())
            }
            Some(Err(e)) if e.code == ResponseError::TopicAlreadyExists.code() => Ok(()),
            Some(Err(e)) => {
                warn!(error = %e, "cannot create {OFFSETS_TOPIC}");
                Err(ApiError::new(
                    ResponseError::CoordinatorNotAvailable,
                    e.to_string(),
                ))
            }
            None => Err(ApiError::code(ResponseError::CoordinatorNotAvailable)),
        }
    }

    /// Checks that this broker coordinates `group` and has loaded its state.
    pub fn check_coordinator(&self, state: &BrokerState, group: &str) -> Result<(), i16> {
        if group.is_empty() {
            return Err(ResponseError::InvalidGroupId.code());
        }
        let image = state.image();
        let Some(t) = image.topics.get(OFFSETS_TOPIC) else {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        };
        let p = self.partition_for(group) as usize;
        match t.partitions.get(p) {
            Some(pi) if pi.leader == state.node_id => {}
            Some(_) => return Err(ResponseError::NotCoordinator.code()),
            None => return Err(ResponseError::CoordinatorNotAvailable.code()),
        }
        if self.loading.load(Ordering::Acquire) {
            return Err(ResponseError::CoordinatorLoadInProgress.code());
        }
        Ok(())
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

    /// Loads every hosted `__consumer_offsets` partition, then opens for business.
    pub async fn load(&self, state: &BrokerState) {
        let started = Instant::now();
        let image = state.image();
        let mut groups = self.groups.lock().await;
        let mut count = 0usize;
        let mut replayer = ConsumerGroupReplayer::new();
        if let Some(t) = image.topics.get(OFFSETS_TOPIC) {
            for p in 0..t.partitions.len() as i32 {
                let Some(part) = state.replicas.hosted(&image, OFFSETS_TOPIC, p) else {
                    continue;
                };
                // As Kafka's loader: everything in the log, up to its end.
                let (mut offset, end) = part.with_log(|l| (l.start_offset(), l.end_offset()));
                while offset < end {
                    let data = match part.read_local(offset, 1 << 20) {
                        Ok(d) => d,
                        Err(e) => {
                            error!(partition = p, error = %e, "cannot read {OFFSETS_TOPIC}");
                            break;
                        }
                    };
                    let Some(slice) = data.slice else { break };
                    let bytes = match slice.read() {
                        Ok(b) => b,
                        Err(e) => {
                            error!(partition = p, error = %e, "cannot read {OFFSETS_TOPIC}");
                            break;
                        }
                    };
                    let mut buf = bytes;
                    let mut last = offset;
                    while !buf.is_empty() {
                        let set = match RecordBatchDecoder::decode(&mut buf) {
                            Ok(s) => s,
                            Err(e) => {
                                error!(partition = p, error = %e, "undecodable batch in {OFFSETS_TOPIC}");
                                buf.clear();
                                break;
                            }
                        };
                        for r in set.records {
                            last = last.max(r.offset);
                            count += 1;
                            self.replay(
                                &mut groups,
                                &mut replayer,
                                r.key.as_deref(),
                                r.value.as_deref(),
                            );
                        }
                    }
                    if last < offset {
                        break;
                    }
                    offset = last + 1;
                }
            }
        }
        let cfg_of = |id: &str| {
            super::group_configs::consumer_config(
                &self.config.consumer,
                image.group_configs.get(id),
            )
        };
        for g in replayer.finish_with(Instant::now(), cfg_of) {
            let id = g.group_id().to_string();
            if groups
                .classic
                .get(&id)
                .is_some_and(|c| c.members.is_empty())
            {
                groups.classic.remove(&id);
            }
            groups.consumer.insert(id.clone(), g);
            // What was replayed is what the log holds: the diff baseline.
            if let Some(g) = groups.consumer.get(&id) {
                if let Ok(recs) = consumer_records::consumer_group_records(g) {
                    let records = recs
                        .into_iter()
                        .filter_map(|(k, v)| v.map(|v| (k, v)))
                        .collect();
                    let members = g.members().map(|m| m.member_id.clone()).collect();
                    groups
                        .persisted
                        .insert(id, PersistedConsumerGroup { records, members });
                }
            }
        }
        drop(groups);
        self.loading.store(false, Ordering::Release);
        info!(
            records = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "group coordinator loaded"
        );
    }

    fn replay(
        &self,
        groups: &mut Groups,
        replayer: &mut ConsumerGroupReplayer,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        let Some(key) = key else { return };
        let key = match records::decode_key(key) {
            Ok(k) => k,
            Err(e) => {
                warn!(error = %e, "skipping undecodable {OFFSETS_TOPIC} key");
                return;
            }
        };
        let now = Instant::now();
        match key {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => match value {
                None => {
                    if let Some(o) = groups.offsets.get_mut(&group) {
                        o.remove(&(topic, partition));
                    }
                }
                Some(v) => match records::decode_offset_value(v) {
                    Ok(v) => {
                        if !groups.exists(&group) {
                            // An offsets-only group lists as an empty classic group, as in Kafka.
                            groups
                                .classic
                                .insert(group.clone(), ClassicGroup::new(&group, now_ms()));
                        }
                        groups
                            .offsets
                            .entry(group)
                            .or_default()
                            .insert((topic, partition), v);
                    }
                    Err(e) => warn!(error = %e, "skipping undecodable offset value"),
                },
            },
            RecordKey::GroupMetadata { group } => match value {
                None => {
                    groups.remove(&group);
                }
                Some(v) => match records::decode_group_value(v) {
                    Ok(v) => groups
                        .classic
                        .entry(group.clone())
                        .or_insert_with(|| ClassicGroup::new(&group, now_ms()))
                        .restore(v, now),
                    Err(e) => warn!(error = %e, "skipping undecodable group metadata"),
                },
            },
            other => {
                if let Err(e) = replayer.apply(&other, value) {
                    warn!(error = %e, "skipping undecodable consumer group record");
                }
            }
        }
    }

    /// Time-driven group transitions (expired sessions, ended join phases).
    /// A change that must be stored counts only once it is: if the append
    /// fails, the group returns to its state before the tick (what
    /// `__consumer_offsets` holds) and the next tick tries again.
    pub async fn tick(&self, store: &dyn GroupStore) {
        let now = Instant::now();
        let ms = now_ms();
        let mut groups = self.groups.lock().await;
        for g in groups.classic.values_mut() {
            if !g.tick_due(now) {
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
            .filter(|(_, g)| g.next_deadline().is_some_and(|d| d <= now))
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
            if !groups.is_empty_group(&id) {
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
