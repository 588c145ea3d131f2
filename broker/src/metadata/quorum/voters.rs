//! KIP-853 voter changes on the quorum leader: AddRaftVoter and
//! RemoveRaftVoter mapped onto openraft membership changes, with the checks
//! and error codes of Kafka's `AddVoterHandler` / `RemoveVoterHandler`.
//!
//! - A quorum is *dynamic* (Kafka's kraft.version 1) when every voter has a
//!   directory id: it was formed by a standalone controller (or grown from
//!   one). A static quorum (`controller.quorum.voters`, kraft.version 0)
//!   refuses both changes with UNSUPPORTED_VERSION, as Kafka does.
//! - A new voter must already follow the log as an observer (an openraft
//!   learner) with the directory id asked for, and have caught up with the
//!   leader; it is then promoted (`AddVoterIds`, joint consensus).
//! - A removed voter leaves the membership; if it keeps running it joins
//!   again as an observer (as a removed Kafka voter goes on fetching).

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;
use uuid::Uuid;

use super::types::{to_raft_id, QuorumNode};
use super::MetadataQuorum;

/// How long the leader waits for a new voter to catch up with its log.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Why a voter change was refused (each maps to one Kafka error code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoterChangeError {
    /// This node does not lead the quorum (NOT_CONTROLLER / NOT_LEADER).
    #[error("not the quorum leader")]
    NotLeader,
    /// A static quorum: UNSUPPORTED_VERSION.
    #[error("{0}")]
    Unsupported(String),
    /// Another change in progress, or the voter not ready: REQUEST_TIMED_OUT.
    #[error("{0}")]
    TimedOut(String),
    /// DUPLICATE_VOTER.
    #[error("{0}")]
    Duplicate(String),
    /// VOTER_NOT_FOUND.
    #[error("{0}")]
    NotFound(String),
    /// INVALID_REQUEST.
    #[error("{0}")]
    Invalid(String),
    /// The raft core failed (UNKNOWN_SERVER_ERROR).
    #[error("{0}")]
    Failed(String),
}

/// Kafka's `ReplicaKey.toString()`.
fn replica_key(id: i32, dir: Option<Uuid>) -> String {
    match dir {
        Some(d) => format!(
            "ReplicaKey(id={id}, directoryId={})",
            crate::log::topic_id_string(&d)
        ),
        None => format!("ReplicaKey(id={id}, directoryId=<undefined>)"),
    }
}

/// One consistent view of the membership, taken on the leader.
struct View {
    leads: bool,
    /// A membership change is not committed yet (or is a joint config).
    pending: bool,
    voters: Vec<(u64, QuorumNode)>,
    learners: Vec<(u64, QuorumNode)>,
    last_log_index: Option<u64>,
}

impl View {
    fn dynamic(&self) -> bool {
        !self.voters.is_empty() && self.voters.iter().all(|(_, n)| n.directory_id.is_some())
    }

    fn keys(&self) -> String {
        let keys: Vec<String> = self
            .voters
            .iter()
            .map(|(id, n)| replica_key(i32::try_from(*id).unwrap_or(-1), n.directory_id))
            .collect();
        format!("[{}]", keys.join(", "))
    }
}

/// How long a change waits for the previous one to be committed and applied
/// before it is refused as in progress.
const SETTLE: Duration = Duration::from_secs(2);

fn pending(m: &openraft::RaftMetrics<u64, QuorumNode>) -> bool {
    let stored = &m.membership_config;
    let applied = m.last_applied.map(|l| l.index);
    stored.membership().get_joint_config().len() > 1
        || stored.log_id().is_some_and(|l| Some(l.index) > applied)
}

impl MetadataQuorum {
    /// Waits (up to [`SETTLE`]) until no membership change is pending, so a
    /// change right after another (whose metrics lag its answer) is not
    /// refused for nothing.
    async fn settle(&self) {
        let mut m = self.inner.raft.metrics();
        let _ = tokio::time::timeout(SETTLE, m.wait_for(|x| !pending(x))).await;
    }

    fn view(&self) -> View {
        let m = self.inner.raft.metrics();
        let b = m.borrow();
        let mem = b.membership_config.membership();
        let pending = pending(&b);
        let node = |id: u64| (id, mem.get_node(&id).cloned().unwrap_or_default());
        View {
            leads: b.current_leader == Some(b.id),
            pending,
            voters: mem.voter_ids().map(node).collect(),
            learners: mem.learner_ids().map(node).collect(),
            last_log_index: b.last_log_index,
        }
    }

    /// Once no change is pending (see [`Self::settle`]): the membership as
    /// seen by a leader of a dynamic quorum, or Kafka's error for `verb`
    /// ("adding" / "removing") a voter now.
    async fn ready_for_change(&self, verb: &str) -> Result<View, VoterChangeError> {
        self.settle().await;
        let view = self.view();
        if !view.leads {
            return Err(VoterChangeError::NotLeader);
        }
        if view.pending {
            return Err(VoterChangeError::TimedOut(
                "Request timed out waiting for leader to handle previous voter change request"
                    .into(),
            ));
        }
        if !view.dynamic() {
            return Err(VoterChangeError::Unsupported(format!(
                "Cluster doesn't support {verb} voter because the kraft.version feature is 0"
            )));
        }
        Ok(view)
    }

