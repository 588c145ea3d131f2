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
