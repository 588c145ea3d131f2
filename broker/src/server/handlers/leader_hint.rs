//! KIP-951 leader discovery: a Produce or Fetch answered NOT_LEADER_OR_FOLLOWER
//! (or, for Fetch, FENCED_LEADER_EPOCH) carries the partition's current leader
//! and epoch as this broker's image knows them (`CurrentLeader`), and the
//! response carries that leader's endpoint (`NodeEndpoints`), so that a client
//! retries on the new leader without first refreshing its metadata (Kafka's
//! `KafkaApis.getCurrentLeader`). An unknown leader is `-1`, as in Kafka.
//!
//! The image is read when the response is made, not when the request came in
//! (an acks=all produce may have waited while leadership moved). A replica
//! steps down before the handlers see the image that moved its leadership:
//! while the published image still names this broker, the leader is unknown
//! (`-1`) rather than this broker, so the client refreshes its metadata
//! instead of retrying here.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::metadata::ClusterImage;

/// A leader endpoint to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack.
    pub rack: Option<String>,
}

/// Collects the current leaders of the partitions a response refuses.
pub struct LeaderHints {
    image: Arc<ClusterImage>,
    own_id: i32,
    stopping: Option<i32>,
    endpoints: BTreeMap<i32, Endpoint>,
}

impl LeaderHints {
    /// Hints from `image` for broker `own_id`; `stopping` is this broker while it
    /// shuts down (still listed to clients, as Metadata does).
    pub fn new(image: Arc<ClusterImage>, own_id: i32, stopping: Option<i32>) -> Self {
        LeaderHints {
            image,
            own_id,
            stopping,
            endpoints: BTreeMap::new(),
        }
    }

    /// The current leader and leader epoch of `topic`/`partition` (`(-1, -1)`
    /// when unknown), remembering the leader's endpoint.
    pub fn leader(&mut self, topic: &str, partition: i32) -> (i32, i32) {
        let Some(p) = self
            .image
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(usize::try_from(partition).ok()?))
        else {
            return (-1, -1);
        };
        if p.leader < 0 || p.leader == self.own_id {
            return (-1, -1);
        }
        if !self.endpoints.contains_key(&p.leader) {
            if let Some(b) = self
                .image
                .client_brokers(self.stopping)
                .find(|b| b.node_id == p.leader)
            {
                self.endpoints.insert(
                    b.node_id,
                    Endpoint {
                        node_id: b.node_id,
                        host: b.host.to_string(),
                        port: i32::from(b.port),
                        rack: b.rack.map(str::to_string),
                    },
                );
            }
        }
        (p.leader, p.leader_epoch)
    }

    /// The endpoints of the leaders hinted, by node id.
    pub fn endpoints(self) -> Vec<Endpoint> {
        self.endpoints.into_values().collect()
    }
}
