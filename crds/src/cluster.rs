//! `KafkaCluster`: a set of Runnel brokers.

use crate::config_map::{self, ConfigMap};
use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, PodSecurityContext, ResourceRequirements,
    SecurityContext, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Broker keys the operator derives itself; setting them in `spec.config` is refused.
pub const MANAGED_BROKER_KEYS: &[&str] = &[
    "node.id",
    "broker.id",
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "log.dirs",
    "log.dir",
    "broker.rack",
];

/// Node id of dedicated controller 0 (controller `n` is this plus `n`): brokers keep
/// their pod ordinals as node ids, so ids never collide while brokers number fewer.
pub const CONTROLLER_NODE_ID_BASE: i32 = 1000;

/// The port of the KRaft controller listener (reserved).
pub const CONTROLLER_PORT: i32 = 9093;

/// The port of a node's HTTP health endpoint (`runnel-broker --health-port`, the pods'
/// readiness probe `GET /ready`; reserved).
pub const HEALTH_PORT: i32 = 9095;

/// The annotation that pauses a KafkaCluster's reconciliation (Strimzi's
/// `strimzi.io/pause-reconciliation`): with `"true"` the operator applies nothing and
/// restarts nothing, but still reports status, with `status.plan` saying what it would do.
pub const PAUSE_RECONCILIATION_ANNOTATION: &str = "kafka.runnel.dev/pause-reconciliation";

/// The annotation that approves a rebalance in `spec.rebalance.mode: manual`: its value
/// must be the `status.plan.rebalanceId` of the plan the user reviewed (a plan that
/// changed since has another id and is not approved).
pub const APPROVE_REBALANCE_ANNOTATION: &str = "kafka.runnel.dev/approve-rebalance";

/// A Runnel Kafka cluster: brokers (that are also the KRaft controllers unless
/// `spec.controllers` gives a dedicated controller pool), in StatefulSets.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kafka.runnel.dev",
    version = "v1alpha1",
    kind = "KafkaCluster",
    plural = "kafkaclusters",
    shortname = "kc",
    category = "kafka",
    namespaced,
    status = "KafkaClusterStatus",
    derive = "PartialEq",
    doc = "A Kafka cluster of Runnel brokers",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(
        name = "Ready Brokers",
        type_ = "integer",
        json_path = ".status.readyReplicas"
    ),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version"),
    printcolumn(
        name = "Bootstrap",
        type_ = "string",
        json_path = ".status.bootstrapServers",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.controllers) == has(oldSelf.controllers)").message("spec.controllers cannot be added or removed: moving between combined brokers and a dedicated controller pool is not supported"))]
pub struct KafkaClusterSpec {
    /// Number of brokers. Without `controllers` each broker is also a KRaft controller
    /// voter (combined mode: changing this count rewrites every broker's voter list and
    /// restarts them all); with `controllers` the brokers are `process.roles=broker` and
    /// scaling them restarts none of the others.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 64))]
    pub replicas: i32,

    /// Runnel version to run. The image defaults to the operator's broker image at this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$"))]
    pub version: Option<String>,

    /// Full image reference, overriding the one derived from `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,

    /// The `metadata.version` to finalize, as `kafka-features --release-version` names it
    /// (`4.0`, `4.0-IV3`). Default: the highest level every broker supports, finalized
    /// only after every broker runs the requested version. A lower level is a downgrade,
    /// done only when Kafka allows it (no metadata format change in between).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+(-IV[0-9]+)?$"))]
    pub metadata_version: Option<String>,

    /// Image pull policy of the broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// Kafka broker configuration (`server.properties` keys). Keys the operator manages
    /// (node.id, process.roles, listeners, controller.*, log.dirs, ...) are refused with a
    /// Degraded condition. (A CEL rule cannot see into untyped map values, so the operator
    /// checks these.) `log.retention.ms`, `log.retention.bytes` and `message.max.bytes`
    /// apply without a restart: the operator sets them as cluster-wide dynamic broker
    /// configs with IncrementalAlterConfigs (and deletes them there when removed from
    /// here); a change of any other key restarts the brokers one at a time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "config_map::schema")]
    pub config: ConfigMap,

    /// Persistent storage of each broker (one PersistentVolumeClaim per broker).
    pub storage: StorageSpec,

    /// Compute resources of the broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Client listeners. Defaults to one `PLAINTEXT` listener on 9092.
    #[serde(default = "default_listeners")]
    #[schemars(length(min = 1, max = 8))]
    #[x_kube(validation = Rule::new("self.all(l, self.exists_one(m, m.name == l.name))").message("listener names must be unique"))]
    #[x_kube(validation = Rule::new("self.all(l, self.exists_one(m, m.port == l.port))").message("listener ports must be unique"))]
    pub listeners: Vec<ListenerSpec>,

    /// Rack awareness: spread brokers across this node topology key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<RackSpec>,

    /// Overrides for the pods and containers the operator creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateSpec>,

    /// A dedicated pool of KRaft controllers (`process.roles=controller`, their own
    /// StatefulSet). Absent: the brokers are the controllers (combined mode). Can only be
    /// set when the cluster is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controllers: Option<ControllerPoolSpec>,

