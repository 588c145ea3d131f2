//! The group coordinator's side of exactly-once (KIP-98, KIP-447):
//! TxnOffsetCommit's member checks (Kafka's `validateTransactionalOffsetCommit`
//! for classic and KIP-848 consumer groups), its transactional write to
//! `__consumer_offsets`, and the end of a transaction there (Kafka's
//! `GroupCoordinator.completeTransaction` and `replayEndTransactionMarker`):
//! the marker is appended and the producer's pending offsets become the
//! committed ones (COMMIT) or are dropped (ABORT). The loader replays the
//! same from the log (`loader.rs`).

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use tracing::{debug, warn};

use super::classic::{ClassicGroup, GroupState};
use super::consumer::ConsumerGroup;
use super::coordinator::{write_error, GroupCoordinator, GroupRecord, GroupWrite, OFFSETS_TOPIC};
use crate::broker::BrokerState;
use crate::txn::marker::EndTxnMarker;

/// Kafka's `ClassicGroup.validateOffsetCommit` with `isTransactional`:
/// member id, generation and instance id are checked only when one of them
/// is given (older TxnOffsetCommit versions carry none of them).
pub fn validate_classic(
    g: &ClassicGroup,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), i16> {
    if g.state == GroupState::Dead {
        return Err(ResponseError::CoordinatorNotAvailable.code());
    }
    if generation < 0 && g.state == GroupState::Empty {
        return Ok(());
    }
    if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
        return super::commit::check_classic_member(g, member_id, instance_id, generation);
    }
    Ok(())
}

/// Kafka's `ConsumerGroup.validateOffsetCommit` with `isTransactional`; a
/// stale member epoch is ILLEGAL_GENERATION for TxnOffsetCommit (Kafka's
/// `OffsetMetadataManager.validateTransactionalOffsetCommit`).
pub fn validate_consumer(
    g: &ConsumerGroup,
    member_id: &str,
    instance_id: Option<&str>,
    member_epoch: i32,
) -> Result<(), i16> {
    if member_epoch < 0 && g.is_empty() {
        return Ok(());
    }
    if member_epoch == -1 && member_id.is_empty() && instance_id.is_none() {
        return Ok(());
    }
    g.validate_offset_commit(member_id, member_epoch)
        .map_err(|code| {
            if code == ResponseError::StaleMemberEpoch.code() {
                ResponseError::IllegalGeneration.code()
            } else {
                code
            }
        })
}

impl GroupWrite<'_> {
    /// Appends `recs` of `group` as one transactional batch of producer
    /// (`producer_id`, `producer_epoch`); [`GroupWrite::replicated`] waits
    /// for it as for the other writes.
    pub fn append_txn(
        &self,
        p: i32,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        recs: Vec<GroupRecord>,
    ) -> Result<(), i16> {
        let a =
            self.state
                .append_group_batch(p, group, recs, Some((producer_id, producer_epoch)))?;
        self.appended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(a);
        Ok(())
    }
}

impl GroupCoordinator {
    /// WriteTxnMarkers for `__consumer_offsets` partition `p` (Kafka's
    /// `completeTransaction`): appends the marker in the loaded leader
    /// epoch, applies it to the producer's pending offsets and answers once
    /// the in-sync replicas hold it. A partition not active here answers
    /// NOT_LEADER_OR_FOLLOWER, so the transaction coordinator retries (as
    /// Kafka maps the coordinator errors).
    pub async fn complete_txn(
        &self,
        state: &BrokerState,
        p: i32,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTxnMarker,
        timeout: Duration,
    ) -> i16 {
        let not_leader = ResponseError::NotLeaderOrFollower.code();
        let mut groups = self.lock().await;
        let Ok(epoch) = self.active_epoch(p) else {
            return not_leader;
        };
        let Some(part) = state.replicas.get(OFFSETS_TOPIC, p) else {
            return not_leader;
        };
        if part.leader_epoch() != epoch {
            return not_leader;
        }
        let info = match part.append_marker(producer_id, producer_epoch, marker) {
            Ok(i) => i,
            Err(e) => {
                debug!(partition = p, error = %e, "transaction marker refused on {OFFSETS_TOPIC}");
                return e.code;
            }
        };
        let done = groups.txn_of(p).end(producer_id, marker.commit);
        debug!(
            partition = p,
            producer_id,
            commit = marker.commit,
            offsets = done.len(),
            "transaction ended on {OFFSETS_TOPIC}"
        );
        super::loader::materialize(&mut groups, done);
        drop(groups);
        match part
            .wait_replicated(info.last_offset + 1, epoch, 0, timeout)
            .await
        {
            Ok(()) => 0,
            Err(e) => {
                warn!(partition = p, error = %e, "transaction marker on {OFFSETS_TOPIC} not replicated");
                match write_error(e.code) {
                    c if c == ResponseError::NotCoordinator.code()
                        || c == ResponseError::CoordinatorNotAvailable.code() =>
                    {
                        not_leader
                    }
                    c => c,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classic_group_checks_members_only_when_the_request_names_one() {
        let g = ClassicGroup::new("g", 0);
        // Empty group, no generation: a simple commit.
        assert_eq!(validate_classic(&g, "", None, -1), Ok(()));
        // A member of a group that has none.
        assert_eq!(
            validate_classic(&g, "m", None, -1),
            Ok(()),
            "generation < 0 on an empty group is accepted"
        );
        assert_eq!(
            validate_classic(&g, "m", None, 3),
            Err(ResponseError::UnknownMemberId.code())
        );
    }
}
