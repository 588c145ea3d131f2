//! Kafka-aware rolling restarts: the order of the restarts, whether the next one is safe
//! now, and the preferred leader elections around them. Pure: the reconciler observes,
//! [`plan`] decides, the reconciler acts.
//!
//! The StatefulSets use `OnDelete`, so a new pod template only reaches a pod when the
//! operator deletes it, one pod at a time:
//! - order: pods that are not ready first (they cannot lose more), then the controllers
//!   (dedicated, or in combined mode every node), the active controller last of them,
//!   then the brokers;
//! - before each restart every pod must be ready, every broker registered and unfenced,
//!   and every already restarted broker back in the ISR of every partition it hosts;
//! - a voter is restarted only when the others that are caught up still make a majority;
//! - a broker only when, for every partition it is in the ISR of, the ISR stays at or
//!   above the topic's `min.insync.replicas` without it. The check is per partition,
//!   never a global "no under-replicated partition anywhere" (which deadlocks on a
//!   partition that cannot recover without this restart). Partitions whose replication
//!   factor is not above `min.insync.replicas` are not gated: no restart of any of their
//!   replicas can ever keep them writable with acks=all (Strimzi's rule too).
//! - when the cluster is settled (everything above holds), partitions whose preferred
//!   leader is back in the ISR get a preferred leader election (ElectLeaders), and the
//!   next restart waits a round for it ([`settle_elections`]), so leaders never move
//!   onto brokers and off one at the same moment.
//!
//! The broker moves leadership away itself on SIGTERM (controlled shutdown), within the
//! pod's termination grace period.

use super::render::Pool;
use super::view::{KafkaView, PartitionView, Partitions, PodView};

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollDecision {
    /// Every pod runs its StatefulSet's pod template.
    UpToDate,
    /// Restart this pod now.
    Restart(String),
    /// Pods are outdated but restarting the next one now is unsafe; why.
    Wait(String),
}

/// One planned restart, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Pod name.
    pub pod: String,
    /// Kafka node id.
    pub node_id: i32,
    /// Why it restarts, and why at this place.
    pub reason: String,
}

/// The roller's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The restarts still to do, in order (the first is next).
    pub steps: Vec<Step>,
    /// What to do now.
    pub decision: RollDecision,
    /// Partitions to run a preferred leader election for now (before the restart, if any).
    pub elect: Vec<(String, i32)>,
}

/// How a wait on partition state the brokers could not give starts (an error, worth a
/// warning event).
pub const UNKNOWN_PARTITIONS: &str = "cannot read the partitions' ISR";

/// The outdated pods in restart order, each with the reason for its place.
pub fn order(pods: &[PodView], active_controller: Option<i32>) -> Vec<(&PodView, String)> {
    // (rank, node id): lower restarts first.
    let rank = |p: &PodView| -> (u8, &'static str) {
        if !p.ready || p.terminating {
            (0, "not ready: restarted first, it cannot lose more")
        } else if p.voter && Some(p.node_id) == active_controller {
            (2, "the active controller: last of the controllers")
        } else if p.voter {
            (1, "a controller: controllers roll before brokers")
        } else {
            (3, "a broker")
        }
    };
    let mut out: Vec<(&PodView, (u8, &str))> = pods
        .iter()
        .filter(|p| p.outdated)
        .map(|p| (p, rank(p)))
        .collect();
    out.sort_by_key(|(p, (r, _))| (*r, p.pool, p.ordinal));
    out.into_iter()
        .map(|(p, (_, why))| (p, format!("outdated pod template; {why}")))
        .collect()
}

/// The partitions that restarting `broker` would take below `min.insync.replicas`:
/// those whose ISR holds it and is no longer than `min.insync.replicas`, and whose
/// replication factor is above it.
pub fn min_isr_blockers(partitions: &[PartitionView], broker: i32) -> Vec<&PartitionView> {
    partitions
        .iter()
        .filter(|p| {
            p.isr.contains(&broker)
                && p.replicas.len() as i32 > p.min_isr
                && p.isr.len() as i32 <= p.min_isr
        })
        .collect()
}

