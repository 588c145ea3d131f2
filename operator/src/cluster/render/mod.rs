//! Pure builders of a KafkaCluster's children: same spec in, same objects out, no I/O,
//! so every child can be unit-tested and server-side apply sees no spurious changes.

pub mod config;
pub mod names;
pub mod pdb;
pub mod services;
pub mod statefulset;

pub use config::SpecError;
pub use names::{Names, Pool};

use crate::cluster::quorum::Quorum;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use runnel_crds::KafkaCluster;

/// Every child of one KafkaCluster.
#[derive(Clone, Debug)]
pub struct Children {
    /// Per-broker `server.properties`.
    pub config_map: ConfigMap,
    /// Stable broker DNS names.
    pub headless_service: Service,
    /// Client bootstrap.
    pub bootstrap_service: Service,
    /// The brokers.
    pub statefulset: StatefulSet,
    /// At most one broker down voluntarily.
    pub pdb: PodDisruptionBudget,
    /// The dedicated controller pool, when `spec.controllers` asks for one.
    pub controllers: Option<ControllerChildren>,
}

/// The children of a dedicated controller pool.
#[derive(Clone, Debug)]
pub struct ControllerChildren {
    /// Stable controller DNS names (the voters' addresses).
    pub headless_service: Service,
    /// The controllers.
    pub statefulset: StatefulSet,
    /// At most one controller down voluntarily.
    pub pdb: PodDisruptionBudget,
}

/// Renders all children of a new `kc` (its quorum as a new cluster's; tests).
#[cfg(test)]
pub fn children(kc: &KafkaCluster, default_image: &str) -> Result<Children, SpecError> {
    children_with(kc, default_image, Quorum::new_cluster(kc))
}

/// Renders all children of `kc` with its metadata quorum configured as `quorum`.
pub fn children_with(
    kc: &KafkaCluster,
    default_image: &str,
    quorum: Quorum,
) -> Result<Children, SpecError> {
    let names = Names::of(kc);
    let config_map = config::config_map_with(kc, &names, quorum)?;
    let data = config_map.data.clone().unwrap_or_default();
    let controllers = match kc.spec.controllers {
        Some(_) => Some(ControllerChildren {
            headless_service: services::headless_service_of(kc, Pool::Controllers, &names),
            statefulset: statefulset::statefulset_of(
                kc,
                Pool::Controllers,
                &names,
                default_image,
                &data,
                quorum,
            )?,
            pdb: pdb::pdb_of(kc, Pool::Controllers, &names),
        }),
        None => None,
    };
    Ok(Children {
        controllers,
        statefulset: statefulset::statefulset_of(
            kc,
            Pool::Brokers,
            &names,
            default_image,
            &data,
            quorum,
        )?,
        headless_service: services::headless_service(kc, &names),
        bootstrap_service: services::bootstrap_service(kc, &names),
        pdb: pdb::pdb(kc, &names),
        config_map,
    })
}

#[cfg(test)]
mod tests {
    use super::names::{test_cluster as cluster, CONFIG_HASH_ANNOTATION};
    use super::*;
    use serde_json::json;

    const IMG: &str = "ghcr.io/runnel-dev/runnel:0.1.0";

