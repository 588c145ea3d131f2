//! Cluster metadata: the records, the cluster image they build, and the
//! openraft quorum that orders and persists them.

pub mod features;
mod image;
pub mod quorum;
mod record;

pub use image::{AdvertisedBroker, BrokerImage, ClusterImage, PartitionImage, TopicImage};
pub use quorum::{
    MetadataError, MetadataQuorum, QuorumNode, QuorumOptions, QuorumStatus, VoterChangeError,
    VoterStatus,
};
pub use record::{Endpoint, MetadataRecord, PartitionAssignment};
