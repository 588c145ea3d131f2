//! The metadata quorum of a combined cluster (no controller pool) as KIP-853
//! dynamic voters: no node's file lists the voters, so adding or removing a broker
//! rewrites no other node's configuration and restarts nothing.
//!
//! - Node 0 of a new cluster formats its storage `--standalone` (a quorum of one);
//!   every other node, and node 0 once a voter has been seen, formats
//!   `--no-initial-controllers` and follows the metadata log as an observer. The
//!   choice is a file per pod in the config ConfigMap that is not in the config
//!   hash: the broker reads it only when it formats empty storage.
//! - The operator then makes each node of the spec a voter once it has caught up
//!   (AddRaftVoter), and takes the nodes a scale-down removes out of the voter set
//!   (RemoveRaftVoter) before their pods go. One change at a time, as Kafka allows.
//!
//! With a controller pool, and for a combined cluster created before dynamic voters
//! (its files list `controller.quorum.voters`), the voter set stays static.

use super::render::names::CONTROLLER_LISTENER;
use super::render::{Names, Pool};
use super::view::QuorumView;
use super::CONTROLLER;
use crate::context::Context;
use kube::ResourceExt;
use runnel_crds::cluster::CONTROLLER_PORT;
use runnel_crds::KafkaCluster;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

/// How the voters of a cluster are configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quorum {
    /// `controller.quorum.voters` in every file names every voter.
    Static,
    /// `controller.quorum.bootstrap.servers`; the operator changes the voters.
    /// `formed`: a voter has been seen, so no node formats itself standalone again.
    Dynamic {
        /// A voter has been seen.
        formed: bool,
    },
}

/// The key in a node's file that only a static quorum has.
const STATIC_VOTERS: &str = "\ncontroller.quorum.voters=";

impl Quorum {
    /// The quorum of a cluster: static with a controller pool (a fixed controller
    /// set) or when the live config (`live`, the ConfigMap's data) lists the voters
    /// (a combined cluster created before dynamic voters: Kafka cannot turn a static
    /// quorum dynamic), else dynamic. `formed`: a voter was seen (the status).
    pub fn of(
        controller_pool: bool,
        live: Option<&BTreeMap<String, String>>,
        formed: bool,
    ) -> Quorum {
        let listed = live.is_some_and(|d| {
            d.iter()
                .any(|(k, v)| k.ends_with(".properties") && v.contains(STATIC_VOTERS))
        });
        if controller_pool || listed {
            Quorum::Static
        } else {
            Quorum::Dynamic { formed }
        }
    }

    /// The quorum a new cluster gets: static with a controller pool, else dynamic.
    pub fn new_cluster(kc: &KafkaCluster) -> Quorum {
        Quorum::of(kc.spec.controllers.is_some(), None, false)
    }

    /// Whether the voters are dynamic.
    pub fn is_dynamic(self) -> bool {
        matches!(self, Quorum::Dynamic { .. })
    }

    /// The format flags of node `ordinal` (dynamic quorums only).
    pub fn format_flags(self, ordinal: i32) -> Option<&'static str> {
        match self {
            Quorum::Static => None,
            Quorum::Dynamic { formed: false } if ordinal == 0 => Some("--standalone"),
            Quorum::Dynamic { .. } => Some("--no-initial-controllers"),
        }
    }
}

/// The quorum as the status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumState {
    /// How its voters are set.
    pub mode: Quorum,
    /// The voter change under way or waited for (dynamic quorums), if any.
    pub pending: Option<String>,
}

impl QuorumState {
    /// A static quorum, nothing pending.
    pub fn static_quorum() -> QuorumState {
        QuorumState {
            mode: Quorum::Static,
            pending: None,
        }
    }
}

/// The next change of a dynamic voter set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoterChange {
    /// The voters are the nodes of the spec.
    None,
    /// Make the caught-up observer `id` (metadata directory `directory`) a voter.
    Add {
        /// Node id.
        id: i32,
        /// Its metadata directory id.
        directory: uuid::Uuid,
    },
    /// Take the voter `id` out (a scale-down removes its node).
    Remove {
        /// Node id.
        id: i32,
        /// Its metadata directory id.
        directory: uuid::Uuid,
    },
    /// Nothing can change yet, and why (shown in status).
    Wait(String),
}

