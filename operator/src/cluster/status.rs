//! A KafkaCluster's status from what was observed: pure, so every case is unit-tested.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use runnel_crds::cluster::{BrokerStatus, KafkaClusterStatus};
use runnel_crds::condition::{condition, types};
use std::collections::BTreeSet;

/// One broker pod as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    /// Ordinal (= node id).
    pub ordinal: i32,
    /// Pod name.
    pub name: String,
    /// Pod Ready condition.
    pub ready: bool,
    /// Its StatefulSet revision (`controller-revision-hash` label).
    pub revision: Option<String>,
    /// Being deleted.
    pub terminating: bool,
    /// The image its broker container runs, as the kubelet reports it
    /// (`status.containerStatuses[broker].image`); `None` until reported.
    pub image: Option<String>,
}

/// What the brokers say, queried over the Kafka protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaView {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Registered broker ids.
    pub brokers: BTreeSet<i32>,
    /// Partitions whose ISR is short or that have no leader.
    pub under_replicated: UnderReplicated,
}

/// The under-replicated partition count, as far as it is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnderReplicated {
    /// Not counted: no broker needs a restart.
    NotCounted,
    /// Counted.
    Count(usize),
    /// The brokers answered, but could not describe every topic: the count is
    /// unknown (why), and no restart may rely on it.
    Unknown(String),
}

/// Everything the status is made from.
#[derive(Clone, Debug)]
pub struct Observed {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `spec.replicas`.
    pub replicas: i32,
    /// The spec cannot be rendered (message), so nothing was applied.
    pub spec_error: Option<String>,
    /// The StatefulSet's update revision.
    pub update_revision: Option<String>,
    /// Broker pods.
    pub pods: Vec<PodView>,
    /// Kafka's view, or why it could not be had.
    pub kafka: Result<KafkaView, String>,
    /// A broker restart in progress (pod name), if the operator is rolling.
    pub rolling: Option<String>,
    /// Why the rolling restart of an outdated broker waits, if it does.
    pub roll_wait: Option<String>,
    /// `host:port` of the bootstrap Service.
    pub bootstrap: String,
    /// The image the spec asks for.
    pub image: String,
    /// The version the spec asks for (`spec.version`, else the tag of `image`).
    pub version: String,
}

/// The tag of an image reference (`repo:tag`, not a registry port, not a digest).
fn image_tag(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    match name.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') && !tag.is_empty() => Some(tag),
        _ => None,
    }
}

/// The version every broker runs, from the images their containers report: the
/// requested version when all run the requested image (whatever the registry's
/// normalisation of its name, compared by tag), else the tag they all run. `None`
/// while they differ (a rolling restart), while a pod is missing or has not
/// reported its image, or when the image has no tag that says it.
pub fn running_version(obs: &Observed) -> Option<String> {
    if obs.replicas <= 0 || obs.pods.len() as i32 != obs.replicas {
        return None;
    }
    let mut tags = obs
        .pods
        .iter()
        .map(|p| p.image.as_deref().and_then(image_tag));
    let first = tags.next()??;
    if !tags.all(|t| t == Some(first)) {
        return None;
    }
    if image_tag(&obs.image) == Some(first) {
        Some(obs.version.clone())
    } else {
        Some(first.to_string())
    }
}

