//! The openraft type configuration for the metadata quorum, and the mapping
//! between Kafka node ids (`i32`) and openraft node ids (`u64`).

use std::io::Cursor;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::metadata::MetadataRecord;

/// One raft log entry's application payload: a batch of metadata records that
/// is committed and applied atomically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBatch(pub Vec<MetadataRecord>);

/// A member of the metadata quorum as the raft membership stores it: where
/// the leader reaches it and, for KIP-853 dynamic quorums, its identity.
///
/// A static quorum (`controller.quorum.voters`) stores only `addr`, which
/// is exactly what openraft's `BasicNode` stored before, so logs written by
/// earlier versions read back unchanged (and the reverse).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumNode {
    /// `host:port` of its quorum listener (a controller's controller
    /// listener; a broker's ephemeral observer port).
    pub addr: String,
    /// The directory id of its metadata log directory (`directory.id` in
    /// `meta.properties`), Kafka's `ReplicaKey` directory id. `None` for
    /// the voters of a static quorum (Kafka's kraft.version 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_id: Option<Uuid>,
    /// Its controller listeners as `(name, host, port)` (AddRaftVoter's
    /// `Listeners`; DescribeQuorum's `Nodes`). Empty for brokers and for
    /// static voters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<(String, String, u16)>,
}

impl QuorumNode {
    /// A member known only by its address (static voters).
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            ..Default::default()
        }
    }
}

openraft::declare_raft_types!(
    /// The openraft type configuration of the metadata quorum.
    pub TypeConfig:
        D = RecordBatch,
        R = (),
        NodeId = u64,
        Node = QuorumNode,
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
pub type StoredMembership = openraft::StoredMembership<NodeId, QuorumNode>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, QuorumNode>;
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