/// The next voter change toward `desired` (the node ids of the spec): first the
/// removal of a voter the spec no longer has (never the last one), then the
/// addition of a node of the spec that follows the log as a caught-up observer.
pub fn next_change(desired: &BTreeSet<i32>, q: &QuorumView) -> VoterChange {
    if q.leader.is_none() {
        return VoterChange::Wait("the metadata quorum has no leader".into());
    }
    if q.voters.len() > 1 {
        // The highest first: a scale-down removes the highest ordinals.
        if let Some((id, directory)) = q
            .voters
            .keys()
            .rev()
            .find(|id| !desired.contains(id))
            .and_then(|id| Some((*id, *q.directories.get(id)?)))
        {
            return VoterChange::Remove { id, directory };
        }
    }
    let mut waiting = Vec::new();
    for id in desired.iter().filter(|id| !q.voters.contains_key(id)) {
        match q.observers.get(id) {
            Some((end, Some(directory)))
                if *end >= 0 && *end + super::view::VOTER_MAX_LAG >= q.high_watermark =>
            {
                return VoterChange::Add {
                    id: *id,
                    directory: *directory,
                }
            }
            Some(_) => waiting.push(format!("controller {id} to catch up with the metadata log")),
            None => waiting.push(format!("controller {id} to follow the metadata log")),
        }
    }
    if waiting.is_empty() {
        VoterChange::None
    } else {
        VoterChange::Wait(format!("waiting for {}", waiting.join(", ")))
    }
}

/// Whether `removed` (node ids a scale-down takes away) still vote: their pods must
/// stay until they do not.
pub fn still_voting(removed: &BTreeSet<i32>, q: &QuorumView) -> Vec<i32> {
    removed
        .iter()
        .filter(|id| q.voters.contains_key(id))
        .copied()
        .collect()
}

/// The nodes of the spec: broker ordinals `0..replicas` (a broker's node id is its
/// ordinal).
pub fn desired_voters(kc: &KafkaCluster) -> BTreeSet<i32> {
    (0..kc.spec.replicas.max(1))
        .map(|i| Pool::Brokers.node_id(i))
        .collect()
}