    /// Partition rebalancing after brokers are added. Scale-down always drains the
    /// removed brokers first (and is refused while a topic's replication factor exceeds
    /// the brokers that would remain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceSpec>,
}

/// How the operator rebalances partitions across brokers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebalanceSpec {
    /// `auto` (default): when replica counts of the brokers differ by more than one (new
    /// brokers are empty), the operator reassigns partitions (AlterPartitionReassignments)
    /// until they differ by at most one, and balances preferred leaders. `manual`: the
    /// plan is shown in `status.plan.moves` with `status.plan.rebalanceId`, and applied
    /// once the annotation `kafka.runnel.dev/approve-rebalance` carries that id.
    #[serde(default)]
    pub mode: RebalanceMode,

    /// A replication throttle for the partition moves the operator makes (a scale-up
    /// rebalance, a scale-down drain, a KafkaTopic's replication-factor change), in
    /// bytes per second per broker, as
    /// `kafka-reassign-partitions --throttle` sets it: while the moves run, the topics
    /// get `leader.replication.throttled.replicas` (the moving partitions' current
    /// replicas) and `follower.replication.throttled.replicas` (their new replicas),
    /// and the brokers involved `leader.replication.throttled.rate` and
    /// `follower.replication.throttled.rate`; all are removed once no reassignment is
    /// in progress (`status.replicationThrottle` of the KafkaCluster, or of the
    /// KafkaTopic, lists what is set). Only replicas out
    /// of the ISR are held back, so in-sync replication and clients are not slowed.
    /// Absent: moves are not throttled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub throttle_bytes_per_second: Option<i64>,
}

/// Whether a rebalance plan is applied without approval.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum RebalanceMode {
    /// Applied as soon as it is made.
    #[default]
    Auto,
    /// Applied when approved by the annotation.
    Manual,
}

/// A dedicated pool of KRaft controllers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.replicas == oldSelf.replicas").message("controllers.replicas is immutable: the voter set is static (controller.quorum.voters) until dynamic quorums (KIP-853) are supported"))]
pub struct ControllerPoolSpec {
    /// Number of controllers: the KRaft voters. Odd (1, 3, 5, 7 or 9): a quorum of 2k
    /// voters tolerates no more failures than one of 2k-1 but needs one more vote.
    #[schemars(range(min = 1, max = 9))]
    #[x_kube(validation = Rule::new("self % 2 == 1").message("controllers.replicas must be odd (1, 3, 5, 7 or 9): an even quorum tolerates no more failures than the odd one below it"))]
    pub replicas: i32,

    /// Persistent storage of each controller (the metadata log).
    pub storage: StorageSpec,

    /// Compute resources of the controller container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

fn default_replicas() -> i32 {
    1
}

impl KafkaClusterSpec {
    /// The port clients bootstrap through: the first listener's (9092 when none).
    pub fn client_port(&self) -> i32 {
        self.listeners.first().map_or(9092, |l| l.port)
    }
}

fn default_listeners() -> Vec<ListenerSpec> {
    vec![ListenerSpec {
        name: "PLAINTEXT".into(),
        port: 9092,
    }]
}

/// Image pull policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when absent.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// Storage of each broker.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.size == oldSelf.size").message("storage.size cannot be changed in v1alpha1 (volume expansion is not supported yet)"))]
#[x_kube(validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)").message("storage.storageClassName is immutable"))]
pub struct StorageSpec {
    /// Size of each broker's volume, a Kubernetes quantity such as `10Gi`.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    pub size: String,
    /// Storage class of the claims; the cluster default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Delete the brokers' claims (and data) when the KafkaCluster is deleted.
    #[serde(default)]
    pub delete_claim: bool,
}

/// One client listener.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.name != 'CONTROLLER'").message("listener name CONTROLLER is reserved for the KRaft quorum"))]
#[x_kube(validation = Rule::new("self.port != 9093").message("port 9093 is reserved for the KRaft controller listener"))]
#[x_kube(validation = Rule::new("self.port != 9095").message("port 9095 is reserved for the health endpoint"))]
pub struct ListenerSpec {
    /// Kafka listener name (upper case), e.g. `PLAINTEXT`. Security protocol is PLAINTEXT.
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[A-Z][A-Z0-9_]{0,31}$"))]
    pub name: String,
    /// Container and Service port.
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
}

/// Rack awareness.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RackSpec {
    /// Node label whose value is the rack, e.g. `topology.kubernetes.io/zone`.
    #[schemars(length(min = 1, max = 316))]
    pub topology_key: String,
}

/// Pod and container overrides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSpec {
    /// Broker pod overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodTemplate>,
    /// Broker container overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerTemplate>,
}

/// Broker pod overrides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    /// Extra labels and annotations on the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataTemplate>,
    /// Affinity (merged with the rack spreading rule when `rack` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Tolerations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Node selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Priority class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Grace period for a broker's controlled shutdown (default 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub termination_grace_period_seconds: Option<i64>,
    /// Pod security context (defaults: non-root 65532, fsGroup 65532).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Image pull secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
}

