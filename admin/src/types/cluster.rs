//! Cluster state: id, controller and brokers.

/// The answer of [`AdminClient::describe_cluster`](crate::AdminClient::describe_cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id (`cluster.id` in `meta.properties`); `None` only if
    /// the broker answered Metadata with a null cluster id.
    pub cluster_id: Option<String>,
    /// The broker id of the active controller, if known. (In KRaft, Kafka
    /// reports a random live broker here to clients, not the controller.)
    pub controller_id: Option<i32>,
    /// The live brokers, sorted by id.
    pub brokers: Vec<BrokerNode>,
}

/// One broker's endpoint, as advertised to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerNode {
    /// The broker id (`node.id`).
    pub id: i32,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: i32,
    /// The broker's `broker.rack`, if set.
    pub rack: Option<String>,
}

/// The answer of [`AdminClient::describe_quorum`](crate::AdminClient::describe_quorum):
/// the KRaft metadata quorum (`__cluster_metadata-0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    /// The active controller (quorum leader), if there is one.
    pub leader_id: Option<i32>,
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// The metadata log's high watermark.
    pub high_watermark: i64,
    /// The voters: node id and log end offset (-1 when unknown).
    pub voters: Vec<(i32, i64)>,
    /// The observers (brokers that are not voters): node id and log end offset.
    pub observers: Vec<(i32, i64)>,
    /// The voters' metadata directory ids (KIP-853 `ReplicaKey`; DescribeQuorum v2+),
    /// in `voters` order; `None` for a static voter (Kafka's zero UUID).
    pub voter_directories: Vec<(i32, Option<uuid::Uuid>)>,
    /// The observers' metadata directory ids, in `observers` order; `None` when
    /// unknown.
    pub observer_directories: Vec<(i32, Option<uuid::Uuid>)>,
}
