//! `KafkaConnect`: a Kafka Connect cluster (Apache Kafka Connect workers in distributed mode).
//!
//! A resource of its own rather than a `KafkaCluster.spec.connect` block: a Connect
//! cluster has its own lifecycle (created, scaled and upgraded independently of the
//! brokers), its own image and plugins, may target a Kafka cluster this operator does not
//! manage (`bootstrapServers`), and several may share one Kafka cluster. Strimzi users know
//! the same split (`KafkaConnect` + `KafkaConnector`).

use crate::config_map::{self, ConfigMap};
pub use crate::connect_build::{Artifact, ArtifactType, Build, BuildPlugin, MAVEN_CENTRAL};
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The worker keys the operator owns; `spec.config` may not set them (the operator
/// refuses them with condition `InvalidSpec`).
pub const OWNED_WORKER_KEYS: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "config.storage.topic",
    "offset.storage.topic",
    "status.storage.topic",
    "config.storage.replication.factor",
    "offset.storage.replication.factor",
    "status.storage.replication.factor",
    "listeners",
    "rest.advertised.host.name",
    "rest.advertised.port",
    "rest.advertised.listener",
    "plugin.path",
];

/// The plugins built into the Connect image, by the name `spec.plugins` uses.
pub const BUNDLED_PLUGINS: &[&str] = &["connect-file"];

/// A Kafka Connect cluster: Apache Kafka Connect 4.1.1 workers in distributed mode,
/// connected to a KafkaCluster of the same namespace (`clusterRef`) or to any Kafka
/// (`bootstrapServers`). KafkaConnectors name it with `spec.connectRef`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kafka.runnel.dev",
    version = "v1alpha1",
    kind = "KafkaConnect",
    plural = "kafkaconnects",
    shortname = "kconn",
    category = "kafka",
    namespaced,
    status = "KafkaConnectStatus",
    derive = "PartialEq",
    doc = "A Kafka Connect cluster (distributed workers)",
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(
        name = "ReadyReplicas",
        type_ = "integer",
        json_path = ".status.readyReplicas"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.clusterRef) != has(self.bootstrapServers)").message("set exactly one of clusterRef and bootstrapServers"))]
#[x_kube(validation = Rule::new("self.groupId == oldSelf.groupId").message("groupId is immutable: a new group id is a new Connect cluster"))]
pub struct KafkaConnectSpec {
    /// Name of a KafkaCluster in the same namespace; the workers use its bootstrap Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub cluster_ref: Option<String>,

    /// `host:port[,host:port...]` of a Kafka cluster not managed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub bootstrap_servers: Option<String>,

    /// Number of workers.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 64))]
    pub replicas: i32,

    /// Worker image. Default: the operator's `--connect-image`, the Connect image built
    /// by `e2e/image/build.py connect` (Apache Kafka 4.1.1's jars, Debian's JRE, and the
    /// bundled plugins under `/opt/kafka/plugins`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// The Connect group id (`group.id`). Immutable.
    #[schemars(length(min = 1, max = 249))]
    pub group_id: String,

    /// The internal topics (created by the operator through the Admin API, compacted).
    #[serde(default)]
    pub storage: StorageTopics,

    /// Worker configuration in Kafka Connect's keys (converters, `offset.flush.interval.ms`,
    /// ...). The keys the operator owns (`bootstrap.servers`, `group.id`, the internal
    /// topics and their replication factors, `listeners`, `rest.advertised.*`,
    /// `plugin.path`) are refused by the operator (condition `InvalidSpec`): a CEL rule
    /// cannot range over this map, whose values keep any scalar type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "config_map::schema")]
    pub config: ConfigMap,

    /// Compute resources of each worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Connector plugins the workers load: names of plugins bundled in the image
    /// (`connect-file`: FileStreamSource/FileStreamSink of connect-file 4.1.1), or Maven
    /// coordinates `group:artifact:version`, whose jar is downloaded when a worker starts
    /// (from `build.mavenRepository`, default Maven Central) into a plugin directory named
    /// after the artifact. Any other name is reported in the Ready condition
    /// (`InvalidSpec`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub plugins: Vec<String>,

    /// Plugins downloaded when a worker starts, as Strimzi's `spec.build.plugins` (no image
    /// is built: an init container of the worker image fetches each artifact into an
    /// `emptyDir` on `plugin.path`, checking `sha512sum` when given). A failed download
    /// or checksum is condition `PluginDownloadFailed` with the reason, and an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
}

