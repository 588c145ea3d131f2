//! Names and labels of a KafkaCluster's children: one place, so every builder agrees.

use runnel_crds::KafkaCluster;
use std::collections::BTreeMap;

/// Where broker data lives in the container (the PVC mount).
pub const DATA_MOUNT: &str = "/var/lib/runnel/data";
/// Where the broker configs are mounted.
pub const CONFIG_MOUNT: &str = "/etc/runnel";
/// The broker binary in the bundled image.
pub const BROKER_BIN: &str = "/usr/local/bin/runnel-broker";
/// The KRaft controller listener name.
pub const CONTROLLER_LISTENER: &str = "CONTROLLER";
/// Annotation on the pod template: hash of everything that needs a restart to apply.
pub const CONFIG_HASH_ANNOTATION: &str = "kafka.runnel.dev/config-hash";
/// The field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "runnel-operator";

/// A KafkaCluster's node pools: each is one StatefulSet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pool {
    /// The dedicated KRaft controllers (`spec.controllers`).
    Controllers,
    /// The brokers (`spec.replicas`); also the controllers when there is no controller pool.
    Brokers,
}

impl Pool {
    /// The `app.kubernetes.io/component` label of its pods.
    pub fn component(self) -> &'static str {
        match self {
            Pool::Controllers => "controller",
            Pool::Brokers => "broker",
        }
    }
    /// Kafka node id of the pod with `ordinal`.
    pub fn node_id(self, ordinal: i32) -> i32 {
        match self {
            Pool::Controllers => runnel_crds::cluster::CONTROLLER_NODE_ID_BASE + ordinal,
            Pool::Brokers => ordinal,
        }
    }
}

/// Names derived from a KafkaCluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// Cluster (resource) name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
}

impl Names {
    /// Names of `kc`'s children.
    pub fn of(kc: &KafkaCluster) -> Self {
        Names {
            cluster: kc.metadata.name.clone().unwrap_or_default(),
            namespace: kc
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
        }
    }

    /// The brokers' StatefulSet (and PDB) name; pods are `<this>-<ordinal>`.
    pub fn statefulset(&self) -> String {
        self.statefulset_of(Pool::Brokers)
    }
    /// The StatefulSet (and PDB) of `pool`: `<cluster>-broker` or `<cluster>-controller`.
    pub fn statefulset_of(&self, pool: Pool) -> String {
        format!("{}-{}", self.cluster, pool.component())
    }
    /// The headless Service giving each broker a stable DNS name.
    pub fn headless_service(&self) -> String {
        self.headless_service_of(Pool::Brokers)
    }
    /// The headless Service of `pool`: `<cluster>-brokers` or `<cluster>-controllers`.
    pub fn headless_service_of(&self, pool: Pool) -> String {
        format!("{}-{}s", self.cluster, pool.component())
    }
    /// The bootstrap Service clients connect to.
    pub fn bootstrap_service(&self) -> String {
        format!("{}-kafka-bootstrap", self.cluster)
    }
    /// The ConfigMap of per-broker `server.properties`.
    pub fn config_map(&self) -> String {
        format!("{}-broker-config", self.cluster)
    }
    /// Pod name of broker `ordinal`.
    pub fn pod(&self, ordinal: i32) -> String {
        self.pod_of(Pool::Brokers, ordinal)
    }
    /// Pod name of `pool`'s member `ordinal`.
    pub fn pod_of(&self, pool: Pool, ordinal: i32) -> String {
        format!("{}-{ordinal}", self.statefulset_of(pool))
    }
    /// Stable DNS name of broker `ordinal`.
    pub fn pod_host(&self, ordinal: i32) -> String {
        self.pod_host_of(Pool::Brokers, ordinal)
    }
    /// Stable DNS name of `pool`'s member `ordinal`.
    pub fn pod_host_of(&self, pool: Pool, ordinal: i32) -> String {
        format!(
            "{}.{}.{}.svc.cluster.local",
            self.pod_of(pool, ordinal),
            self.headless_service_of(pool),
            self.namespace
        )
    }
    /// `host:port` of the bootstrap Service on `port`.
    pub fn bootstrap_servers(&self, port: i32) -> String {
        format!("{}.{}.svc:{port}", self.bootstrap_service(), self.namespace)
    }

