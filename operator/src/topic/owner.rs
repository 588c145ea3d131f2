//! Which KafkaTopic owns a Kafka topic when several name the same one: the oldest.

use kube::ResourceExt;
use runnel_crds::{KafkaTopic, CLUSTER_LABEL};

/// The KafkaTopic that owns `kt`'s Kafka topic among `all`: the earliest created (then
/// the first by name) of those in the same namespace, naming the same cluster and topic.
/// `kt` itself counts even when `all` does not hold it yet.
pub fn owner<'a>(all: &'a [std::sync::Arc<KafkaTopic>], kt: &'a KafkaTopic) -> &'a KafkaTopic {
    let ns = kt.namespace();
    let cluster = kt.labels().get(CLUSTER_LABEL);
    let topic = kt.topic_name();
    let key = |t: &KafkaTopic| {
        (
            t.metadata.creation_timestamp.clone().map(|c| c.0),
            t.name_any(),
        )
    };
    all.iter()
        .map(|t| &**t)
        .filter(|t| {
            t.namespace() == ns
                && t.labels().get(CLUSTER_LABEL) == cluster
                && t.topic_name() == topic
        })
        .chain(std::iter::once(kt))
        .min_by_key(|t| key(t))
        .unwrap_or(kt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::sync::Arc;

    fn topic(name: &str, topic_name: Option<&str>, created: &str, cluster: &str) -> KafkaTopic {
        let mut spec: runnel_crds::KafkaTopicSpec =
            serde_json::from_value(serde_json::json!({"partitions": 1})).expect("spec");
        spec.topic_name = topic_name.map(String::from);
        let mut t = KafkaTopic::new(name, spec);
        t.metadata.namespace = Some("ns".into());
        t.metadata.labels = Some([(CLUSTER_LABEL.to_string(), cluster.to_string())].into());
        t.metadata.creation_timestamp = Some(Time(created.parse().expect("ts")));
        t
    }

    #[test]
    fn oldest_claim_wins() {
        let a = topic("a", Some("orders"), "2026-01-02T00:00:00Z", "c");
        let b = topic("orders", None, "2026-01-01T00:00:00Z", "c");
        let other_cluster = topic("z", Some("orders"), "2025-01-01T00:00:00Z", "d");
        let all = vec![
            Arc::new(a.clone()),
            Arc::new(b.clone()),
            Arc::new(other_cluster),
        ];
        assert_eq!(owner(&all, &a).name_any(), "orders");
        assert_eq!(owner(&all, &b).name_any(), "orders");
        let alone = topic("x", None, "2026-01-03T00:00:00Z", "c");
        assert_eq!(owner(&all, &alone).name_any(), "x");
    }
}
