//! The openraft type configuration for the metadata quorum, and the mapping
//! between Kafka node ids (`i32`) and openraft node ids (`u64`).

use std::io::Cursor;

use openraft::BasicNode;
use serde::{Deserialize, Serialize};

use crate::metadata::MetadataRecord;

/// One raft log entry's application payload: a batch of metadata records that
/// is committed and applied atomically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBatch(pub Vec<MetadataRecord>);

openraft::declare_raft_types!(
    /// The openraft type configuration of the metadata quorum.
    pub TypeConfig:
        D = RecordBatch,
        R = (),
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The openraft node id type.
pub type NodeId = u64;
/// A raft log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A raft log id.
pub type LogId = openraft::LogId<NodeId>;
/// A raft vote.
pub type Vote = openraft::Vote<NodeId>;
/// Membership as stored in the state machine.
pub type StoredMembership = openraft::StoredMembership<NodeId, BasicNode>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, BasicNode>;
/// A storage error as openraft wants it.
pub type StorageError = openraft::StorageError<NodeId>;
/// The raft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// Maps a Kafka node id to an openraft node id. Kafka node ids are never negative.
pub fn to_raft_id(id: i32) -> Option<NodeId> {
    u64::try_from(id).ok()
}

/// Maps an openraft node id back to a Kafka node id.
pub fn to_kafka_id(id: NodeId) -> Option<i32> {
    i32::try_from(id).ok()
}
