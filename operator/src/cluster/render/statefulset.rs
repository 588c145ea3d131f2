//! The brokers' StatefulSet.
//!
//! `updateStrategy: OnDelete`: the StatefulSet controller never restarts a broker by
//! itself; the operator rolls them one at a time when it is safe (see `cluster::roll`).

use super::config::{SpecError, BOOTSTRAP_SERVERS_KEY, FORMAT_FLAGS_SUFFIX};
use super::names::{
    cluster_id, Names, Pool, BROKER_BIN, CONFIG_HASH_ANNOTATION, CONFIG_MOUNT, DATA_MOUNT,
};
use crate::cluster::quorum::Quorum;
use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecurityContext,
    TCPSocketAction, TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use runnel_crds::cluster::{CONTROLLER_PORT, HEALTH_PORT};
use runnel_crds::KafkaCluster;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The uid and gid the bundled image runs as.
pub const RUNNEL_UID: i64 = 65532;

/// The image a cluster runs: `spec.image`, else the operator's broker image at `spec.version`.
pub fn image(kc: &KafkaCluster, default_image: &str) -> String {
    if let Some(i) = &kc.spec.image {
        return i.clone();
    }
    match &kc.spec.version {
        Some(v) => {
            // Replace the tag (not a registry port) of the default image.
            let repo = match default_image.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => repo,
                _ => default_image,
            };
            format!("{repo}:{v}")
        }
        None => default_image.to_string(),
    }
}

/// The name of the broker container in a broker pod.
pub const BROKER_CONTAINER: &str = "broker";

/// The version a cluster runs: `spec.version`, else the tag of its image.
pub fn version(kc: &KafkaCluster, default_image: &str) -> String {
    if let Some(v) = &kc.spec.version {
        return v.clone();
    }
    let img = image(kc, default_image);
    match img.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag.to_string(),
        _ => "unknown".into(),
    }
}

/// The config hash of `pool`'s pod template: what its members need a restart for.
///
/// Combined mode: every file (each broker's voter list names every broker, so any
/// scale change rewrites them all). With a controller pool: the file of the pool's
/// member 0, which differs from the others' only in the node's own identity (node id,
/// advertised host); a file added for a new broker changes no existing member's hash.
///
/// Combined mode with a dynamic quorum ([`Quorum::Dynamic`]): the file of member 0
/// without `controller.quorum.bootstrap.servers` (a node reads it only to find the
/// leader before it votes) and without the format flags (read only when empty storage
/// is formatted), so scaling restarts no existing broker.
pub fn pool_config_hash(
    kc: &KafkaCluster,
    pool: Pool,
    names: &Names,
    config_data: &BTreeMap<String, String>,
    quorum: Quorum,
) -> String {
    if kc.spec.controllers.is_none() && !quorum.is_dynamic() {
        return config_hash(config_data);
    }
    let key = format!("{}.properties", names.pod_of(pool, 0));
    let bootstrap = format!("{BOOTSTRAP_SERVERS_KEY}=");
    let one: BTreeMap<String, String> = config_data
        .get_key_value(&key)
        .map(|(k, v)| {
            let v = v
                .lines()
                .filter(|l| !l.starts_with(&bootstrap))
                .fold(String::new(), |acc, l| acc + l + "\n");
            (k.clone(), v)
        })
        .into_iter()
        .collect();
    config_hash(&one)
}

