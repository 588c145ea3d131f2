//! `runnel-admin`: a small async Kafka Admin client.
//!
//! It manages topics and reads cluster state over the Kafka protocol, with
//! any Kafka-compatible broker (Runnel's `runnel-broker`, Apache Kafka):
//!
//! ```no_run
//! # async fn demo() -> Result<(), runnel_admin::AdminError> {
//! use runnel_admin::{AdminClient, AdminConfig, NewTopic};
//!
//! let admin = AdminClient::connect("127.0.0.1:9092", AdminConfig::default()).await?;
//! let created = admin
//!     .create_topic(NewTopic::new("orders", 3, 1).with_config("cleanup.policy", "compact"), false)
//!     .await?;
//! println!("topic id {:?}", created.topic_id);
//! let cluster = admin.describe_cluster().await?;
//! println!("cluster {:?} with {} brokers", cluster.cluster_id, cluster.brokers.len());
//! # Ok(()) }
//! ```
//!
//! Responses are decoded by `kafka-protocol` 0.18 as patched in the workspace
//! (`vendor/kafka-protocol`): no count or length read off the wire sizes an
//! allocation beyond the bytes the response holds.

#![warn(missing_docs)]

mod broker_configs;
mod client;
mod cluster_ops;
mod config;
mod connection;
mod default_broker_configs;
mod error;
mod features;
mod raft_voters;
mod reassignments;
mod registrations;
mod types;
mod versions;

pub use client::{AdminClient, TopicDescriptions};
pub use cluster_ops::{ElectionResults, TopicConfigs};
pub use config::AdminConfig;
pub use error::{error_name, AdminError};
pub use features::{
    metadata_version_name, parse_metadata_version, FeatureLevels, UpgradeType, METADATA_VERSIONS,
};
pub use reassignments::{
    OngoingReassignment, OngoingReassignments, ReassignmentResults, ReassignmentTarget,
};
pub use types::{
    AlterConfigOp, BrokerNode, ClusterDescription, ConfigEntry, ConfigSource, CreatedTopic,
    NewTopic, PartitionDescription, QuorumDescription, TopicDescription,
};
