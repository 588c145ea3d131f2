//! Pure builders of a KafkaConnect's children: the worker ConfigMap, the StatefulSet of
//! Apache Kafka Connect workers (distributed mode) and the REST Service. Same spec in,
//! same objects out, no I/O.

use super::plugins;
use crate::cluster::render::config::{escape, escape_key};
use crate::cluster::render::names::CONFIG_HASH_ANNOTATION;
use crate::cluster::render::statefulset::config_hash;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SeccompProfile, SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use runnel_crds::config_map::to_properties;
use runnel_crds::connect::OWNED_WORKER_KEYS;
use runnel_crds::connector::CONNECT_LABEL;
use runnel_crds::KafkaConnect;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The Connect REST port.
pub const REST_PORT: i32 = 8083;
/// Where the ConfigMap is mounted.
pub const CONFIG_MOUNT: &str = "/etc/connect";
/// Kafka's jars in the Connect image.
pub const KAFKA_LIBS: &str = "/opt/kafka/libs";
/// The plugin path in the Connect image (one directory per bundled plugin).
pub const PLUGIN_PATH: &str = "/opt/kafka/plugins";
/// The uid the Connect image runs as (distroless's `nonroot`, as the broker image).
pub const CONNECT_UID: i64 = 65532;

/// Why a KafkaConnect cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectSpecError {
    /// A config value is not a scalar, or a key is the operator's.
    #[error("{0}")]
    Config(String),
    /// A plugin is neither bundled in the image nor Maven coordinates.
    #[error("plugin `{0}` is not bundled in the Connect image (bundled: {1}) nor Maven coordinates group:artifact:version; list downloads in spec.build.plugins")]
    UnknownPlugin(String, String),
    /// A plugin to download is not well formed.
    #[error("{0}")]
    Plugin(String),
}

/// Names of a KafkaConnect's children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectNames {
    /// The KafkaConnect's name.
    pub connect: String,
    /// Namespace.
    pub namespace: String,
}

impl ConnectNames {
    /// Names of `kc`'s children.
    pub fn of(kc: &KafkaConnect) -> Self {
        ConnectNames {
            connect: kc.metadata.name.clone().unwrap_or_default(),
            namespace: kc
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
        }
    }
    /// The StatefulSet of workers (and the Deployment earlier versions made): `<name>-connect`.
    pub fn workers(&self) -> String {
        format!("{}-connect", self.connect)
    }
    /// The REST Service: `<name>-connect-api`.
    pub fn service(&self) -> String {
        format!("{}-connect-api", self.connect)
    }
    /// The worker ConfigMap: `<name>-connect-config`.
    pub fn config_map(&self) -> String {
        format!("{}-connect-config", self.connect)
    }
    /// The REST API base URL (through the Service).
    pub fn url(&self) -> String {
        format!(
            "http://{}.{}.svc:{REST_PORT}",
            self.service(),
            self.namespace
        )
    }
    /// The labels selecting the workers.
    pub fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "runnel".into()),
            ("app.kubernetes.io/instance".into(), self.connect.clone()),
            ("app.kubernetes.io/component".into(), "connect".into()),
            (CONNECT_LABEL.into(), self.connect.clone()),
        ])
    }
    /// [`ConnectNames::selector`] as a label selector string.
    pub fn selector_string(&self) -> String {
        self.selector()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
    /// Labels of every child.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = self.selector();
        l.insert(
            "app.kubernetes.io/managed-by".into(),
            "runnel-operator".into(),
        );
        l
    }
    /// Metadata of a child named `name`, owned by `kc`.
    pub fn child_meta(&self, kc: &KafkaConnect, name: String) -> ObjectMeta {
        use kube::Resource as _;
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            owner_references: kc.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        }
    }
}

/// Every child of one KafkaConnect.
#[derive(Clone, Debug)]
pub struct ConnectChildren {
    /// `worker.properties` and `log4j2.properties`.
    pub config_map: ConfigMap,
    /// The workers (`OnDelete`: the operator rolls them, `connect/roll.rs`).
    pub stateful_set: StatefulSet,
    /// The REST API.
    pub service: Service,
}

