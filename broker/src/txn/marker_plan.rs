//! Where a transaction's markers go and what a partition's WriteTxnMarkers
//! answer means for the coordinator (Kafka's
//! `TransactionMarkerChannelManager.addTxnMarkersToBrokerQueue` and
//! `TransactionMarkerRequestCompletionHandler`). Pure: the coordinator's
//! sender keeps one queue per destination broker (the local one is served
//! by the replica manager directly) and asks these functions what to do.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;

use super::state::TxnPartition;

/// What the metadata says about a partition's leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderLookup {
    /// The topic or partition does not exist (deleted).
    NoSuchPartition,
    /// The partition exists but has no leader now.
    NoLeader,
    /// Its leader broker.
    Leader(i32),
}

/// The markers of one transaction, by destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarkerPlan {
    /// Partitions by the broker that leads them.
    pub by_broker: BTreeMap<i32, Vec<TxnPartition>>,
    /// Partitions without a leader: retry once the metadata changes.
    pub no_leader: Vec<TxnPartition>,
    /// Partitions that no longer exist: no marker is needed.
    pub gone: Vec<TxnPartition>,
}

/// Groups a transaction's partitions by leader.
pub fn plan_markers(
    partitions: &BTreeSet<TxnPartition>,
    leader_of: impl Fn(&str, i32) -> LeaderLookup,
) -> MarkerPlan {
    let mut plan = MarkerPlan::default();
    for tp in partitions {
        match leader_of(&tp.0, tp.1) {
            LeaderLookup::Leader(b) => plan.by_broker.entry(b).or_default().push(tp.clone()),
            LeaderLookup::NoLeader => plan.no_leader.push(tp.clone()),
            LeaderLookup::NoSuchPartition => plan.gone.push(tp.clone()),
        }
    }
    plan
}

/// What one partition's marker result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerOutcome {
    /// The marker is written (or the partition can never take one):
    /// remove the partition from those waiting.
    Done,
    /// Send it again, to the partition's leader of the moment.
    Retry,
    /// The producer epoch or the coordinator epoch moved on: stop sending
    /// this transaction's markers (a newer coordinator or epoch owns it).
    Abandon,
    /// An error Kafka treats as a bug (it throws); log it and retry, as a
    /// broker must not crash or stall on it.
    Unexpected,
}

/// Kafka's handling of a per-partition WriteTxnMarkers error.
pub fn marker_outcome(error: Option<ResponseError>) -> MarkerOutcome {
    use ResponseError as E;
    match error {
        None => MarkerOutcome::Done,
        Some(
            E::UnknownTopicOrPartition
            | E::NotLeaderOrFollower
            | E::NotEnoughReplicas
            | E::NotEnoughReplicasAfterAppend
            | E::RequestTimedOut
            | E::KafkaStorageError,
        ) => MarkerOutcome::Retry,
        Some(E::InvalidProducerEpoch | E::TransactionCoordinatorFenced) => MarkerOutcome::Abandon,
        // The producer could not have written there either.
        Some(E::UnsupportedForMessageFormat | E::UnsupportedVersion) => MarkerOutcome::Done,
        Some(_) => MarkerOutcome::Unexpected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_grouped_by_leader() {
        let parts: BTreeSet<TxnPartition> = [("a", 0), ("a", 1), ("b", 0), ("c", 0), ("d", 0)]
            .iter()
            .map(|(t, p)| ((*t).to_owned(), *p))
            .collect();
        let plan = plan_markers(&parts, |t, p| match (t, p) {
            ("a", 0) | ("b", 0) => LeaderLookup::Leader(1),
            ("a", 1) => LeaderLookup::Leader(2),
            ("c", _) => LeaderLookup::NoLeader,
            _ => LeaderLookup::NoSuchPartition,
        });
        assert_eq!(plan.by_broker.len(), 2);
        assert_eq!(
            plan.by_broker[&1],
            vec![("a".to_owned(), 0), ("b".to_owned(), 0)]
        );
        assert_eq!(plan.by_broker[&2], vec![("a".to_owned(), 1)]);
        assert_eq!(plan.no_leader, vec![("c".to_owned(), 0)]);
        assert_eq!(plan.gone, vec![("d".to_owned(), 0)]);
    }

    #[test]
    fn outcomes_as_kafka() {
        assert_eq!(marker_outcome(None), MarkerOutcome::Done);
        assert_eq!(
            marker_outcome(Some(ResponseError::NotLeaderOrFollower)),
            MarkerOutcome::Retry
        );
        assert_eq!(
            marker_outcome(Some(ResponseError::TransactionCoordinatorFenced)),
            MarkerOutcome::Abandon
        );
        assert_eq!(
            marker_outcome(Some(ResponseError::UnsupportedForMessageFormat)),
            MarkerOutcome::Done
        );
        assert_eq!(
            marker_outcome(Some(ResponseError::CorruptMessage)),
            MarkerOutcome::Unexpected
        );
    }
}
