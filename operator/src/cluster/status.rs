//! A KafkaCluster's status from what was observed: pure, so every case is unit-tested.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use runnel_crds::cluster::{
    BrokerStatus, KafkaClusterStatus, PlanStatus, PlannedMove, PlannedRestart, QuorumStatus,
};
use runnel_crds::condition::{condition, types};

use super::quorum::QuorumState;
use super::render::Pool;
use super::roll::Plan;
use super::scale::ScaleStatus;
use super::throttle::ThrottleChange;
pub use super::view::{KafkaView, PodView};

/// Everything the status is made from.
#[derive(Clone, Debug)]
pub struct Observed {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `spec.controllers.replicas`, when there is a dedicated controller pool.
    pub controllers: Option<i32>,
    /// The spec cannot be rendered (message), so nothing was applied.
    pub spec_error: Option<String>,
    /// Broker and controller pods.
    pub pods: Vec<PodView>,
    /// Kafka's view, or why it could not be had.
    pub kafka: Result<KafkaView, String>,
    /// The roller's plan, when one was made.
    pub plan: Option<Plan>,
    /// A restart in progress (pod name), if the operator is rolling.
    pub rolling: Option<String>,
    /// Reconciliation is paused by the annotation.
    pub paused: bool,
    /// `host:port` of the bootstrap Service.
    pub bootstrap: String,
    /// The image the spec asks for.
    pub image: String,
    /// The version the spec asks for (`spec.version`, else the tag of `image`).
    pub version: String,
    /// Scaling's moves and state.
    pub scale: ScaleStatus,
    /// The metadata quorum's mode and pending voter change.
    pub quorum: QuorumState,
}