/// The worker properties: the operator's keys (bootstrap, group, internal topics,
/// REST listener, plugin path), Kafka's sample defaults the user did not set (JSON
/// converters), then `spec.config`.
pub fn worker_properties(kc: &KafkaConnect, bootstrap: &str) -> Result<String, ConnectSpecError> {
    let user = to_properties(&kc.spec.config).map_err(ConnectSpecError::Config)?;
    if let Some(k) = user
        .keys()
        .find(|k| OWNED_WORKER_KEYS.contains(&k.as_str()))
    {
        return Err(ConnectSpecError::Config(format!(
            "config key `{k}` is set by the operator; use the spec fields"
        )));
    }
    let mut out =
        String::from("# Rendered by runnel-operator from the KafkaConnect; do not edit.\n");
    let _ = writeln!(out, "bootstrap.servers={}", escape(bootstrap));
    let _ = writeln!(out, "group.id={}", escape(&kc.spec.group_id));
    for t in kc.internal_topics() {
        let _ = writeln!(out, "{}={}", t.key, escape(&t.name));
        let rf_key = t.key.replace(".topic", ".replication.factor");
        let _ = writeln!(out, "{rf_key}={}", t.replication_factor);
    }
    let _ = writeln!(out, "listeners=http://0.0.0.0:{REST_PORT}");
    let _ = writeln!(out, "rest.advertised.port={REST_PORT}");
    let (_, downloads) = plugins::resolve(kc)?;
    if downloads.is_empty() {
        let _ = writeln!(out, "plugin.path={PLUGIN_PATH}");
    } else {
        let _ = writeln!(out, "plugin.path={PLUGIN_PATH},{}", plugins::DOWNLOAD_PATH);
    }
    // Kafka's config/connect-distributed.properties; converters are required keys.
    let defaults = [
        (
            "key.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("key.converter.schemas.enable", "true"),
        ("value.converter.schemas.enable", "true"),
        ("offset.flush.interval.ms", "10000"),
    ];
    let missing: Vec<_> = defaults
        .iter()
        .filter(|(k, _)| !user.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "\n# Defaults of Kafka's connect-distributed.properties"
        );
        for (k, v) in missing {
            let _ = writeln!(out, "{k}={v}");
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

/// The workers' log4j2 configuration (console, INFO).
pub const LOG4J2: &str = "status = warn\n\
appender.console.type = Console\n\
appender.console.name = STDOUT\n\
appender.console.layout.type = PatternLayout\n\
appender.console.layout.pattern = [%d] %p %X{connector.context}%m (%c:%L)%n\n\
rootLogger.level = INFO\n\
rootLogger.appenderRef.stdout.ref = STDOUT\n";

/// The ConfigMap of `worker.properties` and `log4j2.properties`, and, when plugins are
/// downloaded, the downloader's source and plan (`connect/plugins.rs`).
pub fn config_map(
    kc: &KafkaConnect,
    names: &ConnectNames,
    bootstrap: &str,
) -> Result<ConfigMap, ConnectSpecError> {
    let mut data = BTreeMap::from([
        (
            "worker.properties".into(),
            worker_properties(kc, bootstrap)?,
        ),
        ("log4j2.properties".into(), LOG4J2.into()),
    ]);
    let (_, downloads) = plugins::resolve(kc)?;
    if !downloads.is_empty() {
        data.insert(plugins::FETCHER_KEY.into(), plugins::FETCHER_SOURCE.into());
        data.insert(plugins::PLAN_KEY.into(), plugins::plan_file(&downloads));
    }
    Ok(ConfigMap {
        metadata: names.child_meta(kc, names.config_map()),
        data: Some(data),
        ..Default::default()
    })
}

/// The worker start: the ConfigMap's file plus this pod's address as
/// `rest.advertised.host.name` (so workers forward REST calls to each other by pod IP),
/// then `ConnectDistributed`.
pub fn worker_command() -> Vec<String> {
    let script = format!(
        "set -e; cp {CONFIG_MOUNT}/worker.properties /tmp/worker.properties; \
         echo \"rest.advertised.host.name=$POD_IP\" >> /tmp/worker.properties; \
         exec java $KAFKA_HEAP_OPTS -Dlog4j2.configurationFile={CONFIG_MOUNT}/log4j2.properties \
         -cp '{KAFKA_LIBS}/*' org.apache.kafka.connect.cli.ConnectDistributed /tmp/worker.properties"
    );
    vec!["/bin/sh".into(), "-c".into(), script]
}

/// The StatefulSet of workers. The pod template carries the hash of the worker files, so
/// a config change makes a new revision; the update strategy is `OnDelete`, so the
/// operator restarts the workers one at a time, each once the group has rebalanced
/// (`connect/roll.rs`). Pods start in parallel (their names carry no identity Connect uses).
/// Ready means `GET /health` answers (KIP-1017: the worker joined the group).
pub fn stateful_set(
    kc: &KafkaConnect,
    names: &ConnectNames,
    default_image: &str,
    config_data: &BTreeMap<String, String>,
) -> StatefulSet {
    let image = kc
        .spec
        .image
        .clone()
        .unwrap_or_else(|| default_image.to_string());
    let mut annotations = BTreeMap::new();
    annotations.insert(CONFIG_HASH_ANNOTATION.to_string(), config_hash(config_data));
    let probe = |path: &str, initial: i32, failure: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(REST_PORT),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial),
        period_seconds: Some(5),
        timeout_seconds: Some(3),
        failure_threshold: Some(failure),
        ..Default::default()
    };
    let security = SecurityContext {
        allow_privilege_escalation: Some(false),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let downloads = config_data.contains_key(plugins::PLAN_KEY);
    let mut mounts = vec![VolumeMount {
        name: "config".into(),
        mount_path: CONFIG_MOUNT.into(),
        read_only: Some(true),
        ..Default::default()
    }];
    let mut volumes = vec![Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: names.config_map(),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if downloads {
        mounts.push(VolumeMount {
            name: plugins::VOLUME.into(),
            mount_path: plugins::DOWNLOAD_PATH.into(),
            read_only: Some(true),
            ..Default::default()
        });
        volumes.push(Volume {
            name: plugins::VOLUME.into(),
            empty_dir: Some(Default::default()),
            ..Default::default()
        });
    }
    let init_containers = downloads.then(|| vec![plugins::init_container(&image, &security)]);
    let container = Container {
        name: "connect".into(),
        image: Some(image),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(worker_command()),
        env: Some(vec![
            EnvVar {
                name: "POD_IP".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "status.podIP".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            EnvVar {
                name: "KAFKA_HEAP_OPTS".into(),
                value: Some("-Xms256m -Xmx512m".into()),
                ..Default::default()
            },
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("rest".into()),
            container_port: REST_PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        readiness_probe: Some(probe("/health", 5, 3)),
        liveness_probe: Some(probe("/", 60, 6)),
        resources: kc.spec.resources.clone(),
        volume_mounts: Some(mounts),
        security_context: Some(security),
        ..Default::default()
    };
    StatefulSet {
        metadata: names.child_meta(kc, names.workers()),
        spec: Some(StatefulSetSpec {
            replicas: Some(kc.spec.replicas),
            selector: LabelSelector {
                match_labels: Some(names.selector()),
                ..Default::default()
            },
            service_name: Some(names.service()),
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..Default::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(names.labels()),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    init_containers,
                    containers: vec![container],
                    volumes: Some(volumes),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(CONNECT_UID),
                        run_as_group: Some(CONNECT_UID),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    // Connect stops its tasks and leaves the group on SIGTERM.
                    termination_grace_period_seconds: Some(60),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The REST Service (`<name>-connect-api`, port 8083).
pub fn service(kc: &KafkaConnect, names: &ConnectNames) -> Service {
    Service {
        metadata: names.child_meta(kc, names.service()),
        spec: Some(ServiceSpec {
            selector: Some(names.selector()),
            ports: Some(vec![ServicePort {
                name: Some("http-rest".into()),
                port: REST_PORT,
                target_port: Some(IntOrString::Int(REST_PORT)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Renders every child of `kc` for workers bootstrapping through `bootstrap`.
pub fn children(
    kc: &KafkaConnect,
    bootstrap: &str,
    default_image: &str,
) -> Result<ConnectChildren, ConnectSpecError> {
    plugins::resolve(kc)?;
    let names = ConnectNames::of(kc);
    let config_map = config_map(kc, &names, bootstrap)?;
    let data = config_map.data.clone().unwrap_or_default();
    Ok(ConnectChildren {
        stateful_set: stateful_set(kc, &names, default_image, &data),
        service: service(kc, &names),
        config_map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const IMG: &str = "runnel.dev/connect:4.1.1";

    fn connect(spec: serde_json::Value) -> KafkaConnect {
        let mut kc = KafkaConnect::new("conn", serde_json::from_value(spec).expect("spec"));
        kc.metadata.namespace = Some("kafka".into());
        kc.metadata.uid = Some("6f1c3a52-9f0e-4c1b-8d47-0b2f3c4d5e6f".into());
        kc
    }

    fn props(text: &str) -> BTreeMap<String, String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn hash(d: &StatefulSet) -> String {
        d.spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(CONFIG_HASH_ANNOTATION))
            .cloned()
            .expect("hash")
    }

    #[test]
    fn worker_properties_own_keys_defaults_and_user_config() {
        let kc = connect(json!({
            "clusterRef": "demo", "groupId": "g1",
            "storage": {"replicationFactor": 1},
            "config": {"value.converter": "org.apache.kafka.connect.storage.StringConverter",
                       "offset.flush.interval.ms": 1000}
        }));
        let p = props(&worker_properties(&kc, "demo-kafka-bootstrap.kafka.svc:9092").expect("ok"));
        assert_eq!(
            p["bootstrap.servers"],
            "demo-kafka-bootstrap.kafka.svc:9092"
        );
        assert_eq!(p["group.id"], "g1");
        assert_eq!(p["config.storage.topic"], "g1-configs");
        assert_eq!(p["offset.storage.topic"], "g1-offsets");
        assert_eq!(p["status.storage.topic"], "g1-status");
        for k in ["config", "offset", "status"] {
            assert_eq!(p[&format!("{k}.storage.replication.factor")], "1");
        }
        assert_eq!(p["listeners"], "http://0.0.0.0:8083");
        assert_eq!(p["plugin.path"], PLUGIN_PATH);
        assert_eq!(
            p["key.converter"],
            "org.apache.kafka.connect.json.JsonConverter"
        );
        assert_eq!(
            p["value.converter"], "org.apache.kafka.connect.storage.StringConverter",
            "the user's converter, not the default"
        );
        assert_eq!(p["offset.flush.interval.ms"], "1000");
        let text = worker_properties(&kc, "b:9092").expect("ok");
        assert_eq!(text.matches("value.converter=").count(), 1);
        assert_eq!(text.matches("offset.flush.interval.ms=").count(), 1);
    }

    #[test]
    fn owned_keys_non_scalars_and_unknown_plugins_are_refused() {
        for bad in [
            json!({"group.id": "x"}),
            json!({"plugin.path": "/x"}),
            json!({"status.storage.replication.factor": 1}),
        ] {
            let kc = connect(json!({"clusterRef": "demo", "groupId": "g", "config": bad}));
            let e = children(&kc, "b:9092", IMG).expect_err("refused");
            assert!(e.to_string().contains("set by the operator"), "{e}");
        }
        let kc = connect(json!({"clusterRef": "demo", "groupId": "g", "config": {"a": [1]}}));
        assert!(matches!(
            children(&kc, "b:9092", IMG),
            Err(ConnectSpecError::Config(_))
        ));
        let kc = connect(json!({"clusterRef": "demo", "groupId": "g",
                                "plugins": ["connect-file", "debezium-connector-postgres"]}));
        let e = children(&kc, "b:9092", IMG).expect_err("refused");
        assert!(
            matches!(e, ConnectSpecError::UnknownPlugin(ref p, _) if p.starts_with("debezium"))
        );
        let kc =
            connect(json!({"clusterRef": "demo", "groupId": "g", "plugins": ["connect-file"]}));
        assert!(children(&kc, "b:9092", IMG).is_ok());
    }

    #[test]
    fn deployment_runs_connect_distributed_with_the_rest_port_and_labels() {
        let kc = connect(json!({"clusterRef": "demo", "groupId": "g", "replicas": 2,
                                "resources": {"limits": {"memory": "1Gi"}}}));
        let c = children(&kc, "b:9092", IMG).expect("render");
        let d = c.stateful_set.spec.clone().expect("spec");
        assert_eq!(
            c.stateful_set.metadata.name.as_deref(),
            Some("conn-connect")
        );
        assert_eq!(d.replicas, Some(2));
        assert_eq!(
            d.update_strategy.as_ref().and_then(|u| u.type_.as_deref()),
            Some("OnDelete"),
            "the operator rolls the workers"
        );
        let readiness = d.template.spec.as_ref().expect("pod").containers[0]
            .readiness_probe
            .clone()
            .expect("probe");
        assert_eq!(
            readiness.http_get.and_then(|h| h.path).as_deref(),
            Some("/health"),
            "ready = joined the group (KIP-1017)"
        );
        let sel = d.selector.match_labels.clone().expect("sel");
        assert_eq!(sel[CONNECT_LABEL], "conn");
        let pod = d.template.spec.clone().expect("pod");
        let ctr = &pod.containers[0];
        assert_eq!(ctr.image.as_deref(), Some(IMG));
        let cmd = ctr.command.clone().expect("cmd").join(" ");
        assert!(
            cmd.contains("org.apache.kafka.connect.cli.ConnectDistributed"),
            "{cmd}"
        );
        assert!(cmd.contains("rest.advertised.host.name=$POD_IP"), "{cmd}");
        assert_eq!(ctr.ports.as_ref().expect("ports")[0].container_port, 8083);
        assert!(ctr.resources.is_some());
        assert_eq!(
            pod.volumes.expect("vol")[0]
                .config_map
                .as_ref()
                .map(|c| c.name.clone()),
            Some("conn-connect-config".into())
        );
        let owner = c.stateful_set.metadata.owner_references.expect("owner");
        assert_eq!(owner[0].kind, "KafkaConnect");
        let svc = c.service.spec.expect("svc");
        assert_eq!(svc.selector.expect("sel")[CONNECT_LABEL], "conn");
        assert_eq!(svc.ports.expect("ports")[0].port, 8083);
        assert_eq!(
            ConnectNames::of(&kc).url(),
            "http://conn-connect-api.kafka.svc:8083"
        );
        // An explicit image wins.
        let kc = connect(json!({"clusterRef": "demo", "groupId": "g", "image": "my/connect:1"}));
        let c = children(&kc, "b:9092", IMG).expect("render");
        let pod = c
            .stateful_set
            .spec
            .expect("spec")
            .template
            .spec
            .expect("pod");
        assert_eq!(pod.containers[0].image.as_deref(), Some("my/connect:1"));
    }

    #[test]
    fn downloaded_plugins_get_an_init_container_an_empty_dir_and_the_plugin_path() {
        let plain = children(
            &connect(json!({"clusterRef": "demo", "groupId": "g", "plugins": ["connect-file"]})),
            "b:9092",
            IMG,
        )
        .expect("render");
        let data = plain.config_map.data.clone().expect("data");
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["log4j2.properties", "worker.properties"],
            "nothing new without downloads (existing workers do not roll)"
        );
        assert_eq!(
            props(&data["worker.properties"])["plugin.path"],
            PLUGIN_PATH
        );
        let pod = plain
            .stateful_set
            .spec
            .expect("spec")
            .template
            .spec
            .expect("pod");
        assert!(pod.init_containers.is_none());
        assert_eq!(pod.volumes.expect("vols").len(), 1);

        let kc = connect(
            json!({"clusterRef": "demo", "groupId": "g", "image": "my/connect:1",
            "build": {"mavenRepository": "http://repo:8080/m2", "plugins": [{"name": "file",
                "artifacts": [{"type": "maven", "group": "org.apache.kafka", "artifact": "connect-file", "version": "4.1.1"}]}]}}),
        );
        let c = children(&kc, "b:9092", IMG).expect("render");
        let data = c.config_map.data.clone().expect("data");
        assert_eq!(
            props(&data["worker.properties"])["plugin.path"],
            format!("{PLUGIN_PATH},{}", plugins::DOWNLOAD_PATH)
        );
        assert_eq!(data[plugins::FETCHER_KEY], plugins::FETCHER_SOURCE);
        assert!(data[plugins::PLAN_KEY].contains(
            "file\tfile\thttp://repo:8080/m2/org/apache/kafka/connect-file/4.1.1/connect-file-4.1.1.jar\t-\tconnect-file-4.1.1.jar"
        ));
        let pod = c
            .stateful_set
            .spec
            .clone()
            .expect("spec")
            .template
            .spec
            .expect("pod");
        let init = &pod.init_containers.expect("init")[0];
        assert_eq!(init.name, plugins::INIT_CONTAINER);
        assert_eq!(
            init.image.as_deref(),
            Some("my/connect:1"),
            "the worker image's JVM"
        );
        let vols = pod.volumes.expect("vols");
        assert!(vols
            .iter()
            .any(|v| v.name == plugins::VOLUME && v.empty_dir.is_some()));
        let mount = |ctr: &Container| {
            ctr.volume_mounts
                .clone()
                .unwrap_or_default()
                .into_iter()
                .find(|m| m.name == plugins::VOLUME)
                .map(|m| (m.mount_path, m.read_only))
        };
        assert_eq!(mount(init), Some((plugins::DOWNLOAD_PATH.into(), None)));
        assert_eq!(
            mount(&pod.containers[0]),
            Some((plugins::DOWNLOAD_PATH.into(), Some(true)))
        );
        // A changed checksum is a new pod template (the workers roll and download again).
        let mut spec = serde_json::to_value(&kc.spec).expect("spec");
        spec["build"]["plugins"][0]["artifacts"][0]["sha512sum"] = json!("ab".repeat(64));
        let d = children(&connect(spec), "b:9092", IMG).expect("render");
        assert_ne!(hash(&c.stateful_set), hash(&d.stateful_set));
    }

    #[test]
    fn a_config_change_rolls_the_workers_and_a_scale_does_not() {
        let base = json!({"clusterRef": "demo", "groupId": "g", "replicas": 1});
        let a = children(&connect(base.clone()), "b:9092", IMG).expect("render");
        let mut scaled = base.clone();
        scaled["replicas"] = json!(3);
        let b = children(&connect(scaled), "b:9092", IMG).expect("render");
        assert_eq!(hash(&a.stateful_set), hash(&b.stateful_set));
        let mut changed = base.clone();
        changed["config"] = json!({"offset.flush.interval.ms": 500});
        let c = children(&connect(changed), "b:9092", IMG).expect("render");
        assert_ne!(hash(&a.stateful_set), hash(&c.stateful_set));
        let d = children(&connect(base), "other:9092", IMG).expect("render");
        assert_ne!(
            hash(&a.stateful_set),
            hash(&d.stateful_set),
            "a new bootstrap rolls too"
        );
        // Deterministic.
        let again = children(
            &connect(json!({"clusterRef": "demo", "groupId": "g", "replicas": 1})),
            "b:9092",
            IMG,
        )
        .expect("render");
        assert_eq!(a.config_map, again.config_map);
        assert_eq!(a.stateful_set, again.stateful_set);
    }
}
