//! Per-broker `server.properties` and the ConfigMap holding them.

use super::names::{Names, Pool, CONTROLLER_LISTENER, DATA_MOUNT, FIELD_MANAGER};
use crate::cluster::quorum::Quorum;
use k8s_openapi::api::core::v1::ConfigMap;
use runnel_crds::cluster::{ListenerSpec, CONTROLLER_PORT, MANAGED_BROKER_KEYS};
use runnel_crds::KafkaCluster;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Why a cluster's spec cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `spec.config` holds a value or key the operator refuses.
    #[error("spec.config: {0}")]
    Config(String),
}

/// The user's broker config as properties, refusing keys the operator manages
/// (the CRD's CEL rule says the same; this covers API servers without CEL).
pub fn user_config(kc: &KafkaCluster) -> Result<BTreeMap<String, String>, SpecError> {
    let props =
        runnel_crds::config_map::to_properties(&kc.spec.config).map_err(SpecError::Config)?;
    let managed: Vec<&str> = props
        .keys()
        .map(String::as_str)
        .filter(|k| MANAGED_BROKER_KEYS.contains(k))
        .collect();
    if !managed.is_empty() {
        return Err(SpecError::Config(format!(
            "keys managed by the operator cannot be set: {}",
            managed.join(", ")
        )));
    }
    Ok(props)
}

/// The `server.properties` of broker `ordinal` of a new cluster (tests).
#[cfg(test)]
pub fn broker_properties(
    kc: &KafkaCluster,
    names: &Names,
    ordinal: i32,
) -> Result<String, SpecError> {
    node_properties(kc, names, Pool::Brokers, ordinal)
}

