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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Endpoint as Listener;
    use crate::metadata::{BrokerImage, PartitionImage, TopicImage};

    fn image() -> ClusterImage {
        let mut img = ClusterImage::default();
        for id in [1, 2, 3] {
            img.brokers.insert(
                id,
                BrokerImage {
                    node_id: id,
                    incarnation_id: uuid::Uuid::nil(),
                    endpoints: vec![Listener {
                        listener: "PLAINTEXT".into(),
                        host: format!("b{id}"),
                        port: 9092,
                        security_protocol: "PLAINTEXT".into(),
                    }],
                    rack: (id == 2).then(|| "r2".to_string()),
                    epoch: 1,
                    fenced: id == 3,
                    shutting_down: false,
                    features: Default::default(),
                },
            );
        }
        let part = |leader, leader_epoch| PartitionImage {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader,
            leader_epoch,
            ..Default::default()
        };
        img.topics.insert(
            "t".into(),
            TopicImage {
                name: "t".into(),
                topic_id: uuid::Uuid::nil(),
                partitions: vec![part(2, 7), part(1, 3), part(-1, 4), part(3, 1)],
                configs: Default::default(),
            },
        );
        img
    }

    #[test]
    fn names_the_leader_and_its_endpoint_once() {
        let mut h = LeaderHints::new(Arc::new(image()), 1, None);
        assert_eq!(h.leader("t", 0), (2, 7));
        assert_eq!(h.leader("t", 0), (2, 7));
        assert_eq!(
            h.endpoints(),
            [Endpoint {
                node_id: 2,
                host: "b2".into(),
                port: 9092,
                rack: Some("r2".into()),
            }]
        );
    }

    #[test]
    fn unknown_own_or_leaderless_is_minus_one() {
        let mut h = LeaderHints::new(Arc::new(image()), 1, None);
        // This broker: its published image lags its replica's step-down.
        assert_eq!(h.leader("t", 1), (-1, -1));
        assert_eq!(h.leader("t", 2), (-1, -1));
        assert_eq!(h.leader("t", 9), (-1, -1));
        assert_eq!(h.leader("t", -1), (-1, -1));
        assert_eq!(h.leader("nope", 0), (-1, -1));
        // A fenced leader (not listed to clients): its id, no endpoint.
        assert_eq!(h.leader("t", 3), (3, 1));
        assert!(h.endpoints().is_empty());
    }
}