/// Extra pod metadata.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
pub struct MetadataTemplate {
    /// Labels added to the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations added to the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Broker container overrides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerTemplate {
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Container security context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
}

/// Observed state of a KafkaCluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Degraded.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Brokers that exist (for the scale subresource).
    #[serde(default)]
    pub replicas: i32,
    /// Brokers that are ready and registered in the cluster.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Per-broker state.
    #[serde(default)]
    pub brokers: Vec<BrokerStatus>,
    /// `host:port` of the bootstrap Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<String>,
    /// Kafka cluster id, as the brokers report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Runnel version all brokers run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The finalized `metadata.version`, as the brokers report it (ApiVersions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_version: Option<String>,
    /// Per-controller state (the dedicated controller pool, when there is one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<BrokerStatus>,
    /// Partitions whose in-sync replicas are fewer than their topic's
    /// `min.insync.replicas` (acks=all produce to them fails); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_min_isr_partitions: Option<i32>,
    /// What the operator is about to do and why: the restarts of its rolling restart,
    /// in order, and what the next one waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanStatus>,
    /// The `spec.config` keys applied without a restart, as cluster-wide dynamic broker
    /// configs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_config: Option<DynamicConfigStatus>,
    /// The replication throttle the operator set for its partition moves
    /// (`spec.rebalance.throttleBytesPerSecond`), removed once they finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_throttle: Option<ThrottleStatus>,
    /// The KRaft metadata quorum: how its voters are set, and who votes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumStatus>,
}

/// The KRaft metadata quorum of a KafkaCluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuorumStatus {
    /// `Dynamic`: the operator adds and removes voters (KIP-853), so scaling a combined
    /// cluster restarts no broker. `Static`: `controller.quorum.voters` lists them (a
    /// controller pool, or a combined cluster created before dynamic voters).
    pub mode: String,
    /// The voters' node ids, as DescribeQuorum reports them.
    #[serde(default)]
    pub voters: Vec<i32>,
    /// The next change of a dynamic voter set, or what it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// A replication throttle the operator set for partition moves in progress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    /// The rate set on the brokers, in bytes per second.
    pub bytes_per_second: i64,
    /// The topics whose `leader.`/`follower.replication.throttled.replicas` are set.
    #[serde(default)]
    pub topics: Vec<String>,
    /// The brokers whose `leader.`/`follower.replication.throttled.rate` are set.
    #[serde(default)]
    pub brokers: Vec<i32>,
}

/// Broker configs applied without a restart (IncrementalAlterConfigs on the
/// cluster-default broker resource).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DynamicConfigStatus {
    /// The generation whose `spec.config` these are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The keys set, with their values as DescribeConfigs reports them after the change.
    #[serde(default)]
    pub applied: BTreeMap<String, String>,
    /// Why the last attempt failed (the brokers keep their previous values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The operator's plan of pod restarts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanStatus {
    /// The pods to restart, in the order they will be restarted (the first is next).
    #[serde(default)]
    pub restarts: Vec<PlannedRestart>,
    /// Why the next restart waits, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// Reconciliation is paused (`kafka.runnel.dev/pause-reconciliation: "true"`):
    /// nothing of the plan happens until the annotation is removed.
    #[serde(default)]
    pub paused: bool,
    /// The partition moves of a scale-down drain or a rebalance, submitted or about to be
    /// (AlterPartitionReassignments); empty when none is needed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<PlannedMove>,
    /// The id of the rebalance plan in `moves` (`spec.rebalance.mode: manual` applies it
    /// once `kafka.runnel.dev/approve-rebalance` carries this id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance_id: Option<String>,
    /// Where scaling stands, e.g. "draining brokers 3,4 before the StatefulSet shrinks".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<String>,
}

/// One partition's planned move.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMove {
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Its replicas now (the first is the preferred leader).
    pub from: Vec<i32>,
    /// Its replicas after the move.
    pub to: Vec<i32>,
    /// Why it moves.
    pub reason: String,
}

/// One restart of the plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRestart {
    /// Pod name.
    pub pod: String,
    /// Kafka node id.
    pub node_id: i32,
    /// Why it restarts and why at this place in the order.
    pub reason: String,
}

/// One broker's state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatus {
    /// Kafka node id (a broker's pod ordinal; a dedicated controller's ordinal plus
    /// [`CONTROLLER_NODE_ID_BASE`]).
    pub id: i32,
    /// Pod name.
    pub pod: String,
    /// The pod is ready and the broker is registered in the cluster metadata.
    pub ready: bool,
    /// Why it is not ready, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A broker registered but fenced (or not registered): clients cannot use it.
    /// Absent when the cluster metadata is unavailable, and for controllers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fenced: Option<bool>,
    /// The node is a KRaft voter.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub controller: bool,
    /// The node is the active controller (the quorum leader).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub active_controller: bool,
    /// Partitions this broker hosts a replica of but is not in the ISR of (0: caught up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_sync_partitions: Option<i32>,
}