/// The `controller.quorum.bootstrap.servers` of a dynamic quorum: the controller
/// listeners of the first three brokers (where a node that is not a voter yet asks
/// for the leader). Not in the config hash: a node reads it only to find the leader.
pub fn bootstrap_servers(kc: &KafkaCluster, names: &Names) -> String {
    (0..kc.spec.replicas.clamp(1, 3))
        .map(|i| format!("{}:{CONTROLLER_PORT}", names.pod_host_of(Pool::Brokers, i)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The key [`bootstrap_servers`] is written under.
pub const BOOTSTRAP_SERVERS_KEY: &str = "controller.quorum.bootstrap.servers";

/// The file name suffix of a node's format flags in the ConfigMap (dynamic quorums).
pub const FORMAT_FLAGS_SUFFIX: &str = ".format-flags";

/// The `controller.quorum.voters` of `kc`: the dedicated controllers, or (combined
/// mode) every broker.
pub fn voters(kc: &KafkaCluster, names: &Names) -> String {
    let (pool, count) = match &kc.spec.controllers {
        Some(c) => (Pool::Controllers, c.replicas.max(1)),
        None => (Pool::Brokers, kc.spec.replicas.max(1)),
    };
    (0..count)
        .map(|i| {
            format!(
                "{}@{}:{CONTROLLER_PORT}",
                pool.node_id(i),
                names.pod_host_of(pool, i)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// [`node_properties_with`] with a new cluster's quorum (tests).
#[cfg(test)]
pub fn node_properties(
    kc: &KafkaCluster,
    names: &Names,
    pool: Pool,
    ordinal: i32,
) -> Result<String, SpecError> {
    node_properties_with(kc, names, pool, ordinal, Quorum::new_cluster(kc))
}

/// The `server.properties` of `pool`'s member `ordinal`: a combined broker+controller
/// without a controller pool, else `process.roles=broker` or `controller`.
/// Deterministic: same spec, same bytes. The keys applied without a restart
/// ([`crate::cluster::dynamic::DYNAMIC_KEYS`]) are not in it: they are cluster-default
/// dynamic configs in the metadata log, so changing them changes no config hash.
/// Nothing in it depends on the size of another pool, nor (with a controller pool) on the broker count but through the internal
/// topics' replication defaults, so scaling brokers leaves every other node's file as is.
/// With a dynamic `quorum` the nodes name the bootstrap servers instead of the voters,
/// and advertise their controller listener (the endpoint AddRaftVoter gives the other
/// voters).
pub fn node_properties_with(
    kc: &KafkaCluster,
    names: &Names,
    pool: Pool,
    ordinal: i32,
    quorum: Quorum,
) -> Result<String, SpecError> {
    let user = crate::cluster::dynamic::split(&user_config(kc)?).restart;
    let replicas = kc.spec.replicas.max(1);
    let combined = kc.spec.controllers.is_none();
    let listeners: &[ListenerSpec] = match pool {
        Pool::Brokers => &kc.spec.listeners,
        Pool::Controllers => &[],
    };
    let node_id = pool.node_id(ordinal);
    let mut managed: BTreeMap<&str, String> = BTreeMap::new();
    managed.insert(
        "process.roles",
        match (combined, pool) {
            (true, _) => "broker,controller",
            (false, Pool::Brokers) => "broker",
            (false, Pool::Controllers) => "controller",
        }
        .into(),
    );
    managed.insert("node.id", node_id.to_string());
    if quorum.is_dynamic() {
        managed.insert(BOOTSTRAP_SERVERS_KEY, bootstrap_servers(kc, names));
    } else {
        managed.insert("controller.quorum.voters", voters(kc, names));
    }
    let mut bind: Vec<String> = listeners
        .iter()
        .map(|l| format!("{}://0.0.0.0:{}", l.name, l.port))
        .collect();
    if combined || pool == Pool::Controllers {
        bind.push(format!("{CONTROLLER_LISTENER}://0.0.0.0:{CONTROLLER_PORT}"));
    }
    managed.insert("listeners", bind.join(","));
    if !listeners.is_empty() {
        let mut advertised: Vec<String> = listeners
            .iter()
            .map(|l| {
                format!(
                    "{}://{}:{}",
                    l.name,
                    names.pod_host_of(pool, ordinal),
                    l.port
                )
            })
            .collect();
        if quorum.is_dynamic() {
            advertised.push(format!(
                "{CONTROLLER_LISTENER}://{}:{CONTROLLER_PORT}",
                names.pod_host_of(pool, ordinal)
            ));
        }
        managed.insert("advertised.listeners", advertised.join(","));
    }
    let mut map: Vec<String> = listeners
        .iter()
        .map(|l| format!("{}:PLAINTEXT", l.name))
        .collect();
    map.push(format!("{CONTROLLER_LISTENER}:PLAINTEXT"));
    managed.insert("listener.security.protocol.map", map.join(","));
    managed.insert("controller.listener.names", CONTROLLER_LISTENER.into());
    if let Some(first) = listeners.first() {
        managed.insert("inter.broker.listener.name", first.name.clone());
    }
    managed.insert("log.dirs", format!("{DATA_MOUNT}/kafka-log"));

    // Kafka's defaults for internal topics assume three brokers; fit them to the cluster
    // unless the user chose.
    // (Only brokers host them: a controller's file does not depend on the broker count.)
    let mut defaults: BTreeMap<&str, String> = BTreeMap::new();
    if pool == Pool::Brokers {
        let rf = replicas.min(3);
        defaults.insert("offsets.topic.replication.factor", rf.to_string());
        defaults.insert("transaction.state.log.replication.factor", rf.to_string());
        defaults.insert("transaction.state.log.min.isr", replicas.min(2).to_string());
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by {FIELD_MANAGER} for KafkaCluster {}/{}, {} {ordinal}. Edit the KafkaCluster, not this file.",
        names.namespace, names.cluster, pool.component()
    );
    let _ = writeln!(out, "\n# Managed by the operator");
    for (k, v) in &managed {
        let _ = writeln!(out, "{k}={}", escape(v));
    }
    let defaults: Vec<_> = defaults
        .iter()
        .filter(|(k, _)| !user.contains_key(**k))
        .collect();
    if !defaults.is_empty() {
        let _ = writeln!(out, "\n# Operator defaults (override in spec.config)");
        for (k, v) in defaults {
            let _ = writeln!(out, "{k}={}", escape(v));
        }
    }
    if !user.is_empty() {
        let _ = writeln!(out, "\n# spec.config");
        for (k, v) in &user {
            let _ = writeln!(out, "{}={}", escape_key(k), escape(v));
        }
    }
    Ok(out)
}

/// The pools of `kc` with their sizes: the controllers (when dedicated) first.
pub fn pools(kc: &KafkaCluster) -> Vec<(Pool, i32)> {
    let mut out = Vec::new();
    if let Some(c) = &kc.spec.controllers {
        out.push((Pool::Controllers, c.replicas.max(1)));
    }
    out.push((Pool::Brokers, kc.spec.replicas.max(1)));
    out
}

/// Escapes a value for a Java properties file.
pub(crate) fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            ' ' if i == 0 => s.push_str("\\ "),
            c => s.push(c),
        }
    }
    s
}

/// Escapes a key for a Java properties file (separators too).
pub(crate) fn escape_key(k: &str) -> String {
    let mut s = String::with_capacity(k.len());
    for c in k.chars() {
        match c {
            '=' | ':' | ' ' | '#' | '!' => {
                s.push('\\');
                s.push(c);
            }
            c => s.push_str(&escape(&c.to_string())),
        }
    }
    s
}

/// [`config_map_with`] with a new cluster's quorum (tests).
#[cfg(test)]
pub fn config_map(kc: &KafkaCluster, names: &Names) -> Result<ConfigMap, SpecError> {
    config_map_with(kc, names, Quorum::new_cluster(kc))
}

/// The ConfigMap `<cluster>-broker-config`: one `<pod>.properties` per broker and
/// per dedicated controller, for the quorum `quorum`; a dynamic quorum's nodes also
/// get their format flags (`<pod>.format-flags`, read by the broker only when it formats empty
/// storage, so not in the config hash).
pub fn config_map_with(
    kc: &KafkaCluster,
    names: &Names,
    quorum: Quorum,
) -> Result<ConfigMap, SpecError> {
    let mut data = BTreeMap::new();
    for (pool, count) in pools(kc) {
        for ordinal in 0..count {
            data.insert(
                format!("{}.properties", names.pod_of(pool, ordinal)),
                node_properties_with(kc, names, pool, ordinal, quorum)?,
            );
            if let Some(flags) = quorum.format_flags(ordinal) {
                data.insert(
                    format!("{}{FORMAT_FLAGS_SUFFIX}", names.pod_of(pool, ordinal)),
                    format!("{flags}\n"),
                );
            }
        }
    }
    Ok(ConfigMap {
        metadata: names.child_meta(kc, names.config_map()),
        data: Some(data),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::cluster::render::names::test_cluster as cluster;

    fn props(text: &str) -> BTreeMap<String, String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn three_brokers_share_voters_and_differ_in_identity() {
        let kc = cluster(
            json!({"replicas": 3, "storage": {"size": "1Gi"}, "config": {"num.partitions": 6}}),
        );
        let n = Names::of(&kc);
        let p1 = props(
            &node_properties_with(&kc, &n, Pool::Brokers, 1, Quorum::Static).expect("render"),
        );
        assert_eq!(p1["node.id"], "1");
        assert_eq!(p1["process.roles"], "broker,controller");
        assert_eq!(
            p1["controller.quorum.voters"],
            "0@demo-broker-0.demo-brokers.kafka.svc.cluster.local:9093,1@demo-broker-1.demo-brokers.kafka.svc.cluster.local:9093,2@demo-broker-2.demo-brokers.kafka.svc.cluster.local:9093"
        );
        // A new cluster's (dynamic) quorum: bootstrap servers, the controller advertised.
        let d1 = props(&broker_properties(&kc, &n, 1).expect("render"));
        assert!(!d1.contains_key("controller.quorum.voters"));
        assert_eq!(
            d1["controller.quorum.bootstrap.servers"],
            "demo-broker-0.demo-brokers.kafka.svc.cluster.local:9093,demo-broker-1.demo-brokers.kafka.svc.cluster.local:9093,demo-broker-2.demo-brokers.kafka.svc.cluster.local:9093"
        );
        assert_eq!(
            d1["advertised.listeners"],
            "PLAINTEXT://demo-broker-1.demo-brokers.kafka.svc.cluster.local:9092,CONTROLLER://demo-broker-1.demo-brokers.kafka.svc.cluster.local:9093"
        );
        assert_eq!(
            p1["listeners"],
            "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093"
        );
        assert_eq!(
            p1["advertised.listeners"],
            "PLAINTEXT://demo-broker-1.demo-brokers.kafka.svc.cluster.local:9092"
        );
        assert_eq!(
            p1["listener.security.protocol.map"],
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        );
        assert_eq!(p1["inter.broker.listener.name"], "PLAINTEXT");
        assert_eq!(p1["log.dirs"], "/var/lib/runnel/data/kafka-log");
        assert_eq!(p1["num.partitions"], "6");
        assert_eq!(p1["offsets.topic.replication.factor"], "3");
        assert_eq!(p1["transaction.state.log.min.isr"], "2");
        let cm = config_map_with(&kc, &n, Quorum::Static).expect("cm");
        let data = cm.data.expect("data");
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            [
                "demo-broker-0.properties",
                "demo-broker-1.properties",
                "demo-broker-2.properties"
            ]
        );
        assert_eq!(
            cm.metadata.owner_references.expect("owner")[0].kind,
            "KafkaCluster"
        );
    }

    #[test]
    fn single_broker_fits_internal_topic_defaults_unless_user_sets_them() {
        let kc = cluster(json!({"storage": {"size": "1Gi"}}));
        let p = props(&broker_properties(&kc, &Names::of(&kc), 0).expect("render"));
        assert_eq!(p["offsets.topic.replication.factor"], "1");
        assert_eq!(p["transaction.state.log.min.isr"], "1");
        let kc = cluster(
            json!({"storage": {"size": "1Gi"}, "config": {"offsets.topic.replication.factor": 1}}),
        );
        let text = broker_properties(&kc, &Names::of(&kc), 0).expect("render");
        assert_eq!(text.matches("offsets.topic.replication.factor=").count(), 1);
    }

    #[test]
    fn managed_keys_and_non_scalars_are_refused() {
        let kc = cluster(
            json!({"storage": {"size": "1Gi"}, "config": {"node.id": 7, "log.dirs": "/x"}}),
        );
        let e = broker_properties(&kc, &Names::of(&kc), 0).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "spec.config: keys managed by the operator cannot be set: log.dirs, node.id"
        );
        let kc = cluster(json!({"storage": {"size": "1Gi"}, "config": {"a": {"b": 1}}}));
        assert!(broker_properties(&kc, &Names::of(&kc), 0).is_err());
    }

    #[test]
    fn values_are_escaped_and_render_is_deterministic() {
        let kc =
            cluster(json!({"storage": {"size": "1Gi"}, "config": {"x.y": "a\nb", "z": " lead"}}));
        let n = Names::of(&kc);
        let a = broker_properties(&kc, &n, 0).expect("render");
        assert!(a.contains("x.y=a\\nb\n"));
        assert!(a.contains("z=\\ lead\n"));
        assert_eq!(a, broker_properties(&kc, &n, 0).expect("render"));
    }

    #[test]
    fn keys_applied_without_restart_stay_out_of_the_file() {
        let kc = cluster(json!({"replicas": 3, "storage": {"size": "1Gi"},
            "config": {"log.retention.ms": 1000, "message.max.bytes": 2000, "num.partitions": 6}}));
        let n = Names::of(&kc);
        let p = props(&broker_properties(&kc, &n, 0).expect("render"));
        assert_eq!(p["num.partitions"], "6");
        assert!(!p.contains_key("log.retention.ms"));
        assert!(!p.contains_key("message.max.bytes"));
        let plain = cluster(json!({"replicas": 3, "storage": {"size": "1Gi"},
            "config": {"num.partitions": 6}}));
        assert_eq!(config_map(&kc, &n), config_map(&plain, &Names::of(&plain)));
    }

    #[test]
    fn a_controller_pool_splits_the_roles() {
        let kc = cluster(json!({
            "replicas": 3, "storage": {"size": "1Gi"}, "config": {"num.partitions": 6},
            "controllers": {"replicas": 3, "storage": {"size": "1Gi"}}
        }));
        let n = Names::of(&kc);
        let voters = "1000@demo-controller-0.demo-controllers.kafka.svc.cluster.local:9093,1001@demo-controller-1.demo-controllers.kafka.svc.cluster.local:9093,1002@demo-controller-2.demo-controllers.kafka.svc.cluster.local:9093";
        let b = props(&node_properties(&kc, &n, Pool::Brokers, 1).expect("render"));
        assert_eq!(b["process.roles"], "broker");
        assert_eq!(b["node.id"], "1");
        assert_eq!(b["controller.quorum.voters"], voters);
        assert_eq!(b["listeners"], "PLAINTEXT://0.0.0.0:9092");
        assert_eq!(b["controller.listener.names"], "CONTROLLER");
        assert_eq!(
            b["listener.security.protocol.map"],
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        );
        assert_eq!(b["offsets.topic.replication.factor"], "3");
        let c = props(&node_properties(&kc, &n, Pool::Controllers, 2).expect("render"));
        assert_eq!(c["process.roles"], "controller");
        assert_eq!(c["node.id"], "1002");
        assert_eq!(c["controller.quorum.voters"], voters);
        assert_eq!(c["listeners"], "CONTROLLER://0.0.0.0:9093");
        assert!(!c.contains_key("advertised.listeners"));
        assert!(!c.contains_key("inter.broker.listener.name"));
        assert!(!c.contains_key("offsets.topic.replication.factor"));
        assert_eq!(
            c["num.partitions"], "6",
            "spec.config applies to every node"
        );
        let data = config_map(&kc, &n).expect("cm").data.expect("data");
        assert_eq!(data.len(), 6);
        assert!(data.contains_key("demo-controller-0.properties"));
    }
}
