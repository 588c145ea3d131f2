//! Kafka-aware rolling restarts: which broker to restart next, if any. Pure.
//!
//! The StatefulSet uses `OnDelete`, so a new pod template only reaches a broker when the
//! operator deletes its pod. It does so one broker at a time, and only when every broker
//! is ready and registered and no partition is under-replicated, so a restart never
//! takes away a second copy of any data.

use super::status::{KafkaView, PodView, UnderReplicated};

/// What the roller decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollDecision {
    /// Every pod runs the update revision.
    UpToDate,
    /// Restart this pod now.
    Restart(String),
    /// Pods are outdated but restarting one now is unsafe; why.
    Wait(String),
}

/// How a wait for an unknown under-replicated count starts (an error, worth a warning).
pub const UNKNOWN_URP: &str = "cannot count under-replicated partitions";

/// Picks the next pod to restart: the highest outdated ordinal.
pub fn next(
    replicas: i32,
    update_revision: Option<&str>,
    pods: &[PodView],
    kafka: Option<&KafkaView>,
) -> RollDecision {
    let Some(rev) = update_revision else {
        return RollDecision::UpToDate;
    };
    let outdated: Vec<&PodView> = pods
        .iter()
        .filter(|p| p.revision.as_deref() != Some(rev))
        .collect();
    let Some(target) = outdated.iter().max_by_key(|p| p.ordinal) else {
        return RollDecision::UpToDate;
    };
    if let Some(p) = pods.iter().find(|p| p.terminating) {
        return RollDecision::Wait(format!("{} is restarting", p.name));
    }
    if (pods.len() as i32) < replicas {
        return RollDecision::Wait("not all broker pods exist yet".into());
    }
    // A broker that is down anyway may be restarted: it cannot lose more.
    if !target.ready {
        return RollDecision::Restart(target.name.clone());
    }
    if let Some(p) = pods.iter().find(|p| !p.ready) {
        return RollDecision::Wait(format!("{} is not ready", p.name));
    }
    let Some(k) = kafka else {
        return RollDecision::Wait("cluster metadata unavailable".into());
    };
    if let Some(p) = pods.iter().find(|p| !k.brokers.contains(&p.ordinal)) {
        return RollDecision::Wait(format!("broker {} is not registered", p.ordinal));
    }
    match &k.under_replicated {
        UnderReplicated::NotCounted => {
            return RollDecision::Wait("under-replicated partitions not counted".into())
        }
        UnderReplicated::Unknown(why) => {
            return RollDecision::Wait(format!("{UNKNOWN_URP}: {why}"))
        }
        UnderReplicated::Count(n) if *n > 0 => {
            return RollDecision::Wait(format!("{n} partitions are under-replicated"))
        }
        UnderReplicated::Count(_) => {}
    }
    RollDecision::Restart(target.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ordinal: i32, ready: bool, rev: &str) -> PodView {
        PodView {
            ordinal,
            name: format!("b-{ordinal}"),
            ready,
            revision: Some(rev.into()),
            terminating: false,
            image: None,
        }
    }
    fn kafka(brokers: &[i32], urp: usize) -> KafkaView {
        KafkaView {
            cluster_id: None,
            brokers: brokers.iter().copied().collect(),
            under_replicated: UnderReplicated::Count(urp),
        }
    }

    #[test]
    fn restarts_highest_outdated_when_safe() {
        let pods = [
            pod(0, true, "old"),
            pod(1, true, "old"),
            pod(2, true, "new"),
        ];
        assert_eq!(
            next(3, Some("new"), &pods, Some(&kafka(&[0, 1, 2], 0))),
            RollDecision::Restart("b-1".into())
        );
    }

    #[test]
    fn waits_for_isr_readiness_and_registration() {
        let pods = [pod(0, true, "old"), pod(1, true, "new")];
        assert!(
            matches!(next(2, Some("new"), &pods, Some(&kafka(&[0, 1], 3))), RollDecision::Wait(m) if m.contains("under-replicated"))
        );
        assert!(
            matches!(next(2, Some("new"), &pods, Some(&kafka(&[0], 0))), RollDecision::Wait(m) if m.contains("not registered"))
        );
        let pods2 = [pod(0, true, "old"), pod(1, false, "new")];
        assert!(
            matches!(next(2, Some("new"), &pods2, Some(&kafka(&[0, 1], 0))), RollDecision::Wait(m) if m.contains("b-1 is not ready"))
        );
        assert!(matches!(
            next(2, Some("new"), &pods, None),
            RollDecision::Wait(_)
        ));
    }

    #[test]
    fn a_down_outdated_broker_is_restarted_and_up_to_date_is_left_alone() {
        let pods = [pod(0, false, "old")];
        assert_eq!(
            next(1, Some("new"), &pods, None),
            RollDecision::Restart("b-0".into())
        );
        let pods = [pod(0, true, "new")];
        assert_eq!(next(1, Some("new"), &pods, None), RollDecision::UpToDate);
    }

    #[test]
    fn uncounted_isr_is_not_safe() {
        let pods = [pod(0, true, "old"), pod(1, true, "new")];
        let mut k = kafka(&[0, 1], 0);
        k.under_replicated = UnderReplicated::NotCounted;
        assert!(
            matches!(next(2, Some("new"), &pods, Some(&k)), RollDecision::Wait(m) if m.contains("not counted"))
        );
    }

    #[test]
    fn a_count_that_failed_blocks_the_roll() {
        let pods = [pod(0, true, "old"), pod(1, true, "new")];
        let mut k = kafka(&[0, 1], 0);
        k.under_replicated =
            UnderReplicated::Unknown("the brokers could not describe 1 topic(s): t: boom".into());
        match next(2, Some("new"), &pods, Some(&k)) {
            RollDecision::Wait(m) => {
                assert!(m.starts_with(UNKNOWN_URP), "{m}");
                assert!(m.contains("t: boom"), "{m}");
            }
            other => panic!("a failed count must block the roll: {other:?}"),
        }
    }

    #[test]
    fn one_at_a_time() {
        let mut pods = [pod(0, true, "old"), pod(1, true, "old")];
        pods[1].terminating = true;
        assert!(
            matches!(next(2, Some("new"), &pods, Some(&kafka(&[0, 1], 0))), RollDecision::Wait(m) if m.contains("restarting"))
        );
    }
}
