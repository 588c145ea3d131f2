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
}

/// What the brokers say, queried over the Kafka protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaView {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Registered broker ids.
    pub brokers: BTreeSet<i32>,
    /// Partitions whose ISR is short; `None` when not counted (no broker needs a restart).
    pub under_replicated: Option<usize>,
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
    /// `host:port` of the bootstrap Service.
    pub bootstrap: String,
    /// The version the spec asks for.
    pub version: String,
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
        (
            false,
            "RollingRestart",
            format!("{outdated} broker(s) still run an old configuration"),
        )
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
        version: if up_to_date && obs.spec_error.is_none() {
            Some(obs.version.clone())
        } else {
            previous.and_then(|p| p.version.clone())
        },
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
                under_replicated: Some(0),
            }),
            rolling: None,
            bootstrap: "demo-kafka-bootstrap.ns.svc:9092".into(),
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
    fn old_revision_keeps_old_version_and_reports_rolling() {
        let o = obs(
            vec![pod(0, true, "r1"), pod(1, true, "r2"), pod(2, true, "r2")],
            &[0, 1, 2],
        );
        let prev = KafkaClusterStatus {
            version: Some("0.0.9".into()),
            ..Default::default()
        };
        let s = status(&o, Some(&prev), now());
        assert_eq!(s.version.as_deref(), Some("0.0.9"));
        assert_eq!(
            find(&s.conditions, types::READY).expect("r").reason,
            "RollingRestart"
        );
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