fn default_replicas() -> i32 {
    1
}

/// The three internal topics of a Connect cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageTopics {
    /// `config.storage.topic` (one partition). Default `<groupId>-configs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_topic: Option<String>,
    /// `offset.storage.topic`. Default `<groupId>-offsets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_topic: Option<String>,
    /// `status.storage.topic`. Default `<groupId>-status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_topic: Option<String>,
    /// Replication factor of all three.
    #[serde(default = "default_rf")]
    #[schemars(range(min = 1, max = 32767))]
    pub replication_factor: i32,
    /// Partitions of the offset topic (Kafka's default 25).
    #[serde(default = "default_offset_partitions")]
    #[schemars(range(min = 1, max = 1000))]
    pub offset_partitions: i32,
    /// Partitions of the status topic (Kafka's default 5).
    #[serde(default = "default_status_partitions")]
    #[schemars(range(min = 1, max = 1000))]
    pub status_partitions: i32,
}

impl Default for StorageTopics {
    fn default() -> Self {
        StorageTopics {
            config_topic: None,
            offset_topic: None,
            status_topic: None,
            replication_factor: default_rf(),
            offset_partitions: default_offset_partitions(),
            status_partitions: default_status_partitions(),
        }
    }
}

fn default_rf() -> i32 {
    3
}
fn default_offset_partitions() -> i32 {
    25
}
fn default_status_partitions() -> i32 {
    5
}

/// One internal topic as the operator creates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalTopic {
    /// Worker key naming it (`config.storage.topic`, ...).
    pub key: &'static str,
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
}

impl KafkaConnect {
    /// The three internal topics: config (1 partition), offset, status.
    pub fn internal_topics(&self) -> [InternalTopic; 3] {
        let s = &self.spec.storage;
        let g = &self.spec.group_id;
        let rf = s.replication_factor;
        [
            InternalTopic {
                key: "config.storage.topic",
                name: s
                    .config_topic
                    .clone()
                    .unwrap_or_else(|| format!("{g}-configs")),
                partitions: 1,
                replication_factor: rf,
            },
            InternalTopic {
                key: "offset.storage.topic",
                name: s
                    .offset_topic
                    .clone()
                    .unwrap_or_else(|| format!("{g}-offsets")),
                partitions: s.offset_partitions,
                replication_factor: rf,
            },
            InternalTopic {
                key: "status.storage.topic",
                name: s
                    .status_topic
                    .clone()
                    .unwrap_or_else(|| format!("{g}-status")),
                partitions: s.status_partitions,
                replication_factor: rf,
            },
        ]
    }
}

/// Observed state of a KafkaConnect.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaConnectStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Degraded.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Workers asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Workers ready (REST answering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Worker pods (names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<String>,
    /// Connector plugins the workers report (`GET /connector-plugins`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connector_plugins: Vec<ConnectorPlugin>,
    /// The REST API URL (the workers' Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One connector plugin as `GET /connector-plugins` lists it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorPlugin {
    /// Class name.
    pub class: String,
    /// `source` or `sink`.
    #[serde(default, rename = "type")]
    pub type_: String,
    /// Plugin version.
    #[serde(default)]
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_topics_default_from_the_group_id() {
        let kc = KafkaConnect::new(
            "c",
            serde_json::from_value(serde_json::json!({"clusterRef": "demo", "groupId": "g"}))
                .expect("spec"),
        );
        let t = kc.internal_topics();
        assert_eq!(t[0].name, "g-configs");
        assert_eq!(t[0].partitions, 1);
        assert_eq!(t[1].name, "g-offsets");
        assert_eq!(t[1].partitions, 25);
        assert_eq!(t[2].name, "g-status");
        assert_eq!(t[2].replication_factor, 3);
    }

    #[test]
    fn the_crd_has_no_cel_rule_over_config() {
        // The API server cannot type a CEL rule over a preserve-unknown-fields map
        // ("unable to convert structural schema to CEL declarations"); the operator checks.
        let crd =
            serde_json::to_value(<KafkaConnect as kube::CustomResourceExt>::crd()).expect("crd");
        let config = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["config"];
        assert!(config.get("x-kubernetes-validations").is_none(), "{config}");
    }
}
