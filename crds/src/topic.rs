//! `KafkaTopic`: one topic in a KafkaCluster.

use crate::config_map::{self, ConfigMap};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A Kafka topic managed through the Admin API of the cluster named by the
/// `kafka.runnel.dev/cluster` label.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kafka.runnel.dev",
    version = "v1alpha1",
    kind = "KafkaTopic",
    plural = "kafkatopics",
    shortname = "kt",
    category = "kafka",
    namespaced,
    status = "KafkaTopicStatus",
    derive = "PartialEq",
    doc = "A Kafka topic",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".metadata.labels.kafka\\.runnel\\.dev/cluster"
    ),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".spec.partitions"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Topic",
        type_ = "string",
        json_path = ".status.topicName",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.topicName) == has(oldSelf.topicName) && (!has(self.topicName) || self.topicName == oldSelf.topicName)").message("spec.topicName is immutable"))]
pub struct KafkaTopicSpec {
    /// Kafka topic name; defaults to the resource name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    #[x_kube(validation = Rule::new("self != '.' && self != '..'").message("topic name cannot be '.' or '..'"))]
    pub topic_name: Option<String>,

    /// Number of partitions. Kafka can only add partitions; a decrease is reported, not applied.
    #[schemars(range(min = 1, max = 100000))]
    pub partitions: i32,

    /// Replication factor. Changing it moves the partitions' replicas through partition
    /// reassignment (refused while it exceeds the registered brokers).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 32767))]
    pub replicas: i32,

    /// Topic configuration (Kafka topic keys such as `retention.ms`, `cleanup.policy`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "config_map::schema")]
    pub config: ConfigMap,
}

fn default_replicas() -> i32 {
    1
}

/// Observed state of a KafkaTopic.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Degraded.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The Kafka topic name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// The Kafka topic id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Partitions the topic has in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// The last change made to the topic outside this resource, found and reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drift: Option<TopicDrift>,
    /// The replication throttle set for this topic's replication-factor change (the
    /// cluster's `spec.rebalance.throttleBytesPerSecond`), until it is removed once
    /// no reassignment is in progress in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_throttle: Option<crate::cluster::ThrottleStatus>,
}

/// Out-of-band changes found in Kafka and reverted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicDrift {
    /// When it was found.
    pub detected_at: Time,
    /// What differed, e.g. `config retention.ms=1000 in Kafka, 604800000 in spec`.
    pub changes: Vec<String>,
}

impl KafkaTopic {
    /// The Kafka topic name: `spec.topicName`, else the resource name.
    pub fn topic_name(&self) -> String {
        self.spec
            .topic_name
            .clone()
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }
}