/// The status for `obs`, keeping transition times from `previous`.
pub fn status(
    obs: &Observed,
    previous: Option<&KafkaClusterStatus>,
    now: Timestamp,
) -> KafkaClusterStatus {
    let prev_conds: &[Condition] = previous.map_or(&[], |p| &p.conditions);
    let registered = obs
        .kafka
        .as_ref()
        .map(|k| k.brokers.clone())
        .unwrap_or_default();
    let mut brokers = Vec::new();
    for ordinal in 0..obs.replicas.max(0) {
        let pod = obs.pods.iter().find(|p| p.ordinal == ordinal);
        let (ready, message) = match pod {
            None => (false, Some("pod not created yet".to_string())),
            Some(p) if p.terminating => (false, Some("restarting".to_string())),
            Some(p) if !p.ready => (false, Some("pod not ready".to_string())),
            Some(_) if obs.kafka.is_ok() && !registered.contains(&ordinal) => (
                false,
                Some("broker not registered in the cluster metadata".to_string()),
            ),
            Some(_) if obs.kafka.is_err() => {
                (false, Some("cluster metadata unavailable".to_string()))
            }
            Some(_) => (true, None),
        };
        brokers.push(BrokerStatus {
            id: ordinal,
            pod: pod.map_or_else(String::new, |p| p.name.clone()),
            ready,
            message,
        });
    }
    let ready_count = brokers.iter().filter(|b| b.ready).count() as i32;
    let outdated = obs
        .pods
        .iter()
        .filter(|p| obs.update_revision.is_some() && p.revision != obs.update_revision)
        .count();
    let up_to_date = outdated == 0 && obs.pods.len() as i32 == obs.replicas;

    let (ready, reason, message): (bool, &str, String) = if let Some(e) = &obs.spec_error {
        (false, "InvalidSpec", e.clone())
    } else if let Err(e) = &obs.kafka {
        (
            false,
            "KafkaUnavailable",
            format!("cannot query the brokers at {}: {e}", obs.bootstrap),
        )
    } else if ready_count < obs.replicas {
        (
            false,
            "BrokersNotReady",
            format!("{ready_count} of {} brokers ready", obs.replicas),
        )
    } else if let Some(pod) = &obs.rolling {
        (
            false,
            "RollingRestart",
            format!("restarting {pod} to apply a new configuration"),
        )
    } else if !up_to_date {
        let mut m = format!("{outdated} broker(s) still run an old configuration");
        if let Some(why) = &obs.roll_wait {
            m.push_str(&format!("; the next restart waits: {why}"));
        }
        (false, "RollingRestart", m)
    } else {
        (
            true,
            "AllBrokersReady",
            format!("{} of {} brokers ready", ready_count, obs.replicas),
        )
    };
    let degraded = obs.spec_error.is_some();
    let generation = obs.generation;
    let conditions = vec![
        condition(
            prev_conds,
            types::READY,
            ready,
            reason,
            message.clone(),
            generation,
            now,
        ),
        condition(
            prev_conds,
            types::RECONCILING,
            !ready && !degraded,
            if ready { "Reconciled" } else { reason },
            if ready {
                "the cluster matches the spec".to_string()
            } else {
                message.clone()
            },
            generation,
            now,
        ),
        condition(
            prev_conds,
            types::DEGRADED,
            degraded,
            if degraded { reason } else { "NoProblems" },
            if degraded {
                message
            } else {
                "no problems".to_string()
            },
            generation,
            now,
        ),
    ];
    let kafka = obs.kafka.as_ref().ok();
    KafkaClusterStatus {
        observed_generation: generation,
        conditions,
        replicas: obs.pods.len() as i32,
        ready_replicas: ready_count,
        brokers,
        bootstrap_servers: Some(obs.bootstrap.clone()),
        cluster_id: kafka
            .and_then(|k| k.cluster_id.clone())
            .or_else(|| previous.and_then(|p| p.cluster_id.clone())),
        version: running_version(obs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_crds::condition::{find, is_true};

    fn pod(ordinal: i32, ready: bool, rev: &str) -> PodView {
        PodView {
            ordinal,
            name: format!("demo-broker-{ordinal}"),
            ready,
            revision: Some(rev.into()),
            terminating: false,
            image: Some(format!(
                "docker.io/runnel/runnel:{}",
                if rev == "r2" { "0.1.0" } else { "0.0.9" }
            )),
        }
    }

    fn obs(pods: Vec<PodView>, brokers: &[i32]) -> Observed {
        Observed {
            generation: Some(2),
            replicas: 3,
            spec_error: None,
            update_revision: Some("r2".into()),
            pods,
            kafka: Ok(KafkaView {
                cluster_id: Some("cid".into()),
                brokers: brokers.iter().copied().collect(),
                under_replicated: UnderReplicated::Count(0),
            }),
            rolling: None,
            roll_wait: None,
            bootstrap: "demo-kafka-bootstrap.ns.svc:9092".into(),
            image: "runnel/runnel:0.1.0".into(),
            version: "0.1.0".into(),
        }
    }

    fn now() -> Timestamp {
        "2026-11-25T12:00:00Z".parse().expect("ts")
    }

    #[test]
    fn all_ready_and_registered() {
        let o = obs(
            vec![pod(0, true, "r2"), pod(1, true, "r2"), pod(2, true, "r2")],
            &[0, 1, 2],
        );
        let s = status(&o, None, now());
        assert!(is_true(&s.conditions, types::READY));
        assert!(!is_true(&s.conditions, types::RECONCILING));
        assert_eq!(s.ready_replicas, 3);
        assert_eq!(s.cluster_id.as_deref(), Some("cid"));
        assert_eq!(s.version.as_deref(), Some("0.1.0"));
        assert_eq!(s.observed_generation, Some(2));
    }

    #[test]
    fn pod_ready_but_not_registered_is_not_ready() {
        let o = obs(
            vec![pod(0, true, "r2"), pod(1, true, "r2"), pod(2, true, "r2")],
            &[0, 1],
        );
        let s = status(&o, None, now());
        assert_eq!(s.ready_replicas, 2);
        assert_eq!(
            s.brokers[2].message.as_deref(),
            Some("broker not registered in the cluster metadata")
        );
        let r = find(&s.conditions, types::READY).expect("ready");
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "BrokersNotReady")
        );
        assert!(is_true(&s.conditions, types::RECONCILING));
    }

    #[test]
    fn mixed_images_have_no_single_version_and_a_blocked_roll_says_why() {
        let mut o = obs(
            vec![pod(0, true, "r1"), pod(1, true, "r2"), pod(2, true, "r2")],
            &[0, 1, 2],
        );
        o.roll_wait = Some("cannot count under-replicated partitions: boom".into());
        let prev = KafkaClusterStatus {
            version: Some("0.0.9".into()),
            ..Default::default()
        };
        let s = status(&o, Some(&prev), now());
        assert_eq!(s.version, None, "brokers run 0.0.9 and 0.1.0");
        let r = find(&s.conditions, types::READY).expect("r");
        assert_eq!(r.reason, "RollingRestart");
        assert!(
            r.message
                .contains("waits: cannot count under-replicated partitions: boom"),
            "{}",
            r.message
        );
    }

    #[test]
    fn version_is_what_the_pods_run_not_what_the_spec_asks() {
        let pods = vec![pod(0, true, "r2"), pod(1, true, "r2"), pod(2, true, "r2")];
        // All run the requested image: the requested version.
        let o = obs(pods.clone(), &[0, 1, 2]);
        assert_eq!(status(&o, None, now()).version.as_deref(), Some("0.1.0"));
        // The spec asks for 0.2.0 but every pod still runs 0.1.0.
        let mut o = obs(pods.clone(), &[0, 1, 2]);
        o.image = "runnel/runnel:0.2.0".into();
        o.version = "0.2.0".into();
        assert_eq!(status(&o, None, now()).version.as_deref(), Some("0.1.0"));
        // A pod that has not reported its image, or a missing pod: unknown.
        let mut o = obs(pods.clone(), &[0, 1, 2]);
        o.pods[2].image = None;
        assert_eq!(status(&o, None, now()).version, None);
        let o = obs(pods[..2].to_vec(), &[0, 1]);
        assert_eq!(status(&o, None, now()).version, None);
        // Digest references: the requested version when the tag matches.
        let mut o = obs(pods, &[0, 1, 2]);
        for p in &mut o.pods {
            p.image = Some("ghcr.io/x/runnel:0.1.0@sha256:abcd".into());
        }
        assert_eq!(status(&o, None, now()).version.as_deref(), Some("0.1.0"));
        assert_eq!(image_tag("registry:5000/runnel"), None);
        assert_eq!(image_tag("registry:5000/runnel:1.2.3"), Some("1.2.3"));
    }

    #[test]
    fn invalid_spec_is_degraded_and_kafka_down_is_reported() {
        let mut o = obs(vec![], &[]);
        o.spec_error = Some("spec.config: bad".into());
        let s = status(&o, None, now());
        assert!(is_true(&s.conditions, types::DEGRADED));
        assert_eq!(
            find(&s.conditions, types::DEGRADED).expect("d").message,
            "spec.config: bad"
        );
        let mut o = obs(vec![pod(0, true, "r2")], &[]);
        o.kafka = Err("connection refused".into());
        let s = status(&o, None, now());
        let r = find(&s.conditions, types::READY).expect("r");
        assert_eq!(r.reason, "KafkaUnavailable");
        assert!(r.message.contains("connection refused"));
    }
}
