//! Partition reassignment as pure functions (Kafka's
//! `PartitionReassignmentReplicas` and `PartitionChangeBuilder` rules):
//! start (the target replicas are added next to the current ones),
//! complete (once every added replica is in the ISR, the removed ones go
//! and leadership moves into the target set if it must), and cancel
//! (back to the replicas before the reassignment).

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::error::ApiError;
use crate::metadata::{MetadataRecord, PartitionImage};

/// A partition's whole replica state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replicas {
    /// All replicas.
    pub replicas: Vec<i32>,
    /// Being added.
    pub adding: Vec<i32>,
    /// To be removed on completion.
    pub removing: Vec<i32>,
    /// Leader.
    pub leader: i32,
    /// ISR.
    pub isr: Vec<i32>,
}

impl Replicas {
    /// The record that sets this state.
    pub fn record(self, topic_id: Uuid, partition: i32) -> MetadataRecord {
        MetadataRecord::ReassignPartition {
            topic_id,
            partition,
            replicas: self.replicas,
            adding: self.adding,
            removing: self.removing,
            leader: self.leader,
            isr: self.isr,
        }
    }
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(ResponseError::InvalidReplicaAssignment, msg)
}

/// The replicas before any ongoing reassignment.
fn original(p: &PartitionImage) -> Vec<i32> {
    p.replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect()
}

/// The state with only `target` as replicas: the ISR narrowed to it and a
/// leader inside it (the current one if it can stay). `None` when no
/// target replica is in the ISR.
fn finish(p: &PartitionImage, target: &[i32], usable: &impl Fn(i32) -> bool) -> Option<Replicas> {
    let isr: Vec<i32> = target
        .iter()
        .copied()
        .filter(|r| p.isr.contains(r))
        .collect();
    if isr.is_empty() {
        return None;
    }
    let leader = if isr.contains(&p.leader) && usable(p.leader) {
        p.leader
    } else {
        isr.iter().copied().find(|&r| usable(r)).unwrap_or(-1)
    };
    Some(Replicas {
        replicas: target.to_vec(),
        adding: vec![],
        removing: vec![],
        leader,
        isr,
    })
}

/// Starts (or replaces) a reassignment of `p` to `target`, whose brokers
/// `registered` says exist.
pub fn start(
    p: &PartitionImage,
    target: &[i32],
    registered: impl Fn(i32) -> bool,
    usable: impl Fn(i32) -> bool,
) -> Result<Replicas, ApiError> {
    if target.is_empty() {
        return Err(invalid("The replica list cannot be empty."));
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != target.len() {
        return Err(invalid(format!(
            "The replica list {target:?} contains duplicates."
        )));
    }
    if let Some(b) = target.iter().find(|b| !registered(**b)) {
        return Err(invalid(format!(
            "The manual partition assignment includes broker {b}, but no such broker is registered."
        )));
    }
    let orig = original(p);
    let adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|r| !orig.contains(r))
        .collect();
    let removing: Vec<i32> = orig
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    if adding.is_empty() {
        // Only removals (or a reorder): done at once, if a target replica is in sync.
        return finish(p, target, &usable)
            .ok_or_else(|| invalid("None of the target replicas is in the ISR."));
    }
    let mut replicas = target.to_vec();
    replicas.extend(removing.iter().copied());
    // Replicas added by an earlier reassignment and no longer wanted leave
    // the ISR with it.
    let isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| replicas.contains(r))
        .collect();
    let leader = if replicas.contains(&p.leader) {
        p.leader
    } else {
        -1
    };
    Ok(Replicas {
        replicas,
        adding,
        removing,
        leader,
        isr,
    })
}

/// Completes `p`'s reassignment once every added replica is in the ISR.
pub fn complete(p: &PartitionImage, usable: impl Fn(i32) -> bool) -> Option<Replicas> {
    if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
        return None;
    }
    if !p.adding_replicas.iter().all(|r| p.isr.contains(r)) {
        return None;
    }
    let target: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.removing_replicas.contains(r))
        .collect();
    finish(p, &target, &usable)
}

/// Cancels `p`'s reassignment: back to the replicas it had before.
pub fn cancel(p: &PartitionImage, usable: impl Fn(i32) -> bool) -> Result<Replicas, ApiError> {
    if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
        return Err(ApiError::code(ResponseError::NoReassignmentInProgress));
    }
    finish(p, &original(p), &usable)
        .ok_or_else(|| invalid("None of the original replicas is in the ISR."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionImage {
        PartitionImage {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            ..Default::default()
        }
    }

    fn apply(p: &mut PartitionImage, r: &Replicas) {
        p.replicas = r.replicas.clone();
        p.adding_replicas = r.adding.clone();
        p.removing_replicas = r.removing.clone();
        p.leader = r.leader;
        p.isr = r.isr.clone();
    }

    #[test]
    fn move_a_replica_then_complete_when_it_is_in_sync() {
        let all = |_| true;
        let mut p = part(&[1, 2], &[1, 2], 1);
        let s = start(&p, &[2, 3], all, all).expect("started");
        assert_eq!(
            (s.replicas.clone(), s.adding.clone(), s.removing.clone()),
            (vec![2, 3, 1], vec![3], vec![1])
        );
        assert_eq!((s.leader, s.isr.clone()), (1, vec![1, 2]));
        apply(&mut p, &s);
        assert_eq!(complete(&p, all), None, "3 is not in sync yet");
        p.isr.push(3);
        let done = complete(&p, all).expect("complete");
        assert_eq!(done.replicas, vec![2, 3]);
        assert_eq!(done.isr, vec![2, 3]);
        assert_eq!(done.leader, 2, "the leader leaves with its replica");
        assert!(done.adding.is_empty() && done.removing.is_empty());
    }

    #[test]
    fn refusals_and_cancel() {
        let all = |_| true;
        let p = part(&[1, 2], &[1, 2], 1);
        assert_eq!(
            start(&p, &[], all, all).expect_err("empty").code,
            ResponseError::InvalidReplicaAssignment.code()
        );
        assert_eq!(
            start(&p, &[2, 2], all, all).expect_err("dup").code,
            ResponseError::InvalidReplicaAssignment.code()
        );
        assert_eq!(
            start(&p, &[2, 9], |b| b != 9, all)
                .expect_err("unknown")
                .code,
            ResponseError::InvalidReplicaAssignment.code()
        );
        assert_eq!(
            cancel(&p, all).expect_err("none").code,
            ResponseError::NoReassignmentInProgress.code()
        );
        // Shrinking is immediate.
        let s = start(&p, &[2], all, all).expect("shrink");
        assert_eq!((s.replicas, s.isr, s.leader), (vec![2], vec![2], 2));
        // Cancel goes back.
        let mut q = p.clone();
        apply(&mut q, &start(&p, &[3, 4], all, all).expect("start"));
        let c = cancel(&q, all).expect("cancel");
        assert_eq!((c.replicas, c.isr, c.leader), (vec![1, 2], vec![1, 2], 1));
    }
}
