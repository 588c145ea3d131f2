//! `KafkaConnector`: one Kafka Connect connector (reconciled by a later release).

use crate::config_map::{self, ConfigMap};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A Kafka Connect connector running on the Connect workers of the cluster named by the
/// `kafka.runnel.dev/cluster` label.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[kube(
    group = "kafka.runnel.dev",
    version = "v1alpha1",
    kind = "KafkaConnector",
    plural = "kafkaconnectors",
    shortname = "kctr",
    category = "kafka",
    namespaced,
    status = "KafkaConnectorStatus",
    derive = "PartialEq",
    doc = "A Kafka Connect connector",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".metadata.labels.kafka\\.runnel\\.dev/cluster"
    ),
    printcolumn(name = "Class", type_ = "string", json_path = ".spec.class"),
    printcolumn(name = "Tasks", type_ = "integer", json_path = ".spec.tasksMax"),
    printcolumn(name = "State", type_ = "string", json_path = ".spec.state"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaConnectorSpec {
    /// Connector class, e.g. `org.apache.kafka.connect.file.FileStreamSourceConnector`.
    #[schemars(length(min = 1))]
    pub class: String,
    /// Maximum number of tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub tasks_max: Option<i32>,
    /// Connector configuration (Kafka Connect keys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "config_map::schema")]
    pub config: ConfigMap,
    /// Desired state.
    #[serde(default)]
    pub state: ConnectorState,
}

/// Desired connector state (Kafka Connect's REST states, KIP-875).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorState {
    /// Running.
    #[default]
    Running,
    /// Paused: tasks stop processing, config kept.
    Paused,
    /// Stopped: tasks shut down (KIP-875).
    Stopped,
}

/// Observed state of a KafkaConnector.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaConnectorStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Degraded.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Connector state as Kafka Connect reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_state: Option<String>,
    /// Task states as Kafka Connect reports them.
    #[serde(default)]
    pub tasks: Vec<TaskStatus>,
}

/// One connector task.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// Task id.
    pub id: i32,
    /// RUNNING, PAUSED, FAILED, ...
    pub state: String,
    /// Worker running it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
}
