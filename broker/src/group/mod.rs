//! Consumer groups: the classic protocol and the KIP-848 consumer protocol,
//! with offsets and group metadata persisted in `__consumer_offsets` in
//! Kafka's record formats.

pub mod assignor;
pub mod classic;
mod classic_ops;
pub mod commit;
pub mod consumer;
pub mod consumer_records;
mod coordinator;
pub mod group_configs;
mod loader;
pub(crate) use coordinator::create_internal_topic;
pub(crate) use loader::replay_log;
pub mod partitions;
pub mod records;
mod subscription;
pub mod topic_regex;
pub mod txn_commit;
pub mod txn_offsets;

pub use coordinator::{
    GroupConfig, GroupCoordinator, GroupRecord, GroupStore, GroupWrite, Groups, Offsets,
    OFFSETS_TOPIC,
};