/// Makes the next voter change of a dynamic quorum ([`next_change`]) with an event,
/// and returns what is pending for the status (`None`: the voters match the spec).
/// Errors are logged and retried next reconcile (Kafka answers REQUEST_TIMED_OUT
/// while an observer catches up).
pub async fn run(
    ctx: &Context,
    kc: &KafkaCluster,
    bootstrap: &str,
    q: &QuorumView,
) -> Option<String> {
    let names = Names::of(kc);
    let change = next_change(&desired_voters(kc), q);
    let (adding, id, directory) = match change {
        VoterChange::None => return None,
        VoterChange::Wait(why) => return Some(why),
        VoterChange::Add { id, directory } => (true, id, directory),
        VoterChange::Remove { id, directory } => (false, id, directory),
    };
    let verb = if adding { "adding" } else { "removing" };
    let pending = Some(format!("{verb} controller {id} (directory {directory})"));
    let admin = match ctx.kafka.get(bootstrap).await {
        Ok(a) => a,
        Err(e) => {
            ctx.kafka.on_error(bootstrap, &e).await;
            return pending;
        }
    };
    let result = if adding {
        let endpoint = (
            CONTROLLER_LISTENER.to_string(),
            names.pod_host_of(Pool::Brokers, id),
            CONTROLLER_PORT as u16,
        );
        admin.add_raft_voter(id, directory, &[endpoint]).await
    } else {
        admin.remove_raft_voter(id, directory).await
    };
    match result {
        Ok(()) => {
            info!(cluster = %kc.name_any(), node = id, %directory, "{verb} a KRaft voter: done");
            let (reason, note) = if adding {
                (
                    "VoterAdded",
                    format!("node {id} is a KRaft voter now (AddRaftVoter)"),
                )
            } else {
                ("VoterRemoved", format!("node {id} no longer votes in the KRaft quorum (RemoveRaftVoter), before its pod is removed"))
            };
            ctx.event(kc, CONTROLLER, false, reason, "Quorum", note)
                .await;
        }
        Err(e) => {
            // REQUEST_TIMED_OUT while the observer catches up is expected: retried.
            warn!(cluster = %kc.name_any(), node = id, error = %e, "{verb} a KRaft voter failed; retrying");
            if e.kafka_code().is_none() {
                ctx.kafka.on_error(bootstrap, &e).await;
            }
        }
    }
    pending
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(n: u8) -> uuid::Uuid {
        uuid::Uuid::from_bytes([n; 16])
    }

    fn quorum(voters: &[i32], observers: &[(i32, i64)]) -> QuorumView {
        QuorumView {
            leader: voters.first().copied(),
            voters: voters.iter().map(|v| (*v, 100)).collect(),
            high_watermark: 100,
            directories: voters.iter().map(|v| (*v, dir(*v as u8))).collect(),
            observers: observers
                .iter()
                .map(|(id, end)| (*id, (*end, Some(dir(*id as u8)))))
                .collect(),
        }
    }

    fn ids(v: &[i32]) -> BTreeSet<i32> {
        v.iter().copied().collect()
    }

    #[test]
    fn the_mode_comes_from_the_pool_and_the_live_files() {
        let stat: BTreeMap<String, String> = [(
            "demo-broker-0.properties".to_string(),
            "# x\nnode.id=0\ncontroller.quorum.voters=0@h:9093\n".to_string(),
        )]
        .into();
        let dynamic: BTreeMap<String, String> = [(
            "demo-broker-0.properties".to_string(),
            "# x\ncontroller.quorum.bootstrap.servers=h:9093\n".to_string(),
        )]
        .into();
        assert_eq!(Quorum::of(true, None, false), Quorum::Static);
        assert_eq!(Quorum::of(false, Some(&stat), true), Quorum::Static);
        assert_eq!(
            Quorum::of(false, None, false),
            Quorum::Dynamic { formed: false }
        );
        assert_eq!(
            Quorum::of(false, Some(&dynamic), true),
            Quorum::Dynamic { formed: true }
        );
    }

    #[test]
    fn only_node_0_of_an_unformed_quorum_formats_standalone() {
        let new = Quorum::Dynamic { formed: false };
        assert_eq!(new.format_flags(0), Some("--standalone"));
        assert_eq!(new.format_flags(1), Some("--no-initial-controllers"));
        let formed = Quorum::Dynamic { formed: true };
        assert_eq!(formed.format_flags(0), Some("--no-initial-controllers"));
        assert_eq!(Quorum::Static.format_flags(0), None);
    }

    #[test]
    fn caught_up_observers_become_voters_one_at_a_time() {
        let q = quorum(&[0], &[(1, 100), (2, 99)]);
        assert_eq!(
            next_change(&ids(&[0, 1, 2]), &q),
            VoterChange::Add {
                id: 1,
                directory: dir(1)
            }
        );
        let q = quorum(&[0, 1, 2], &[]);
        assert_eq!(next_change(&ids(&[0, 1, 2]), &q), VoterChange::None);
    }

    #[test]
    fn a_lagging_or_absent_observer_is_waited_for() {
        let q = quorum(&[0, 1], &[(2, -1)]);
        match next_change(&ids(&[0, 1, 2, 3]), &q) {
            VoterChange::Wait(why) => {
                assert!(why.contains("controller 2 to catch up"), "{why}");
                assert!(why.contains("controller 3 to follow"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let mut q = quorum(&[0], &[(1, 100)]);
        q.leader = None;
        assert!(matches!(
            next_change(&ids(&[0, 1]), &q),
            VoterChange::Wait(w) if w.contains("no leader")
        ));
    }

    #[test]
    fn a_scale_down_removes_the_highest_voter_first_but_never_the_last() {
        let q = quorum(&[0, 1, 2, 3, 4], &[]);
        assert_eq!(
            next_change(&ids(&[0, 1, 2]), &q),
            VoterChange::Remove {
                id: 4,
                directory: dir(4)
            }
        );
        assert_eq!(still_voting(&ids(&[3, 4]), &q), [3, 4]);
        let q = quorum(&[0, 1, 2], &[(3, 100)]);
        assert!(still_voting(&ids(&[3]), &q).is_empty());
        // A removed node that still follows the log is not made a voter again.
        assert_eq!(next_change(&ids(&[0, 1, 2]), &q), VoterChange::None);
        let q = quorum(&[5], &[]);
        assert!(matches!(next_change(&ids(&[0]), &q), VoterChange::Wait(_)));
    }
}