impl Observed {
    fn roll_wait(&self) -> Option<&str> {
        match self.plan.as_ref().map(|p| &p.decision) {
            Some(super::roll::RollDecision::Wait(w)) => Some(w),
            _ => None,
        }
    }
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
    let expected = obs.replicas + obs.controllers.unwrap_or(0);
    if obs.replicas <= 0 || obs.pods.len() as i32 != expected {
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
    let kafka = obs.kafka.as_ref().ok();
    let active = kafka
        .and_then(|k| k.quorum.as_ref().ok())
        .and_then(|q| q.leader);
    let caught_up_voters = kafka
        .and_then(|k| k.quorum.as_ref().ok())
        .map(|q| q.caught_up_voters());
    let node = |pool: Pool, ordinal: i32| -> BrokerStatus {
        let node_id = pool.node_id(ordinal);
        let pod = obs
            .pods
            .iter()
            .find(|p| p.pool == pool && p.ordinal == ordinal);
        let is_broker = pool == Pool::Brokers;
        let voter = pod.map_or(pool == Pool::Controllers, |p| p.voter);
        let fenced = match kafka {
            Some(k) if is_broker => Some(!k.brokers.contains(&node_id)),
            _ => None,
        };
        let out_of_sync = match kafka {
            Some(k) if is_broker => k.out_of_sync(node_id).map(|v| v.len() as i32),
            _ => None,
        };
        let message = match pod {
            None => Some("pod not created yet".to_string()),
            Some(p) if p.terminating => Some("restarting".to_string()),
            Some(p) if !p.ready => Some("pod not ready".to_string()),
            Some(_) if obs.kafka.is_err() => Some("cluster metadata unavailable".to_string()),
            Some(_) if fenced == Some(true) => {
                Some("broker not registered in the cluster metadata, or fenced".to_string())
            }
            Some(_) if out_of_sync.is_some_and(|n| n > 0) => Some(format!(
                "catching up: not in the ISR of {} partition(s)",
                out_of_sync.unwrap_or(0)
            )),
            Some(_)
                if !is_broker
                    && caught_up_voters
                        .as_ref()
                        .is_some_and(|v| !v.contains(&node_id)) =>
            {
                Some("controller not caught up with the metadata log".to_string())
            }
            Some(_) => None,
        };
        BrokerStatus {
            id: node_id,
            pod: pod.map_or_else(String::new, |p| p.name.clone()),
            ready: message.is_none(),
            message,
            fenced,
            controller: voter,
            active_controller: voter && active == Some(node_id),
            out_of_sync_partitions: out_of_sync,
        }
    };
    let brokers: Vec<BrokerStatus> = (0..obs.replicas.max(0))
        .map(|i| node(Pool::Brokers, i))
        .collect();
    let controllers: Vec<BrokerStatus> = (0..obs.controllers.unwrap_or(0).max(0))
        .map(|i| node(Pool::Controllers, i))
        .collect();
    let ready_count = brokers.iter().filter(|b| b.ready).count() as i32;
    let controllers_ready = controllers.iter().filter(|c| c.ready).count() as i32;
    let outdated = obs.pods.iter().filter(|p| p.outdated).count();
    let expected = obs.replicas + obs.controllers.unwrap_or(0);
    let up_to_date = outdated == 0 && obs.pods.len() as i32 == expected;

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
    } else if controllers_ready < obs.controllers.unwrap_or(0) {
        (
            false,
            "ControllersNotReady",
            format!(
                "{controllers_ready} of {} controllers ready",
                obs.controllers.unwrap_or(0)
            ),
        )
    } else if let Some(p) = obs.quorum.pending.as_ref().filter(|_| !obs.paused) {
        (
            false,
            "QuorumChanging",
            format!("the KRaft voters do not match the spec yet: {p}"),
        )
    } else if let Some(pod) = &obs.rolling {
        (
            false,
            "RollingRestart",
            format!("restarting {pod} to apply a new configuration"),
        )
    } else if !up_to_date {
        let mut m = format!("{outdated} pod(s) still run an old configuration");
        if obs.paused {
            m.push_str("; reconciliation is paused");
        } else if let Some(why) = obs.roll_wait() {
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
    let (reconciling, reconciling_reason, reconciling_message) = if obs.paused {
        (
            false,
            "ReconciliationPaused",
            format!(
                "{} is \"true\": nothing is applied or restarted; status.plan shows what would be",
                runnel_crds::cluster::PAUSE_RECONCILIATION_ANNOTATION
            ),
        )
    } else if let (true, Some(scaling), None) = (ready, &obs.scale.scaling, &obs.scale.blocked) {
        (true, "Scaling", scaling.clone())
    } else if ready {
        (
            false,
            "Reconciled",
            "the cluster matches the spec".to_string(),
        )
    } else {
        (!degraded, reason, message.clone())
    };
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
            reconciling,
            reconciling_reason,
            reconciling_message,
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
    let mut conditions = conditions;
    let was_blocked = prev_conds
        .iter()
        .any(|c| c.type_ == types::SCALE_DOWN_BLOCKED);
    if obs.scale.blocked.is_some() || was_blocked {
        conditions.push(condition(
            prev_conds,
            types::SCALE_DOWN_BLOCKED,
            obs.scale.blocked.is_some(),
            if obs.scale.blocked.is_some() {
                "ReplicationFactorTooHigh"
            } else {
                "NotBlocked"
            },
            obs.scale
                .blocked
                .clone()
                .unwrap_or_else(|| "no scale-down is refused".to_string()),
            generation,
            now,
        ));
    }
    let moves: Vec<PlannedMove> = obs
        .scale
        .moves
        .iter()
        .map(|m| PlannedMove {
            topic: m.topic.clone(),
            partition: m.partition,
            from: m.from.clone(),
            to: m.to.clone(),
            reason: m.reason.clone(),
        })
        .collect();
    let plan = obs.plan.as_ref().map(|p| PlanStatus {
        restarts: p
            .steps
            .iter()
            .map(|s| PlannedRestart {
                pod: s.pod.clone(),
                node_id: s.node_id,
                reason: s.reason.clone(),
            })
            .collect(),
        waiting_for: obs.roll_wait().map(str::to_string),
        paused: obs.paused,
        moves,
        rebalance_id: obs.scale.rebalance_id.clone(),
        scaling: obs
            .scale
            .scaling
            .clone()
            .or_else(|| obs.scale.blocked.clone()),
    });
    KafkaClusterStatus {
        observed_generation: generation,
        conditions,
        replicas: obs.pods.iter().filter(|p| p.pool == Pool::Brokers).count() as i32,
        ready_replicas: ready_count,
        brokers,
        bootstrap_servers: Some(obs.bootstrap.clone()),
        cluster_id: kafka
            .and_then(|k| k.cluster_id.clone())
            .or_else(|| previous.and_then(|p| p.cluster_id.clone())),
        version: running_version(obs),
        controllers,
        under_min_isr_partitions: kafka.and_then(|k| k.under_min_isr()).map(|n| n as i32),
        plan,
        // set by the reconcile that applies it (super::dynamic)
        dynamic_config: previous.and_then(|p| p.dynamic_config.clone()),
        // set by the reconcile that reads it (super::metadata_version)
        metadata_version: previous.and_then(|p| p.metadata_version.clone()),
        replication_throttle: match &obs.scale.throttle {
            ThrottleChange::Keep => previous.and_then(|p| p.replication_throttle.clone()),
            ThrottleChange::Set(t) => Some(t.clone()),
            ThrottleChange::Cleared => None,
        },
        quorum: Some(QuorumStatus {
            mode: if obs.quorum.mode.is_dynamic() {
                "Dynamic"
            } else {
                "Static"
            }
            .into(),
            voters: match kafka.and_then(|k| k.quorum.as_ref().ok()) {
                Some(q) => q.voters.keys().copied().collect(),
                None => previous
                    .and_then(|p| p.quorum.as_ref())
                    .map(|q| q.voters.clone())
                    .unwrap_or_default(),
            },
            pending: obs.quorum.pending.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::roll::RollDecision;
    use crate::cluster::view::{PartitionView, Partitions, QuorumView};
    use runnel_crds::condition::{find, is_true};

    fn pod(ordinal: i32, ready: bool, rev: &str) -> PodView {
        PodView {
            pool: Pool::Brokers,
            ordinal,
            node_id: ordinal,
            name: format!("demo-broker-{ordinal}"),
            ready,
            revision: Some(rev.into()),
            outdated: rev != "r2",
            voter: true,
            broker: true,
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
            controllers: None,
            spec_error: None,
            pods,
            kafka: Ok(KafkaView {
                cluster_id: Some("cid".into()),
                brokers: brokers.iter().copied().collect(),
                racks: Default::default(),
                quorum: Ok(QuorumView {
                    leader: Some(0),
                    voters: [(0, 5), (1, 5), (2, 5)].into(),
                    high_watermark: 5,
                    ..Default::default()
                }),
                partitions: Partitions::Known(vec![]),
            }),
            plan: None,
            rolling: None,
            paused: false,
            bootstrap: "demo-kafka-bootstrap.ns.svc:9092".into(),
            image: "runnel/runnel:0.1.0".into(),
            version: "0.1.0".into(),
            scale: ScaleStatus::default(),
            quorum: QuorumState {
                mode: crate::cluster::quorum::Quorum::Dynamic { formed: true },
                pending: None,
            },
        }
    }

    fn now() -> Timestamp {
        "2026-11-25T12:00:00Z".parse().expect("ts")
    }

    #[test]
    fn a_pending_voter_change_keeps_the_cluster_not_ready_and_shows_the_quorum() {
        let pods = vec![pod(0, true, "r2"), pod(1, true, "r2"), pod(2, true, "r2")];
        let mut o = obs(pods, &[0, 1, 2]);
        let st = status(&o, None, now());
        assert!(is_true(&st.conditions, types::READY), "{:?}", st.conditions);
        let q = st.quorum.expect("quorum");
        assert_eq!((q.mode.as_str(), q.voters), ("Dynamic", vec![0, 1, 2]));
        o.quorum.pending = Some("adding controller 2 (directory x)".into());
        let st = status(&o, None, now());
        let ready = find(&st.conditions, types::READY).expect("ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason, "QuorumChanging");
        assert!(
            ready.message.contains("adding controller 2"),
            "{}",
            ready.message
        );
        assert_eq!(
            st.quorum.and_then(|q| q.pending).as_deref(),
            Some("adding controller 2 (directory x)")
        );
    }

    #[test]
    fn scaling_reconciles_and_a_blocked_scale_down_is_a_condition() {
        let pods = vec![pod(0, true, "r2"), pod(1, true, "r2"), pod(2, true, "r2")];
        let mut o = obs(pods.clone(), &[0, 1, 2]);
        o.plan = Some(Plan {
            steps: vec![],
            decision: RollDecision::UpToDate,
            elect: vec![],
        });
        o.scale.scaling = Some("draining broker(s) 2".into());
        let s = status(&o, None, now());
        let rec = find(&s.conditions, types::RECONCILING).expect("reconciling");
        assert_eq!(
            (rec.status.as_str(), rec.reason.as_str()),
            ("True", "Scaling")
        );
        assert!(find(&s.conditions, types::SCALE_DOWN_BLOCKED).is_none());
        assert_eq!(
            s.plan.as_ref().and_then(|p| p.scaling.as_deref()),
            Some("draining broker(s) 2")
        );
        let mut o = obs(pods, &[0, 1, 2]);
        o.scale.blocked = Some("refused: t (replication factor 2)".into());
        let s = status(&o, None, now());
        assert!(is_true(&s.conditions, types::SCALE_DOWN_BLOCKED));
        // Resolved: the condition stays, False.
        o.scale.blocked = None;
        let s = status(&o, Some(&s), now());
        let c = find(&s.conditions, types::SCALE_DOWN_BLOCKED).expect("kept");
        assert_eq!(c.status, "False");
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
            Some("broker not registered in the cluster metadata, or fenced")
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
        o.plan = Some(Plan {
            steps: vec![],
            decision: RollDecision::Wait("cannot count under-replicated partitions: boom".into()),
            elect: vec![],
        });
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

    #[test]
    fn per_broker_state_isr_health_controllers_and_the_plan() {
        let mut o = obs(
            vec![pod(0, true, "r2"), pod(1, true, "r2"), pod(2, true, "r1")],
            &[0, 1, 2],
        );
        if let Ok(k) = &mut o.kafka {
            k.partitions = Partitions::Known(vec![
                PartitionView {
                    topic: "t".into(),
                    partition: 0,
                    leader: Some(0),
                    replicas: vec![0, 1, 2],
                    isr: vec![0],
                    min_isr: 2,
                },
                PartitionView {
                    topic: "t".into(),
                    partition: 1,
                    leader: Some(1),
                    replicas: vec![1, 2, 0],
                    isr: vec![1, 2, 0],
                    min_isr: 2,
                },
            ]);
        }
        o.plan = Some(Plan {
            steps: vec![crate::cluster::roll::Step {
                pod: "demo-broker-2".into(),
                node_id: 2,
                reason: "outdated pod template; a broker".into(),
            }],
            decision: RollDecision::Wait("broker 1 is catching up".into()),
            elect: vec![],
        });
        o.paused = true;
        let s = status(&o, None, now());
        assert_eq!(s.under_min_isr_partitions, Some(1));
        assert_eq!(s.brokers[0].out_of_sync_partitions, Some(0));
        assert!(s.brokers[0].active_controller && s.brokers[0].controller);
        assert!(!s.brokers[1].active_controller);
        assert_eq!(s.brokers[1].out_of_sync_partitions, Some(1));
        assert!(!s.brokers[1].ready, "caught up is part of ready");
        assert_eq!(s.brokers[1].fenced, Some(false));
        let plan = s.plan.expect("plan");
        assert_eq!(plan.restarts[0].pod, "demo-broker-2");
        assert_eq!(plan.waiting_for.as_deref(), Some("broker 1 is catching up"));
        assert!(plan.paused);
        let r = find(&s.conditions, types::RECONCILING).expect("r");
        assert_eq!(r.reason, "ReconciliationPaused");
        // A dedicated controller pool: its own entries, with node ids from 1000.
        let mut o = obs(vec![pod(0, true, "r2")], &[0]);
        o.replicas = 1;
        o.controllers = Some(1);
        o.pods[0].voter = false;
        o.pods.push(PodView {
            pool: Pool::Controllers,
            ordinal: 0,
            node_id: 1000,
            name: "demo-controller-0".into(),
            ready: true,
            revision: None,
            outdated: false,
            terminating: false,
            image: o.pods[0].image.clone(),
            voter: true,
            broker: false,
        });
        if let Ok(k) = &mut o.kafka {
            k.quorum = Ok(QuorumView {
                leader: Some(1000),
                voters: [(1000, 5)].into(),
                high_watermark: 5,
                ..Default::default()
            });
        }
        let s = status(&o, None, now());
        assert_eq!(s.controllers.len(), 1);
        assert_eq!(s.controllers[0].id, 1000);
        assert!(s.controllers[0].active_controller && s.controllers[0].ready);
        assert_eq!(s.controllers[0].fenced, None);
        assert!(!s.brokers[0].controller);
        assert_eq!(s.replicas, 1);
        assert!(is_true(&s.conditions, types::READY));
        assert_eq!(s.version.as_deref(), Some("0.1.0"));
    }
}
