//! `KafkaConnector`: one Kafka Connect connector, run on the workers of a `KafkaConnect`
//! through the Connect REST API.

use crate::config_map::{self, ConfigMap};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A Kafka Connect connector running on the workers of the KafkaConnect named by
/// `spec.connectRef` (or, when absent, the `kafka.runnel.dev/connect` label).
///
/// Annotations: `kafka.runnel.dev/restart` restarts the connector and all its tasks (value
/// `onlyFailed`: only the failed ones); `kafka.runnel.dev/restart-task=<n>` restarts task
/// `n`; `kafka.runnel.dev/connector-offsets=list|alter|reset` writes the offsets to
/// `spec.listOffsets.toConfigMap`, sets them from `spec.alterOffsets.fromConfigMap`
/// (KIP-875 `PATCH /offsets`), or deletes them (`DELETE /offsets`); alter and reset only
/// while `spec.state` is `stopped`, as Connect requires. `kafka.runnel.dev/reset-offsets`
/// (any value) is the older spelling of `connector-offsets=reset`. The operator removes each
/// annotation once done.
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
    printcolumn(name = "Connect", type_ = "string", json_path = ".spec.connectRef"),
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
    /// Name of the KafkaConnect (same namespace) running this connector. Absent: the
    /// `kafka.runnel.dev/connect` label names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub connect_ref: Option<String>,
    /// Connector class, e.g. `org.apache.kafka.connect.file.FileStreamSourceConnector`.
    #[schemars(length(min = 1))]
    pub class: String,
    /// Maximum number of tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub tasks_max: Option<i32>,
    /// Connector configuration (Kafka Connect keys). `connector.class`, `tasks.max` and
    /// `name` come from the spec fields and the resource name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "config_map::schema")]
    pub config: ConfigMap,
    /// Desired state.
    #[serde(default)]
    pub state: ConnectorState,
    /// Automatic restart of a FAILED connector or tasks, with a growing back-off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_restart: Option<AutoRestart>,
    /// Where the `connector-offsets=list` annotation writes the offsets (key `offsets.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_offsets: Option<ListOffsets>,
    /// Where the `connector-offsets=alter` annotation reads the offsets (key `offsets.json`,
    /// Connect's `{"offsets": [{"partition": {...}, "offset": {...}}]}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alter_offsets: Option<AlterOffsets>,
}

/// Automatic restarts (as Strimzi's `autoRestart`): a FAILED connector or task is restarted
/// (`POST /restart?includeTasks=true&onlyFailed=true`) at once, then after 2, 6, 12, 20, 30,
/// 42, 56 back-off units (`n*n + n` after the n-th restart, at most 60); a unit is a minute
/// (the operator's `--connector-restart-backoff-seconds`). The count goes back to 0 once
/// the connector and its tasks have run without failing for the current back-off.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRestart {
    /// Whether failed connectors and tasks are restarted automatically.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// At most this many restarts in a row (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_restarts: Option<i32>,
}

fn enabled_default() -> bool {
    true
}

/// A ConfigMap the offsets are written to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListOffsets {
    /// The ConfigMap (same namespace; created if absent, only key `offsets.json` is written).
    pub to_config_map: ConfigMapRef,
}

/// A ConfigMap the offsets are read from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlterOffsets {
    /// The ConfigMap (same namespace) holding `offsets.json`.
    pub from_config_map: ConfigMapRef,
}

/// A ConfigMap of the connector's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
pub struct ConfigMapRef {
    /// Its name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// State of the automatic restarts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRestartStatus {
    /// Automatic restarts since the connector last ran without failing.
    pub count: i32,
    /// When the last automatic restart was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restart_time: Option<String>,
    /// When the next one is due if the connector or a task is still FAILED (RFC 3339);
    /// absent once `maxRestarts` is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_restart_time: Option<String>,
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
    /// Worker running the connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// `source` or `sink`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_type: Option<String>,
    /// Task states as Kafka Connect reports them.
    #[serde(default)]
    pub tasks: Vec<TaskStatus>,
    /// The connector's offsets (KIP-875 `GET /connectors/{name}/offsets`), as Connect
    /// returns them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "offsets_schema")]
    pub offsets: Option<serde_json::Value>,
    /// The last change made to the connector through the REST API behind the operator's
    /// back, found and reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drift: Option<String>,
    /// Automatic restarts (`spec.autoRestart`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_restart: Option<AutoRestartStatus>,
}

fn offsets_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
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
    /// The failure's stack trace (FAILED tasks), cut to 2,000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// Annotation: restart the connector and its failed tasks.
pub const RESTART_ANNOTATION: &str = "kafka.runnel.dev/restart";
/// Annotation: restart one task (value: the task id).
pub const RESTART_TASK_ANNOTATION: &str = "kafka.runnel.dev/restart-task";
/// Annotation: delete the connector's offsets (only while stopped); the older spelling of
/// `connector-offsets=reset`.
pub const RESET_OFFSETS_ANNOTATION: &str = "kafka.runnel.dev/reset-offsets";
/// Annotation: `list`, `alter` or `reset` the connector's offsets (as Strimzi's
/// `strimzi.io/connector-offsets`).
pub const OFFSETS_ANNOTATION: &str = "kafka.runnel.dev/connector-offsets";
/// The ConfigMap key holding offsets for `list` and `alter`.
pub const OFFSETS_KEY: &str = "offsets.json";
/// Label naming the KafkaConnect of a connector without `spec.connectRef`, and carried by
/// the Connect workers' children.
pub const CONNECT_LABEL: &str = "kafka.runnel.dev/connect";

impl KafkaConnector {
    /// The KafkaConnect this connector runs on: `spec.connectRef`, else the label.
    pub fn connect_name(&self) -> Option<String> {
        self.spec.connect_ref.clone().or_else(|| {
            self.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(CONNECT_LABEL).cloned())
        })
    }
}
