//! Plain data types taken and returned by [`AdminClient`](crate::AdminClient).

mod cluster;
mod config_entry;
mod topic;

pub use cluster::{BrokerNode, ClusterDescription, QuorumDescription};
pub use config_entry::{AlterConfigOp, ConfigEntry, ConfigSource};
pub use topic::{CreatedTopic, NewTopic, PartitionDescription, TopicDescription};
