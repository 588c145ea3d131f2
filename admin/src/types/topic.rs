//! Topics: what to create, and what Metadata describes.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::ConfigEntry;
use crate::error::error_name;

/// A topic to create with [`AdminClient::create_topic`](crate::AdminClient::create_topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// The topic name.
    pub name: String,
    /// The number of partitions; `-1` for the broker's `num.partitions`.
    pub partitions: i32,
    /// The replication factor; `-1` for the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic-level configs, e.g. `cleanup.policy` = `compact`.
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with the given partitions and replication factor and no configs.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }

    /// Adds one topic config.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// What CreateTopics reported about a created (or, with `validate_only`,
/// validated) topic. Fields are `None` when the negotiated CreateTopics
/// version does not carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// The new topic's id (CreateTopics v7+). With `validate_only`, Apache
    /// Kafka 4.1 returns a throwaway id of a topic that does not exist;
    /// runnel-broker returns none.
    pub topic_id: Option<Uuid>,
    /// The number of partitions (v5+).
    pub num_partitions: Option<i32>,
    /// The replication factor (v5+).
    pub replication_factor: Option<i16>,
    /// The topic's configs (v5+), unless the broker could not describe them
    /// (`topic_config_error_code` set, or a null array).
    pub configs: Option<Vec<ConfigEntry>>,
}

/// One topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic name.
    pub name: String,
    /// The topic id (Metadata v10+; `None` if older or all-zero).
    pub topic_id: Option<Uuid>,
    /// Whether it is an internal topic such as `__consumer_offsets`.
    pub is_internal: bool,
    /// The partitions, sorted by partition id.
    pub partitions: Vec<PartitionDescription>,
}

/// One partition of a [`TopicDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// The partition id.
    pub id: i32,
    /// The leader's broker id; `None` if there is no leader (`-1`).
    pub leader: Option<i32>,
    /// The leader epoch (Metadata v7+); `None` if unknown (`-1`).
    pub leader_epoch: Option<i32>,
    /// The replica broker ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replica broker ids.
    pub isr: Vec<i32>,
    /// Replicas that are offline (Metadata v5+).
    pub offline_replicas: Vec<i32>,
    /// The partition's Kafka error code; `0` if none (e.g. `5`,
    /// LEADER_NOT_AVAILABLE, while a leader is being elected).
    pub error_code: i16,
}

impl PartitionDescription {
    /// Kafka's name for [`error_code`](Self::error_code), if it is not `0`.
    pub fn error_name(&self) -> Option<String> {
        (self.error_code != 0).then(|| error_name(self.error_code))
    }
}