/// Hash of the broker configs: a change needs a broker restart, so it goes into the pod template.
pub fn config_hash(config_data: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in config_data {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `p` with the timings every probe of a node shares.
fn timed(p: Probe, initial: i32, period: i32, failures: i32) -> Probe {
    Probe {
        initial_delay_seconds: Some(initial),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failures),
        ..p
    }
}

fn tcp_probe(port: i32, initial: i32, period: i32, failures: i32) -> Probe {
    let action = TCPSocketAction {
        port: IntOrString::Int(port),
        ..Default::default()
    };
    timed(
        Probe {
            tcp_socket: Some(action),
            ..Default::default()
        },
        initial,
        period,
        failures,
    )
}

fn ready_probe(initial: i32, period: i32, failures: i32) -> Probe {
    let action = HTTPGetAction {
        path: Some("/ready".into()),
        port: IntOrString::Int(HEALTH_PORT),
        ..Default::default()
    };
    timed(
        Probe {
            http_get: Some(action),
            ..Default::default()
        },
        initial,
        period,
        failures,
    )
}

/// The StatefulSet `<cluster>-broker` of a new cluster (tests).
#[cfg(test)]
pub fn statefulset(
    kc: &KafkaCluster,
    names: &Names,
    default_image: &str,
    config_data: &BTreeMap<String, String>,
) -> Result<StatefulSet, SpecError> {
    statefulset_of(
        kc,
        Pool::Brokers,
        names,
        default_image,
        config_data,
        Quorum::new_cluster(kc),
    )
}

/// The StatefulSet of `pool`: `<cluster>-broker` or `<cluster>-controller`.
pub fn statefulset_of(
    kc: &KafkaCluster,
    pool: Pool,
    names: &Names,
    default_image: &str,
    config_data: &BTreeMap<String, String>,
    quorum: Quorum,
) -> Result<StatefulSet, SpecError> {
    let spec = &kc.spec;
    let (replicas, storage, resources, listeners) = match (pool, &spec.controllers) {
        (Pool::Controllers, Some(c)) => (c.replicas, &c.storage, &c.resources, &[][..]),
        _ => (
            spec.replicas,
            &spec.storage,
            &spec.resources,
            &spec.listeners[..],
        ),
    };
    let pod_tpl = spec
        .template
        .as_ref()
        .and_then(|t| t.pod.clone())
        .unwrap_or_default();
    let ctr_tpl = spec
        .template
        .as_ref()
        .and_then(|t| t.container.clone())
        .unwrap_or_default();

    let mut labels = names.labels_of(pool);
    let mut annotations = BTreeMap::new();
    if let Some(m) = &pod_tpl.metadata {
        for (k, v) in m.labels.iter().flatten() {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        annotations.extend(m.annotations.clone().unwrap_or_default());
    }
    annotations.insert(
        CONFIG_HASH_ANNOTATION.into(),
        pool_config_hash(kc, pool, names, config_data, quorum),
    );

    let mut command = vec![
        BROKER_BIN.to_string(),
        format!("{CONFIG_MOUNT}/$(POD_NAME).properties"),
    ];
    if let Some(id) = cluster_id(kc) {
        command.push("--cluster-id".into());
        command.push(id);
    }
    command.push("--health-port".into());
    command.push(HEALTH_PORT.to_string());
    if quorum.is_dynamic() {
        command.push("--format-flags-file".into());
        command.push(format!("{CONFIG_MOUNT}/$(POD_NAME){FORMAT_FLAGS_SUFFIX}"));
    }
    let mut env = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("POD_IP", "status.podIP"),
    ];
    env.extend(ctr_tpl.env.clone().unwrap_or_default());

    let mut ports: Vec<ContainerPort> = listeners
        .iter()
        .map(|l| ContainerPort {
            name: Some(
                format!("l-{}", l.name.to_lowercase().replace('_', "-"))
                    .chars()
                    .take(15)
                    .collect(),
            ),
            container_port: l.port,
            protocol: Some("TCP".into()),
            ..Default::default()
        })
        .collect();
    let controller_port = spec.controllers.is_none() || pool == Pool::Controllers;
    if controller_port {
        ports.push(ContainerPort {
            name: Some("controller".into()),
            container_port: CONTROLLER_PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        });
    }
    // Liveness: a broker's client port, a controller's controller port (readiness is
    // the health endpoint's /ready below).
    let live_port = match pool {
        Pool::Controllers => CONTROLLER_PORT,
        Pool::Brokers if controller_port => CONTROLLER_PORT,
        Pool::Brokers => spec.client_port(),
    };
    ports.push(ContainerPort {
        name: Some("health".into()),
        container_port: HEALTH_PORT,
        protocol: Some("TCP".into()),
        ..Default::default()
    });

    let container = Container {
        name: BROKER_CONTAINER.into(),
        image: Some(image(kc, default_image)),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_string()),
        command: Some(command),
        env: Some(env),
        ports: Some(ports),
        // Ready once the node serves (a broker registered, unfenced and caught up; a
        // controller with a quorum leader), not once a port is bound: the health
        // endpoint, not a TCP probe.
        readiness_probe: Some(ready_probe(2, 5, 3)),
        liveness_probe: Some(tcp_probe(live_port, 30, 10, 6)),
        resources: resources.clone(),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "data".into(),
                mount_path: DATA_MOUNT.into(),
                ..Default::default()
            },
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_MOUNT.into(),
                read_only: Some(true),
                ..Default::default()
            },
        ]),
        security_context: Some(ctr_tpl.security_context.clone().unwrap_or(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })),
        ..Default::default()
    };

    let topology_spread_constraints = spec.rack.as_ref().map(|r| {
        vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: r.topology_key.clone(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(names.selector_of(pool)),
                ..Default::default()
            }),
            ..Default::default()
        }]
    });

    let pod_spec =
        PodSpec {
            containers: vec![container],
            volumes: Some(vec![Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: names.config_map(),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            security_context: Some(pod_tpl.security_context.clone().unwrap_or(
                PodSecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(RUNNEL_UID),
                    run_as_group: Some(RUNNEL_UID),
                    fs_group: Some(RUNNEL_UID),
                    seccomp_profile: Some(SeccompProfile {
                        type_: "RuntimeDefault".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
            termination_grace_period_seconds: Some(
                pod_tpl.termination_grace_period_seconds.unwrap_or(60),
            ),
            affinity: pod_tpl.affinity.clone(),
            tolerations: pod_tpl.tolerations.clone(),
            node_selector: pod_tpl.node_selector.clone(),
            priority_class_name: pod_tpl.priority_class_name.clone(),
            image_pull_secrets: pod_tpl.image_pull_secrets.clone(),
            topology_spread_constraints,
            ..Default::default()
        };

    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(names.selector_of(pool)),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(storage.size.clone()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };

    Ok(StatefulSet {
        metadata: names.child_meta_of(kc, pool, names.statefulset_of(pool)),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(names.headless_service_of(pool)),
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..Default::default()
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(
                        if storage.delete_claim {
                            "Delete"
                        } else {
                            "Retain"
                        }
                        .into(),
                    ),
                    when_scaled: Some("Retain".into()),
                },
            ),
            selector: LabelSelector {
                match_labels: Some(names.selector_of(pool)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(pod_spec),
            },
            volume_claim_templates: Some(vec![claim]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::cluster::render::names::test_cluster as cluster;

    const IMG: &str = "ghcr.io/runnel-dev/runnel:0.1.0";

    #[test]
    fn image_and_version() {
        let kc = cluster(json!({"storage": {"size": "1Gi"}}));
        assert_eq!(image(&kc, IMG), IMG);
        assert_eq!(version(&kc, IMG), "0.1.0");
        let kc = cluster(json!({"storage": {"size": "1Gi"}, "version": "0.2.0"}));
        assert_eq!(image(&kc, IMG), "ghcr.io/runnel-dev/runnel:0.2.0");
        assert_eq!(
            image(&kc, "localhost:5000/runnel"),
            "localhost:5000/runnel:0.2.0"
        );
        let kc = cluster(json!({"storage": {"size": "1Gi"}, "image": "my/runnel:dev"}));
        assert_eq!(version(&kc, IMG), "dev");
    }

    #[test]
    fn statefulset_shape() {
        let kc = cluster(json!({
            "replicas": 3, "storage": {"size": "5Gi", "deleteClaim": true, "storageClassName": "fast"},
            "rack": {"topologyKey": "topology.kubernetes.io/zone"},
            "template": {"pod": {"metadata": {"labels": {"team": "a", "app.kubernetes.io/name": "evil"}}}}
        }));
        let n = Names::of(&kc);
        let data = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            (
                "demo-broker-0.properties".to_string(),
                "node.id=0\ncontroller.quorum.bootstrap.servers=x:9093\n".to_string(),
            ),
        ]);
        let sts = statefulset(&kc, &n, IMG, &data).expect("render");
        let s = sts.spec.expect("spec");
        assert_eq!(s.replicas, Some(3));
        assert_eq!(
            s.update_strategy.and_then(|u| u.type_).as_deref(),
            Some("OnDelete")
        );
        assert_eq!(s.pod_management_policy.as_deref(), Some("Parallel"));
        assert_eq!(s.service_name.as_deref(), Some("demo-brokers"));
        assert_eq!(
            s.persistent_volume_claim_retention_policy
                .and_then(|p| p.when_deleted)
                .as_deref(),
            Some("Delete")
        );
        let tpl = s.template;
        let meta = tpl.metadata.expect("meta");
        let labels = meta.labels.expect("labels");
        assert_eq!(labels["team"], "a");
        assert_eq!(
            labels["app.kubernetes.io/name"], "runnel",
            "user labels cannot break the selector"
        );
        // A dynamic quorum: the hash is member 0's file without its bootstrap servers.
        let member0 = BTreeMap::from([(
            "demo-broker-0.properties".to_string(),
            "node.id=0\n".to_string(),
        )]);
        assert_eq!(
            meta.annotations.expect("ann")[CONFIG_HASH_ANNOTATION],
            config_hash(&member0)
        );
        let pod = tpl.spec.expect("pod");
        let c = &pod.containers[0];
        assert_eq!(
            c.command.clone().expect("cmd"),
            [
                "/usr/local/bin/runnel-broker",
                "/etc/runnel/$(POD_NAME).properties",
                "--cluster-id",
                "bxw6Up8OTBuNRwsvPE1ebw",
                "--health-port",
                "9095",
                "--format-flags-file",
                "/etc/runnel/$(POD_NAME).format-flags"
            ]
        );
        let ready = c.readiness_probe.clone().expect("readiness");
        let get = ready
            .http_get
            .expect("an HTTP readiness probe, not a bound port");
        assert_eq!(
            (get.path.as_deref(), get.port),
            (Some("/ready"), IntOrString::Int(HEALTH_PORT))
        );
        assert_eq!(pod.security_context.expect("psc").run_as_user, Some(65532));
        assert_eq!(
            pod.topology_spread_constraints.expect("tsc")[0].topology_key,
            "topology.kubernetes.io/zone"
        );
        let claim = &s.volume_claim_templates.expect("vct")[0];
        let cs = claim.spec.clone().expect("claim spec");
        assert_eq!(cs.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            cs.resources.and_then(|r| r.requests).expect("req")["storage"],
            Quantity("5Gi".into())
        );
    }

    #[test]
    fn config_hash_changes_with_config_only() {
        let a = BTreeMap::from([("k".to_string(), "v1".to_string())]);
        let b = BTreeMap::from([("k".to_string(), "v2".to_string())]);
        assert_ne!(config_hash(&a), config_hash(&b));
        assert_eq!(config_hash(&a), config_hash(&a.clone()));
        assert_eq!(config_hash(&a).len(), 16);
    }
}