/// Whether the cluster is settled: every expected pod exists and is ready, none is
/// being deleted, every broker is registered and unfenced, and every broker already on
/// its current pod template is in the ISR of every partition it hosts. `Err(why)` if not.
pub fn settled(
    expected: &[(Pool, i32)],
    pods: &[PodView],
    kafka: Option<&KafkaView>,
) -> Result<(), String> {
    if let Some(p) = pods.iter().find(|p| p.terminating) {
        return Err(format!("{} is restarting", p.name));
    }
    for (pool, n) in expected {
        let have = pods.iter().filter(|p| p.pool == *pool).count() as i32;
        if have < *n {
            return Err(format!("{have} of {n} {} pods exist", pool.component()));
        }
    }
    if let Some(p) = pods.iter().find(|p| !p.ready) {
        return Err(format!("{} is not ready", p.name));
    }
    let Some(k) = kafka else {
        return Err("cluster metadata unavailable".into());
    };
    if let Some(p) = pods
        .iter()
        .find(|p| p.broker && !k.brokers.contains(&p.node_id))
    {
        return Err(format!(
            "broker {} is not registered or is fenced",
            p.node_id
        ));
    }
    for p in pods.iter().filter(|p| p.broker && !p.outdated) {
        match k.out_of_sync(p.node_id) {
            None => {
                if let Partitions::Unknown(why) = &k.partitions {
                    return Err(format!("{UNKNOWN_PARTITIONS}: {why}"));
                }
            }
            Some(behind) if !behind.is_empty() => {
                return Err(format!(
                    "broker {} is catching up: not yet in the ISR of {} partition(s), e.g. {}",
                    p.node_id,
                    behind.len(),
                    behind[0].name()
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Plans the rolling restart of `pods` (the pools' expected sizes in `expected`).
/// `elect_preferred`: run preferred leader elections when settled.
pub fn plan(
    expected: &[(Pool, i32)],
    pods: &[PodView],
    kafka: Option<&KafkaView>,
    elect_preferred: bool,
) -> Plan {
    let active = kafka
        .and_then(|k| k.quorum.as_ref().ok())
        .and_then(|q| q.leader);
    let ordered = order(pods, active);
    let steps: Vec<Step> = ordered
        .iter()
        .map(|(p, why)| Step {
            pod: p.name.clone(),
            node_id: p.node_id,
            reason: why.clone(),
        })
        .collect();
    let target = ordered.first().map(|(p, _)| *p);
    let mut elect = Vec::new();
    let decision = (|| {
        if let Some(p) = pods.iter().find(|p| p.terminating) {
            return match target {
                Some(_) => RollDecision::Wait(format!("{} is restarting", p.name)),
                None => RollDecision::UpToDate,
            };
        }
        // A pod that is down anyway may be restarted: it cannot lose more.
        if let Some(t) = target.filter(|t| !t.ready) {
            return RollDecision::Restart(t.name.clone());
        }
        if let Err(why) = settled(expected, pods, kafka) {
            return match target {
                Some(_) => RollDecision::Wait(why),
                None => RollDecision::UpToDate,
            };
        }
        let Some(k) = kafka else {
            return RollDecision::Wait("cluster metadata unavailable".into());
        };
        if elect_preferred {
            elect = k
                .preferred_leader_imbalance()
                .into_iter()
                .filter(|(topic, partition)| {
                    // Not towards the broker about to restart.
                    target.is_none_or(|t| {
                        !matches!(&k.partitions, Partitions::Known(ps) if ps.iter().any(|p|
                            &p.topic == topic && p.partition == *partition
                                && p.replicas.first() == Some(&t.node_id)))
                    })
                })
                .collect();
        }
        let Some(t) = target else {
            return RollDecision::UpToDate;
        };
        if t.voter {
            let q = match &k.quorum {
                Ok(q) => q,
                Err(why) => {
                    return RollDecision::Wait(format!("cannot describe the quorum: {why}"))
                }
            };
            if q.leader.is_none() {
                return RollDecision::Wait("the quorum has no leader".into());
            }
            let others = q
                .caught_up_voters()
                .into_iter()
                .filter(|v| *v != t.node_id)
                .count();
            let majority = q.voters.len() / 2 + 1;
            // One or two voters: no restart of a voter can keep a majority, so waiting
            // would deadlock; the restart is unavoidable (as with one broker).
            let avoidable = q.voters.len().saturating_sub(1) >= majority;
            if avoidable && others < majority {
                return RollDecision::Wait(format!(
                    "without controller {} only {others} caught-up voter(s) of {} would remain (a majority is {majority})",
                    t.node_id,
                    q.voters.len()
                ));
            }
        }
        if t.broker {
            let parts = match &k.partitions {
                Partitions::Known(ps) => ps,
                Partitions::Unknown(why) => {
                    return RollDecision::Wait(format!("{UNKNOWN_PARTITIONS}: {why}"))
                }
            };
            let blockers = min_isr_blockers(parts, t.node_id);
            if let Some(b) = blockers.first() {
                return RollDecision::Wait(format!(
                    "restarting broker {} would take {} partition(s) below min.insync.replicas, e.g. {} (ISR {:?}, min.insync.replicas {})",
                    t.node_id,
                    blockers.len(),
                    b.name(),
                    b.isr,
                    b.min_isr
                ));
            }
        }
        RollDecision::Restart(t.name.clone())
    })();
    Plan {
        steps,
        decision,
        elect,
    }
}

/// The wait that lets a preferred leader election settle before the next restart.
pub fn election_wait(partitions: usize) -> String {
    format!(
        "a preferred leader election of {partitions} partition(s) settles before the next restart"
    )
}

/// Holds a restart back for one round when this round also runs a preferred leader
/// election: the election moves leaders onto brokers and the restart's controlled
/// shutdown moves leaders off one, and clients that meet both moves at once stall while
/// they relearn leaders twice. The restart goes ahead on the next round (when the
/// elected leaders are in place the election list is empty), or at the latest on the
/// round after a wait for the same election (`previous_wait`, the status' last
/// `waitingFor`), so a partition whose election keeps failing never blocks the roll.
pub fn settle_elections(mut plan: Plan, previous_wait: Option<&str>) -> Plan {
    if plan.elect.is_empty() || !matches!(plan.decision, RollDecision::Restart(_)) {
        return plan;
    }
    let wait = election_wait(plan.elect.len());
    if previous_wait != Some(wait.as_str()) {
        plan.decision = RollDecision::Wait(wait);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::view::QuorumView;

    #[test]
    fn a_restart_waits_one_round_for_the_election_it_comes_with() {
        let p = |elect: Vec<(String, i32)>, decision| Plan {
            steps: vec![],
            decision,
            elect,
        };
        let restart = RollDecision::Restart("c-broker-1".into());
        let two = vec![("t".to_string(), 0), ("t".to_string(), 1)];
        // No election: the restart goes ahead.
        assert_eq!(
            settle_elections(p(vec![], restart.clone()), None).decision,
            restart
        );
        // With one: it waits, the election still runs.
        let held = settle_elections(p(two.clone(), restart.clone()), None);
        assert_eq!(held.decision, RollDecision::Wait(election_wait(2)));
        assert_eq!(held.elect, two);
        // The same election again after that wait (it did not take): go ahead.
        let w = election_wait(2);
        assert_eq!(
            settle_elections(p(two.clone(), restart.clone()), Some(w.as_str())).decision,
            restart
        );
        // A wait for something else does not count.
        assert_eq!(
            settle_elections(p(two.clone(), restart.clone()), Some("other")).decision,
            RollDecision::Wait(election_wait(2))
        );
        // Other decisions are left alone.
        let waiting = RollDecision::Wait("x".into());
        assert_eq!(
            settle_elections(p(two, waiting.clone()), None).decision,
            waiting
        );
    }

    fn pod(pool: Pool, ordinal: i32, ready: bool, outdated: bool, combined: bool) -> PodView {
        PodView {
            pool,
            ordinal,
            node_id: pool.node_id(ordinal),
            name: format!("c-{}-{ordinal}", pool.component()),
            ready,
            revision: None,
            outdated,
            terminating: false,
            image: None,
            voter: combined || pool == Pool::Controllers,
            broker: pool == Pool::Brokers,
        }
    }
    fn b(ordinal: i32, ready: bool, outdated: bool) -> PodView {
        pod(Pool::Brokers, ordinal, ready, outdated, false)
    }
    fn c(ordinal: i32, ready: bool, outdated: bool) -> PodView {
        pod(Pool::Controllers, ordinal, ready, outdated, false)
    }
    /// A partition 0 of `topic` led by `leader`.
    fn part(
        topic: &str,
        leader: i32,
        replicas: &[i32],
        isr: &[i32],
        min_isr: i32,
    ) -> PartitionView {
        crate::cluster::view::tests::part(topic, Some(leader), replicas, isr, min_isr)
    }
    fn kafka(brokers: &[i32], leader: i32, parts: Vec<PartitionView>) -> KafkaView {
        KafkaView {
            cluster_id: None,
            brokers: brokers.iter().copied().collect(),
            racks: Default::default(),
            quorum: Ok(QuorumView {
                leader: Some(leader),
                voters: [(1000, 10), (1001, 10), (1002, 10)].into(),
                high_watermark: 10,
                ..Default::default()
            }),
            partitions: Partitions::Known(parts),
        }
    }
    const POOLS: &[(Pool, i32)] = &[(Pool::Controllers, 3), (Pool::Brokers, 3)];
    fn healthy() -> Vec<PartitionView> {
        vec![part("t", 0, &[0, 1, 2], &[0, 1, 2], 2)]
    }

    #[test]
    fn order_is_unready_then_controllers_with_the_active_last_then_brokers() {
        let pods = [
            c(0, true, true),
            c(1, true, true),
            c(2, true, true),
            b(0, true, true),
            b(1, false, true),
            b(2, true, true),
        ];
        let names: Vec<String> = order(&pods, Some(1000))
            .iter()
            .map(|(p, _)| p.name.clone())
            .collect();
        assert_eq!(
            names,
            [
                "c-broker-1",
                "c-controller-1",
                "c-controller-2",
                "c-controller-0",
                "c-broker-0",
                "c-broker-2"
            ]
        );
        let k = kafka(&[0, 1, 2], 1000, healthy());
        let p = plan(POOLS, &pods, Some(&k), true);
        assert_eq!(p.decision, RollDecision::Restart("c-broker-1".into()));
        assert!(
            p.steps[3].reason.contains("active controller"),
            "{:?}",
            p.steps
        );
        assert_eq!(p.steps.len(), 6);
    }

    #[test]
    fn combined_mode_restarts_the_active_controller_last() {
        let pods: Vec<PodView> = (0..3)
            .map(|i| pod(Pool::Brokers, i, true, true, true))
            .collect();
        let names: Vec<String> = order(&pods, Some(0))
            .iter()
            .map(|(p, _)| p.name.clone())
            .collect();
        assert_eq!(names, ["c-broker-1", "c-broker-2", "c-broker-0"]);
    }

    #[test]
    fn only_keys_applied_without_restart_changed_plans_no_restart() {
        use crate::cluster::render::{children, names::test_cluster};
        use serde_json::json;
        let spec = |config: serde_json::Value| {
            test_cluster(json!({"replicas": 3, "storage": {"size": "1Gi"}, "config": config}))
        };
        let template = |config: serde_json::Value| {
            children(&spec(config), "img:1")
                .expect("render")
                .statefulset
                .spec
                .expect("spec")
                .template
        };
        let before = template(json!({"num.partitions": 6, "log.retention.ms": 1000}));
        let plan_after = |config: serde_json::Value| {
            // a pod is outdated when the StatefulSet's pod template changes
            let outdated = template(config) != before;
            let pods: Vec<PodView> = (0..3)
                .map(|i| pod(Pool::Brokers, i, true, outdated, true))
                .collect();
            let k = kafka(&[0, 1, 2], 0, healthy());
            plan(&[(Pool::Brokers, 3)], &pods, Some(&k), true)
        };
        for config in [
            json!({"num.partitions": 6, "log.retention.ms": 5000}),
            json!({"num.partitions": 6, "log.retention.ms": 1000, "message.max.bytes": 2000}),
            json!({"num.partitions": 6}),
        ] {
            let p = plan_after(config.clone());
            assert_eq!(p.decision, RollDecision::UpToDate, "{config}");
            assert!(p.steps.is_empty(), "{config}");
        }
        let p = plan_after(json!({"num.partitions": 7, "log.retention.ms": 1000}));
        assert!(
            matches!(p.decision, RollDecision::Restart(_)),
            "{:?}",
            p.decision
        );
        assert_eq!(p.steps.len(), 3);
    }

    #[test]
    fn up_to_date_pods_are_not_in_the_plan() {
        let pods = [c(0, true, false), b(0, true, false), b(1, true, true)];
        let k = kafka(&[0, 1], 1000, vec![]);
        let p = plan(
            &[(Pool::Controllers, 1), (Pool::Brokers, 2)],
            &pods,
            Some(&k),
            true,
        );
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.decision, RollDecision::Restart("c-broker-1".into()));
        let pods = [c(0, true, false), b(0, true, false)];
        let p = plan(
            &[(Pool::Controllers, 1), (Pool::Brokers, 1)],
            &pods,
            Some(&k),
            true,
        );
        assert_eq!(p.decision, RollDecision::UpToDate);
        assert!(p.steps.is_empty());
    }

    #[test]
    fn min_isr_gate_is_per_partition() {
        // RF 3, min ISR 2: with the full ISR any one broker may restart.
        let parts = healthy();
        assert!(min_isr_blockers(&parts, 0).is_empty());
        // ISR {1,2}: broker 1 or 2 would leave 1 < 2; broker 0 (out of the ISR) may go.
        let parts = vec![part("t", 1, &[0, 1, 2], &[1, 2], 2)];
        assert_eq!(min_isr_blockers(&parts, 1).len(), 1);
        assert_eq!(min_isr_blockers(&parts, 2).len(), 1);
        assert!(min_isr_blockers(&parts, 0).is_empty());
        // RF 2, min ISR 2: never safe, so not gated (it would deadlock the roll).
        let parts = vec![part("t", 1, &[0, 1], &[0, 1], 2)];
        assert!(min_isr_blockers(&parts, 0).is_empty());
        // A partition elsewhere being under-replicated does not block this broker.
        let parts = vec![
            part("a", 1, &[1, 2, 3], &[1, 2], 2),
            part("b", 0, &[0, 4, 5], &[0, 4, 5], 2),
        ];
        assert!(min_isr_blockers(&parts, 0).is_empty());
        assert_eq!(min_isr_blockers(&parts, 2).len(), 1);
    }

    #[test]
    fn plan_waits_on_the_min_isr_gate_and_says_which_partition() {
        let pods = [
            c(0, true, false),
            c(1, true, false),
            c(2, true, false),
            b(0, true, true),
            b(1, true, false),
            b(2, true, false),
        ];
        // Broker 1 and 2 are up to date and in the ISR; broker 0 outdated and in it.
        // ISR {0,1}, min 2: restarting 0 would leave 1.
        let mut parts = healthy();
        parts.push(part("x", 0, &[0, 1, 2], &[0, 1], 2));
        // Broker 2 is up to date but out of x's ISR: it is catching up, wait for it.
        let k = kafka(&[0, 1, 2], 1000, parts.clone());
        match plan(POOLS, &pods, Some(&k), true).decision {
            RollDecision::Wait(m) => assert!(m.contains("broker 2 is catching up"), "{m}"),
            d => panic!("{d:?}"),
        }
        // Now broker 2 is an outdated replica of x as well (not yet restarted): the
        // catch-up wait does not apply to it, the per-partition gate does.
        let mut pods2 = pods.clone();
        pods2[5].outdated = true;
        match plan(POOLS, &pods2, Some(&k), true).decision {
            RollDecision::Wait(m) => {
                assert!(m.contains("below min.insync.replicas"), "{m}");
                assert!(m.contains("x-0"), "{m}");
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn waits_until_the_restarted_broker_is_back_in_every_isr() {
        let pods = [
            c(0, true, false),
            c(1, true, false),
            c(2, true, false),
            b(0, true, false),
            b(1, true, true),
            b(2, true, true),
        ];
        let k = kafka(&[0, 1, 2], 1000, vec![part("t", 1, &[0, 1, 2], &[1, 2], 2)]);
        match plan(POOLS, &pods, Some(&k), true).decision {
            RollDecision::Wait(m) => assert!(m.contains("broker 0 is catching up"), "{m}"),
            d => panic!("{d:?}"),
        }
        let k = kafka(&[0, 1, 2], 1000, healthy());
        assert_eq!(
            plan(POOLS, &pods, Some(&k), true).decision,
            RollDecision::Restart("c-broker-1".into())
        );
    }

    #[test]
    fn waits_for_readiness_registration_and_one_at_a_time() {
        let mut pods = vec![
            c(0, true, false),
            c(1, true, false),
            c(2, true, false),
            b(0, true, true),
            b(1, true, false),
            b(2, false, false),
        ];
        let k = kafka(&[0, 1, 2], 1000, healthy());
        assert!(
            matches!(plan(POOLS, &pods, Some(&k), true).decision, RollDecision::Wait(m) if m.contains("c-broker-2 is not ready"))
        );
        pods[5].ready = true;
        let k2 = kafka(&[0, 1], 1000, healthy());
        assert!(
            matches!(plan(POOLS, &pods, Some(&k2), true).decision, RollDecision::Wait(m) if m.contains("broker 2 is not registered or is fenced"))
        );
        pods[4].terminating = true;
        assert!(
            matches!(plan(POOLS, &pods, Some(&k), true).decision, RollDecision::Wait(m) if m.contains("c-broker-1 is restarting"))
        );
        pods[4].terminating = false;
        assert!(matches!(
            plan(POOLS, &pods, None, true).decision,
            RollDecision::Wait(_)
        ));
        assert!(
            matches!(plan(POOLS, &pods[..5], Some(&k), true).decision, RollDecision::Wait(m) if m.contains("2 of 3 broker pods exist"))
        );
        assert_eq!(
            plan(POOLS, &pods, Some(&k), true).decision,
            RollDecision::Restart("c-broker-0".into())
        );
    }

    #[test]
    fn a_down_outdated_pod_is_restarted_at_once() {
        let pods = [c(0, true, false), b(0, false, true)];
        assert_eq!(
            plan(
                &[(Pool::Controllers, 1), (Pool::Brokers, 1)],
                &pods,
                None,
                true
            )
            .decision,
            RollDecision::Restart("c-broker-0".into())
        );
    }

    #[test]
    fn unknown_partitions_block_a_broker_restart() {
        let pods = [c(0, true, false), b(0, true, true), b(1, true, false)];
        let mut k = kafka(&[0, 1], 1000, vec![]);
        k.partitions = Partitions::Unknown("t: boom".into());
        match plan(
            &[(Pool::Controllers, 1), (Pool::Brokers, 2)],
            &pods,
            Some(&k),
            true,
        )
        .decision
        {
            RollDecision::Wait(m) => {
                assert!(m.starts_with(UNKNOWN_PARTITIONS), "{m}");
                assert!(m.contains("t: boom"), "{m}");
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn a_controller_restarts_only_with_a_caught_up_majority_left() {
        let pods = [
            c(0, true, true),
            c(1, true, false),
            c(2, true, false),
            b(0, true, false),
        ];
        let pools = &[(Pool::Controllers, 3), (Pool::Brokers, 1)];
        let mut k = kafka(&[0], 1001, vec![]);
        assert_eq!(
            plan(pools, &pods, Some(&k), true).decision,
            RollDecision::Restart("c-controller-0".into())
        );
        if let Ok(q) = &mut k.quorum {
            q.voters.insert(1002, 1); // far behind (hw 10, lag allowed 1000: still caught up)
            q.high_watermark = 5000;
            q.voters.insert(1000, 5000);
            q.voters.insert(1001, 5000);
        }
        assert!(
            matches!(plan(pools, &pods, Some(&k), true).decision, RollDecision::Wait(m) if m.contains("majority"))
        );
        k.quorum = Err("timeout".into());
        assert!(
            matches!(plan(pools, &pods, Some(&k), true).decision, RollDecision::Wait(m) if m.contains("quorum"))
        );
    }

    #[test]
    fn preferred_leaders_are_elected_when_settled_but_not_towards_the_next_restart() {
        let pods = [
            c(0, true, false),
            b(0, true, true),
            b(1, true, false),
            b(2, true, false),
        ];
        let pools = &[(Pool::Controllers, 1), (Pool::Brokers, 3)];
        let parts = vec![
            part("a", 1, &[0, 1, 2], &[0, 1, 2], 2),
            part("b", 2, &[1, 2, 0], &[0, 1, 2], 2),
        ];
        let mut k = kafka(&[0, 1, 2], 1000, parts);
        if let Ok(q) = &mut k.quorum {
            q.voters = [(1000, 10)].into();
        }
        let p = plan(pools, &pods, Some(&k), true);
        assert_eq!(p.decision, RollDecision::Restart("c-broker-0".into()));
        assert_eq!(
            p.elect,
            [("b".to_string(), 0)],
            "a's preferred leader 0 restarts next"
        );
        assert!(plan(pools, &pods, Some(&k), false).elect.is_empty());
        // Up to date: elect everything that is off its preferred leader.
        let mut pods2 = pods.clone();
        pods2[1].outdated = false;
        let p = plan(pools, &pods2, Some(&k), true);
        assert_eq!(p.decision, RollDecision::UpToDate);
        assert_eq!(p.elect.len(), 2);
    }
}