    /// Whether the quorum's voter set can change (every voter has a
    /// directory id: Kafka's kraft.version 1).
    pub fn is_dynamic(&self) -> bool {
        self.view().dynamic()
    }

    /// AddRaftVoter, on the leader: promotes the observer `id` (whose
    /// metadata directory is `dir`) to a voter. `listener` is the default
    /// controller listener name, whose endpoint `endpoints` must include.
    pub async fn add_voter(
        &self,
        id: i32,
        dir: Uuid,
        endpoints: Vec<(String, String, u16)>,
        listener: &str,
    ) -> Result<(), VoterChangeError> {
        let rid = match to_raft_id(id) {
            Some(r) if !dir.is_nil() => r,
            _ => {
                return Err(VoterChangeError::Invalid(
                    "Add voter request didn't include a valid voter".into(),
                ))
            }
        };
        if !endpoints
            .iter()
            .any(|(name, _, _)| name.eq_ignore_ascii_case(listener))
        {
            let eps: Vec<String> = endpoints
                .iter()
                .map(|(n, h, p)| format!("{n}={h}:{p}"))
                .collect();
            return Err(VoterChangeError::Invalid(format!(
                "Add voter request didn't include the endpoint (Endpoints(endpoints={{{}}})) for the default listener {listener}",
                eps.join(", ")
            )));
        }
        let view = self.ready_for_change("adding").await?;
        let key = replica_key(id, Some(dir));
        if view.voters.iter().any(|(v, _)| *v == rid) {
            return Err(VoterChangeError::Duplicate(format!(
                "The voter id for {key} is already part of the set of voters {}.",
                view.keys()
            )));
        }
        let lagging = || {
            VoterChangeError::TimedOut(format!(
                "Aborted add voter operation for {key} since it is lagging behind"
            ))
        };
        // It must follow the log as an observer, with this directory id.
        if !view
            .learners
            .iter()
            .any(|(l, n)| *l == rid && n.directory_id == Some(dir))
        {
            tracing::info!(%key, "add voter: no observer with this id and directory id follows the metadata log");
            return Err(lagging());
        }
        let target = view.last_log_index;
        let mut metrics = self.inner.raft.metrics();
        let caught_up = tokio::time::timeout(
            CATCH_UP,
            metrics.wait_for(|m| {
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&rid).cloned().flatten())
                    .map(|l| l.index);
                matched >= target || m.current_leader != Some(m.id)
            }),
        )
        .await
        .map(|r| r.map(|m| m.current_leader == Some(m.id)));
        drop(metrics);
        match caught_up {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err(VoterChangeError::NotLeader),
            Ok(Err(_)) => return Err(VoterChangeError::Failed("the quorum stopped".into())),
            Err(_) => {
                tracing::info!(%key, "add voter: the observer did not catch up in time");
                return Err(lagging());
            }
        }
        tracing::info!(%key, "adding a voter to the metadata quorum");
        self.change(ChangeMembers::AddVoterIds(BTreeSet::from([rid])), true)
            .await
    }

    /// RemoveRaftVoter, on the leader: removes voter `id` whose metadata
    /// directory is `dir`.
    pub async fn remove_voter(&self, id: i32, dir: Uuid) -> Result<(), VoterChangeError> {
        let view = self.ready_for_change("removing").await?;
        let rid = to_raft_id(id);
        let found = view
            .voters
            .iter()
            .any(|(v, n)| Some(*v) == rid && n.directory_id == Some(dir));
        let Some(rid) = rid.filter(|_| found && view.voters.len() > 1) else {
            return Err(VoterChangeError::NotFound(format!(
                "Cannot remove voter {} from the set of voters {}",
                replica_key(id, Some(dir)),
                view.keys()
            )));
        };
        tracing::info!(key = %replica_key(id, Some(dir)), "removing a voter from the metadata quorum");
        self.change(ChangeMembers::RemoveVoters(BTreeSet::from([rid])), false)
            .await
    }

    /// On the leader: removes `id` from the membership if it is an
    /// observer (a raft learner, a broker-only node), so that the leader
    /// stops replicating to it (after UnregisterBroker). `Ok(false)`: it is
    /// no observer. A node still running asks to join again.
    pub async fn remove_observer(&self, id: i32) -> Result<bool, VoterChangeError> {
        let Some(rid) = to_raft_id(id) else {
            return Ok(false);
        };
        let m = self.inner.raft.metrics();
        let learner = m
            .borrow()
            .membership_config
            .membership()
            .learner_ids()
            .any(|l| l == rid);
        if !learner {
            return Ok(false);
        }
        tracing::info!(
            node_id = id,
            "removing an unregistered observer from the metadata quorum"
        );
        self.change(ChangeMembers::RemoveNodes(BTreeSet::from([rid])), false)
            .await
            .map(|()| true)
    }

    async fn change(
        &self,
        change: ChangeMembers<u64, QuorumNode>,
        retain: bool,
    ) -> Result<(), VoterChangeError> {
        match self.inner.raft.change_membership(change, retain).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(VoterChangeError::NotLeader)
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                ChangeMembershipError::InProgress(_),
            ))) => Err(VoterChangeError::TimedOut(
                "Request timed out waiting for leader to handle previous voter change request"
                    .into(),
            )),
            Err(e) => {
                tracing::error!(error = %e, "metadata quorum membership change failed");
                Err(VoterChangeError::Failed(e.to_string()))
            }
        }
    }
}
