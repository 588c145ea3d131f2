//! Consumer groups: the classic protocol's coordinator, with offsets and
//! group metadata persisted in `__consumer_offsets` in Kafka's formats.

pub mod classic;
mod coordinator;
pub mod records;
mod subscription;

pub use coordinator::{GroupConfig, GroupCoordinator, GroupRecord, OFFSETS_TOPIC};