    fn hash(sts: &StatefulSet) -> String {
        sts.spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(CONFIG_HASH_ANNOTATION))
            .cloned()
            .expect("config hash")
    }

    fn with_pool(brokers: i32) -> KafkaCluster {
        cluster(json!({
            "replicas": brokers, "storage": {"size": "1Gi"},
            "controllers": {"replicas": 3, "storage": {"size": "1Gi"}}
        }))
    }

    #[test]
    fn scaling_brokers_with_a_controller_pool_changes_no_config_hash_nor_existing_file() {
        let a = children(&with_pool(3), IMG).expect("render");
        let b = children(&with_pool(4), IMG).expect("render");
        assert_eq!(hash(&a.statefulset), hash(&b.statefulset), "brokers");
        let (ca, cb) = (a.controllers.expect("pool"), b.controllers.expect("pool"));
        assert_eq!(hash(&ca.statefulset), hash(&cb.statefulset), "controllers");
        // The pod templates are identical: no existing pod is outdated by the scale.
        assert_eq!(
            a.statefulset.spec.as_ref().map(|s| &s.template),
            b.statefulset.spec.as_ref().map(|s| &s.template)
        );
        assert_eq!(
            ca.statefulset.spec.as_ref().map(|s| &s.template),
            cb.statefulset.spec.as_ref().map(|s| &s.template)
        );
        let (da, db) = (
            a.config_map.data.expect("data"),
            b.config_map.data.expect("data"),
        );
        for (k, v) in &da {
            assert_eq!(db.get(k), Some(v), "{k} unchanged by the scale");
        }
        assert_eq!(db.len(), da.len() + 1);
        assert!(db.contains_key("demo-broker-3.properties"));
        assert_eq!(
            b.statefulset.spec.and_then(|s| s.replicas),
            Some(4),
            "only the replica count changes"
        );
    }

    #[test]
    fn a_config_change_changes_both_pools_hashes() {
        let a = children(&with_pool(3), IMG).expect("render");
        let mut kc = with_pool(3);
        kc.spec.config = serde_json::from_value(json!({"log.retention.hours": 100})).expect("cfg");
        let b = children(&kc, IMG).expect("render");
        assert_ne!(hash(&a.statefulset), hash(&b.statefulset));
        assert_ne!(
            hash(&a.controllers.expect("pool").statefulset),
            hash(&b.controllers.expect("pool").statefulset)
        );
    }

    #[test]
    fn combined_mode_scaling_restarts_nothing_with_dynamic_voters_only() {
        let one = |n: i32, quorum: Quorum| {
            children_with(
                &cluster(json!({"replicas": n, "storage": {"size": "1Gi"}})),
                IMG,
                quorum,
            )
            .expect("render")
        };
        let dynamic = Quorum::Dynamic { formed: true };
        let (a, b) = (one(3, dynamic), one(5, dynamic));
        assert!(a.controllers.is_none());
        assert_eq!(
            a.statefulset.spec.as_ref().map(|s| &s.template),
            b.statefulset.spec.as_ref().map(|s| &s.template),
            "no existing broker restarts"
        );
        let (da, db) = (
            a.config_map.data.expect("data"),
            b.config_map.data.expect("data"),
        );
        for (k, v) in &da {
            assert_eq!(db.get(k), Some(v), "{k} changed");
        }
        assert!(db.contains_key("demo-broker-4.properties"));
        assert_eq!(
            db["demo-broker-4.format-flags"],
            "--no-initial-controllers\n"
        );
        // Static voters (a cluster made before): the voter list names every broker.
        let (a, b) = (one(3, Quorum::Static), one(4, Quorum::Static));
        assert_ne!(hash(&a.statefulset), hash(&b.statefulset));
        assert!(!a
            .config_map
            .data
            .expect("data")
            .keys()
            .any(|k| k.ends_with(".format-flags")));
    }

    #[test]
    fn a_new_combined_cluster_forms_from_node_0_alone() {
        let kc = cluster(json!({"replicas": 3, "storage": {"size": "1Gi"}}));
        let data = |formed| {
            children_with(&kc, IMG, Quorum::Dynamic { formed })
                .expect("render")
                .config_map
                .data
                .expect("data")
        };
        let (new, formed) = (data(false), data(true));
        assert_eq!(new["demo-broker-0.format-flags"], "--standalone\n");
        assert_eq!(
            new["demo-broker-1.format-flags"],
            "--no-initial-controllers\n"
        );
        assert_eq!(
            formed["demo-broker-0.format-flags"],
            "--no-initial-controllers\n"
        );
        let sts = |formed| {
            children_with(&kc, IMG, Quorum::Dynamic { formed })
                .expect("render")
                .statefulset
        };
        assert_eq!(
            hash(&sts(false)),
            hash(&sts(true)),
            "the flags restart nothing"
        );
    }

    #[test]
    fn controller_pool_children() {
        let c = children(&with_pool(3), IMG).expect("render");
        let pool = c.controllers.expect("pool");
        let sts = pool.statefulset.spec.expect("spec");
        assert_eq!(
            pool.statefulset.metadata.name.as_deref(),
            Some("demo-controller")
        );
        assert_eq!(sts.replicas, Some(3));
        assert_eq!(sts.service_name.as_deref(), Some("demo-controllers"));
        assert_eq!(
            sts.selector.match_labels.expect("sel")["app.kubernetes.io/component"],
            "controller"
        );
        let pod = sts.template.spec.expect("pod");
        let ports: Vec<i32> = pod.containers[0]
            .ports
            .iter()
            .flatten()
            .map(|p| p.container_port)
            .collect();
        assert_eq!(
            ports,
            [9093, 9095],
            "a controller serves no client listener (9095: health)"
        );
        assert_eq!(
            pool.headless_service.metadata.name.as_deref(),
            Some("demo-controllers")
        );
        assert_eq!(pool.pdb.metadata.name.as_deref(), Some("demo-controller"));
        // Brokers: no controller port, bootstrap selects brokers only.
        let bpod = c
            .statefulset
            .spec
            .expect("spec")
            .template
            .spec
            .expect("pod");
        let bports: Vec<i32> = bpod.containers[0]
            .ports
            .iter()
            .flatten()
            .map(|p| p.container_port)
            .collect();
        assert_eq!(bports, [9092, 9095]);
        assert_eq!(
            c.bootstrap_service
                .spec
                .and_then(|s| s.selector)
                .expect("sel")["app.kubernetes.io/component"],
            "broker"
        );
    }
}
