//! What scaling does now, from what the reconciler observed: pure, unit-tested. The
//! plans themselves are in [`super::scale`].

use super::scale::{
    balance_plan, blocked_message, drain_plan, plan_id, removed, Move, ScaleStatus,
};
use super::view::{KafkaView, PartitionView, Partitions};
use runnel_admin::OngoingReassignments;
use runnel_crds::cluster::RebalanceMode;

/// What the reconciler observed for scaling.
#[derive(Clone, Copy, Debug)]
pub struct ScaleInput<'a> {
    /// The broker StatefulSet's replicas now.
    pub current: i32,
    /// `spec.replicas`.
    pub desired: i32,
    /// Kafka's view.
    pub kafka: Option<&'a KafkaView>,
    /// The reassignments in progress, or why they could not be listed.
    pub in_progress: Result<&'a OngoingReassignments, &'a str>,
    /// `spec.rebalance.mode`.
    pub mode: RebalanceMode,
    /// The value of the approval annotation.
    pub approved: Option<&'a str>,
}

/// What scaling does now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScaleAction {
    /// Nothing.
    None,
    /// Keep the current broker count and wait (a drain or state not known yet).
    Hold,
    /// Refused scale-down: keep the current broker count.
    Blocked,
    /// Submit these moves (AlterPartitionReassignments); with `hold`, keep the current
    /// broker count meanwhile (a drain).
    Reassign {
        /// Keep the broker count.
        hold: bool,
    },
    /// The removed brokers hold no replica any more: lower the broker count.
    Shrink,
}

/// The moves of reassignments in progress: to the replicas that stay.
fn ongoing_moves(ongoing: &OngoingReassignments, why: &str) -> Vec<Move> {
    ongoing
        .iter()
        .map(|((t, p), r)| Move {
            topic: t.clone(),
            partition: *p,
            from: r
                .replicas
                .iter()
                .copied()
                .filter(|b| !r.adding.contains(b))
                .collect(),
            to: r
                .replicas
                .iter()
                .copied()
                .filter(|b| !r.removing.contains(b))
                .collect(),
            reason: format!("in progress: {why}"),
        })
        .collect()
}