    /// `host:port` clients of `kc` bootstrap through (its first listener).
    pub fn bootstrap_of(kc: &KafkaCluster) -> String {
        Names::of(kc).bootstrap_servers(kc.spec.client_port())
    }
    /// Labels every child carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.labels_of(Pool::Brokers)
    }
    /// Labels of `pool`'s children.
    pub fn labels_of(&self, pool: Pool) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "runnel".into()),
            ("app.kubernetes.io/instance".into(), self.cluster.clone()),
            (
                "app.kubernetes.io/component".into(),
                pool.component().into(),
            ),
            (
                "app.kubernetes.io/managed-by".into(),
                "runnel-operator".into(),
            ),
            (runnel_crds::CLUSTER_LABEL.into(), self.cluster.clone()),
        ])
    }
    /// The labels selecting this cluster's broker pods (a stable subset of [`Names::labels`]).
    pub fn selector(&self) -> BTreeMap<String, String> {
        self.selector_of(Pool::Brokers)
    }
    /// The labels selecting `pool`'s pods.
    pub fn selector_of(&self, pool: Pool) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "runnel".into()),
            ("app.kubernetes.io/instance".into(), self.cluster.clone()),
            (
                "app.kubernetes.io/component".into(),
                pool.component().into(),
            ),
        ])
    }
    /// Metadata of a child named `name`: namespace, labels, and `kc` as controlling owner
    /// (so garbage collection removes it with the cluster).
    pub fn child_meta(&self, kc: &KafkaCluster, name: String) -> kube::api::ObjectMeta {
        self.child_meta_of(kc, Pool::Brokers, name)
    }
    /// [`Names::child_meta`] with `pool`'s labels.
    pub fn child_meta_of(
        &self,
        kc: &KafkaCluster,
        pool: Pool,
        name: String,
    ) -> kube::api::ObjectMeta {
        use kube::Resource as _;
        kube::api::ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels_of(pool)),
            owner_references: kc.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        }
    }

    /// [`Names::selector`] as a label selector string.
    pub fn selector_string(&self) -> String {
        self.selector_string_of(Pool::Brokers)
    }
    /// [`Names::selector_of`] as a label selector string.
    pub fn selector_string_of(&self, pool: Pool) -> String {
        self.selector_of(pool)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The Kafka cluster id of a KafkaCluster: its UID as a base64url UUID, so it is stable
/// for the resource's life and new for a re-created one (as `kafka-storage random-uuid`).
pub fn cluster_id(kc: &KafkaCluster) -> Option<String> {
    let uid = kc.metadata.uid.as_deref()?;
    let uuid = uuid::Uuid::parse_str(uid).ok()?;
    Some(crate::kafka::uuid_string(&uuid))
}

/// A KafkaCluster `demo` in namespace `kafka` with `spec` (JSON), for the renderers' tests.
#[cfg(test)]
pub(crate) fn test_cluster(spec: serde_json::Value) -> KafkaCluster {
    let mut kc = KafkaCluster::new("demo", serde_json::from_value(spec).expect("spec"));
    kc.metadata.namespace = Some("kafka".into());
    kc.metadata.uid = Some("6f1c3a52-9f0e-4c1b-8d47-0b2f3c4d5e6f".into());
    kc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_is_kafka_shaped() {
        let mut kc = KafkaCluster::new(
            "demo",
            serde_json::from_value(serde_json::json!({"storage": {"size": "1Gi"}})).expect("spec"),
        );
        assert_eq!(cluster_id(&kc), None);
        kc.metadata.uid = Some("6f1c3a52-9f0e-4c1b-8d47-0b2f3c4d5e6f".into());
        let id = cluster_id(&kc).expect("id");
        assert_eq!(id.len(), 22);
        assert_eq!(id, "bxw6Up8OTBuNRwsvPE1ebw");
    }

    #[test]
    fn names() {
        let n = Names {
            cluster: "demo".into(),
            namespace: "kafka".into(),
        };
        assert_eq!(n.pod(2), "demo-broker-2");
        assert_eq!(
            n.pod_host(0),
            "demo-broker-0.demo-brokers.kafka.svc.cluster.local"
        );
        assert_eq!(
            n.bootstrap_servers(9092),
            "demo-kafka-bootstrap.kafka.svc:9092"
        );
        assert_eq!(
            n.selector_string(),
            "app.kubernetes.io/component=broker,app.kubernetes.io/instance=demo,app.kubernetes.io/name=runnel"
        );
    }
}
