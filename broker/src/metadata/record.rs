//! Metadata records: the entries of the cluster metadata log.
//!
//! Every change to cluster metadata is one of these records, committed through
//! the quorum and then applied, in order, to the [`ClusterImage`](super::ClusterImage).
//! Records must be applied deterministically: the same sequence always yields the
//! same image on every node.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::features::FeatureRange;

/// One endpoint a broker advertises to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The listener name, e.g. `PLAINTEXT`.
    pub listener: String,
    /// The advertised host name.
    pub host: String,
    /// The advertised port.
    pub port: u16,
    /// The security protocol, e.g. `PLAINTEXT`.
    pub security_protocol: String,
}

/// The initial placement of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionAssignment {
    /// The partition index.
    pub partition: i32,
    /// The replica broker ids; the first is the preferred leader.
    pub replicas: Vec<i32>,
}

/// A change to cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A broker registers (or re-registers) itself and its endpoints.
    RegisterBroker {
        /// The broker's node id.
        node_id: i32,
        /// A per-process incarnation id, changing on every start.
        incarnation_id: Uuid,
        /// The endpoints the broker advertises.
        endpoints: Vec<Endpoint>,
        /// The broker's rack, if any.
        rack: Option<String>,
        /// The feature levels the broker supports (empty when registered
        /// by a binary without feature support).
        #[serde(default)]
        features: BTreeMap<String, FeatureRange>,
    },
    /// A registered broker's liveness changes: fenced (it missed its
    /// session, or a new incarnation registered), unfenced (it caught up
    /// with the metadata), or in controlled shutdown. Ignored unless
    /// `epoch` is the broker's current epoch.
    ChangeBroker {
        /// The broker.
        node_id: i32,
        /// The epoch (registration offset) this change is for.
        epoch: i64,
        /// Fenced: not eligible for leadership, ISR or new replicas.
        fenced: bool,
        /// In controlled shutdown: leadership moves away.
        shutting_down: bool,
    },
    /// A new topic with its partitions and topic-level config overrides.
    CreateTopic {
        /// The topic name.
        name: String,
        /// The topic id.
        topic_id: Uuid,
        /// Partition placements, indexed from zero without gaps.
        partitions: Vec<PartitionAssignment>,
        /// Topic-level config overrides (Kafka topic config keys).
        configs: BTreeMap<String, String>,
    },
    /// New partitions appended to an existing topic.
    CreatePartitions {
        /// The topic id.
        topic_id: Uuid,
        /// The new partitions; their indexes continue the existing ones.
        partitions: Vec<PartitionAssignment>,
    },
    /// The topic and all its partitions are removed.
    DeleteTopic {
        /// The topic id.
        topic_id: Uuid,
    },
    /// Topic-level config overrides are set (`Some`) or removed (`None`).
    AlterTopicConfigs {
        /// The topic id.
        topic_id: Uuid,
        /// Key to new value, or `None` to remove the override.
        changes: BTreeMap<String, Option<String>>,
    },
    /// Broker config overrides are set or removed. `node_id` `None` is the
    /// cluster-wide default (the empty broker resource name in Kafka).
    AlterBrokerConfigs {
        /// The broker, or `None` for the cluster default.
        node_id: Option<i32>,
        /// Key to new value, or `None` to remove the override.
        changes: BTreeMap<String, Option<String>>,
    },
    /// Group config overrides (`ConfigResource.Type.GROUP`) are set or
    /// removed; a group without overrides has no entry.
    AlterGroupConfigs {
        /// The group id.
        group: String,
        /// Key to new value, or `None` to remove the override.
        changes: BTreeMap<String, Option<String>>,
    },
    /// A partition's leadership or replica set changes.
    ChangePartition {
        /// The topic id.
        topic_id: Uuid,
        /// The partition index.
        partition: i32,
        /// The new leader (-1 for none).
        leader: i32,
        /// The new in-sync replica set.
        isr: Vec<i32>,
        /// The new replica set, or `None` to keep it.
        replicas: Option<Vec<i32>>,
        /// Whether the leader epoch is bumped (a leader change always bumps it).
        bump_leader_epoch: bool,
    },
    /// A partition reassignment starts, changes, completes or is cancelled:
    /// the whole replica state is set at once.
    ReassignPartition {
        /// The topic id.
        topic_id: Uuid,
        /// The partition index.
        partition: i32,
        /// All replicas (during a reassignment: the target ones and those
        /// still to be removed).
        replicas: Vec<i32>,
        /// Replicas being added.
        adding: Vec<i32>,
        /// Replicas to be removed on completion.
        removing: Vec<i32>,
        /// The leader (a change bumps the leader epoch).
        leader: i32,
        /// The ISR.
        isr: Vec<i32>,
    },
    /// A broker's registration is removed (Kafka's UnregisterBrokerRecord).
    /// Ignored unless `epoch` is the broker's current epoch.
    UnregisterBroker {
        /// The broker.
        node_id: i32,
        /// The epoch (registration offset) being removed.
        epoch: i64,
    },
    /// A feature is finalized at a level (Kafka's FeatureLevelRecord);
    /// level 0 removes a feature other than `metadata.version`.
    FeatureLevel {
        /// The feature name.
        name: String,
        /// The finalized level.
        level: i16,
    },
    /// A block of producer ids is reserved for a broker's idempotent producers.
    AllocateProducerIds {
        /// The broker.
        node_id: i32,
        /// First id of the block; must equal the image's `next_producer_id`.
        first: i64,
        /// Block size.
        size: i64,
    },
}