/// Decides what scaling does, and what status shows of it.
pub fn decide(input: &ScaleInput<'_>) -> (ScaleAction, ScaleStatus) {
    let mut st = ScaleStatus::default();
    let shrinking = input.desired < input.current;
    let known = match input.kafka.map(|k| &k.partitions) {
        Some(Partitions::Known(ps)) => Some((input.kafka, ps)),
        _ => None,
    };
    let Some((Some(kafka), parts)) = known else {
        if shrinking {
            st.scaling = Some(format!(
                "scale-down from {} to {} brokers waits: the partitions are unknown",
                input.current, input.desired
            ));
            return (ScaleAction::Hold, st);
        }
        return (ScaleAction::None, st);
    };
    let ongoing = match input.in_progress {
        Ok(o) => o,
        Err(why) => {
            st.scaling = Some(format!("cannot list partition reassignments: {why}"));
            let a = if shrinking {
                ScaleAction::Hold
            } else {
                ScaleAction::None
            };
            return (a, st);
        }
    };
    if shrinking {
        let removing = removed(input.current, input.desired);
        let remaining: Vec<i32> = (0..input.desired).collect();
        let list: Vec<String> = removing.iter().map(i32::to_string).collect();
        let list = list.join(",");
        // While partitions move, Metadata lists their old and new replicas together:
        // wait for the moves to finish before judging replication factors.
        if !ongoing.is_empty() {
            st.moves = ongoing_moves(
                ongoing,
                &format!("draining broker(s) {list} before the scale-down"),
            );
            st.scaling = Some(format!(
                "draining broker(s) {list}: {} reassignment(s) in progress; the StatefulSet shrinks to {} after",
                ongoing.len(),
                input.desired
            ));
            return (ScaleAction::Hold, st);
        }
        match drain_plan(parts, &removing, &remaining, &kafka.racks) {
            Err(blockers) => {
                st.blocked = Some(blocked_message(input.current, input.desired, &blockers));
                (ScaleAction::Blocked, st)
            }
            Ok(moves) if moves.is_empty() => {
                st.scaling = Some(format!(
                    "broker(s) {list} hold no replica: scaling down to {}",
                    input.desired
                ));
                (ScaleAction::Shrink, st)
            }
            Ok(moves) => {
                if let Some(b) = remaining.iter().find(|b| !kafka.brokers.contains(b)) {
                    st.moves = moves;
                    st.scaling = Some(format!(
                        "draining broker(s) {list} waits: broker {b} is not registered or fenced"
                    ));
                    return (ScaleAction::Hold, st);
                }
                st.moves = moves;
                st.scaling = Some(format!(
                    "draining broker(s) {list}: moving their replicas before the StatefulSet shrinks to {}",
                    input.desired
                ));
                (ScaleAction::Reassign { hold: true }, st)
            }
        }
    } else {
        if !ongoing.is_empty() {
            st.moves = ongoing_moves(ongoing, "rebalance");
            st.scaling = Some(format!(
                "{} partition reassignment(s) in progress",
                ongoing.len()
            ));
            return (ScaleAction::None, st);
        }
        let brokers: Vec<i32> = (0..input.desired).collect();
        if brokers.iter().any(|b| !kafka.brokers.contains(b))
            || parts.iter().any(PartitionView::under_min_isr)
        {
            // New brokers not registered yet, or a partition unhealthy: no rebalance.
            return (ScaleAction::None, st);
        }
        let moves = balance_plan(parts, &brokers, &kafka.racks);
        if moves.is_empty() {
            return (ScaleAction::None, st);
        }
        let id = plan_id(&moves);
        let go = input.mode == RebalanceMode::Auto || input.approved == Some(id.as_str());
        st.scaling = Some(if go {
            format!(
                "rebalancing {} partition(s) across {} brokers",
                moves.len(),
                brokers.len()
            )
        } else {
            format!(
                "rebalance of {} partition(s) awaits approval: annotate kafka.runnel.dev/approve-rebalance={id}",
                moves.len()
            )
        });
        st.moves = moves;
        st.rebalance_id = Some(id);
        if go {
            (ScaleAction::Reassign { hold: false }, st)
        } else {
            (ScaleAction::None, st)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::scale::tests::{after, four_brokers, part};
    use std::collections::BTreeMap;

    fn kview(brokers: &[i32], parts: Vec<PartitionView>) -> KafkaView {
        KafkaView {
            cluster_id: None,
            brokers: brokers.iter().copied().collect(),
            racks: BTreeMap::new(),
            quorum: Err("n/a".into()),
            partitions: Partitions::Known(parts),
        }
    }

    fn input<'a>(
        current: i32,
        desired: i32,
        kafka: &'a KafkaView,
        ongoing: &'a OngoingReassignments,
    ) -> ScaleInput<'a> {
        ScaleInput {
            current,
            desired,
            kafka: Some(kafka),
            in_progress: Ok(ongoing),
            mode: RebalanceMode::Auto,
            approved: None,
        }
    }

    #[test]
    fn decide_scale_down() {
        let none = OngoingReassignments::new();
        let k = kview(&[0, 1, 2, 3], four_brokers());
        let (a, st) = decide(&input(4, 2, &k, &none));
        assert_eq!(a, ScaleAction::Reassign { hold: true });
        assert!(!st.moves.is_empty());
        // Drained: shrink.
        let done = after(&four_brokers(), &st.moves);
        let k2 = kview(&[0, 1, 2, 3], done);
        assert_eq!(decide(&input(4, 2, &k2, &none)).0, ScaleAction::Shrink);
        // In progress: hold, showing the moves in flight.
        let mut ongoing = OngoingReassignments::new();
        ongoing.insert(
            ("t".into(), 0),
            runnel_admin::OngoingReassignment {
                replicas: vec![1, 0, 3],
                adding: vec![1],
                removing: vec![3],
            },
        );
        let (a, st) = decide(&input(4, 2, &k2, &ongoing));
        assert_eq!(a, ScaleAction::Hold);
        assert_eq!(st.moves[0].from, [0, 3]);
        assert_eq!(st.moves[0].to, [1, 0]);
        assert!(
            st.moves[0].reason.contains("scale-down"),
            "{:?}",
            st.moves[0]
        );
        // Mid-move, Metadata shows old and new replicas (RF 3 here): not refused, held.
        let union = kview(&[0, 1, 2, 3], vec![part("t", 0, &[1, 0, 3])]);
        assert_eq!(decide(&input(4, 2, &union, &ongoing)).0, ScaleAction::Hold);
        // Unknown partitions: hold.
        let mut k3 = k.clone();
        k3.partitions = Partitions::Unknown("x".into());
        assert_eq!(decide(&input(4, 2, &k3, &none)).0, ScaleAction::Hold);
        // RF 2 onto 1 broker: refused.
        let (a, st) = decide(&input(4, 1, &k, &none));
        assert_eq!(a, ScaleAction::Blocked);
        let msg = st.blocked.expect("message");
        assert!(msg.contains("t (replication factor 2)"), "{msg}");
    }

    #[test]
    fn decide_scale_up_auto_and_manual() {
        let none = OngoingReassignments::new();
        let parts: Vec<_> = (0..6)
            .map(|i| part("t", i, &[i % 3, (i + 1) % 3]))
            .collect();
        // Broker 3 not registered yet: nothing.
        let k = kview(&[0, 1, 2], parts.clone());
        assert_eq!(decide(&input(4, 4, &k, &none)).0, ScaleAction::None);
        let k = kview(&[0, 1, 2, 3], parts);
        let (a, st) = decide(&input(4, 4, &k, &none));
        assert_eq!(a, ScaleAction::Reassign { hold: false });
        let id = st.rebalance_id.clone().expect("id");
        let mut manual = input(4, 4, &k, &none);
        manual.mode = RebalanceMode::Manual;
        let (a, st2) = decide(&manual);
        assert_eq!(a, ScaleAction::None);
        assert_eq!(st2.moves, st.moves, "the plan is shown");
        assert!(st2.scaling.expect("says").contains(&id));
        manual.approved = Some("other");
        assert_eq!(decide(&manual).0, ScaleAction::None);
        manual.approved = Some(&id);
        assert_eq!(decide(&manual).0, ScaleAction::Reassign { hold: false });
        // Balanced: nothing.
        let k = kview(&[0, 1, 2, 3], four_brokers());
        assert_eq!(
            decide(&input(4, 4, &k, &none)),
            (ScaleAction::None, ScaleStatus::default())
        );
    }
}
