//! Broker liveness and partition leadership on the active controller:
//! heartbeats, session expiry (fencing), controlled shutdown, AlterPartition
//! (ISR changes from partition leaders), and the elections that follow.
//!
//! Session times live only in the active controller's memory, as in
//! Kafka's `BrokerHeartbeatManager`: a newly elected controller gives every
//! live broker a full session before it fences anyone.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use uuid::Uuid;

use super::{elections, Controller};
use crate::error::ApiError;
use crate::metadata::{ClusterImage, MetadataRecord, PartitionImage};

/// What a broker reports in a heartbeat (Kafka's BrokerHeartbeatRequest).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The broker.
    pub node_id: i32,
    /// Its epoch (registration offset).
    pub epoch: i64,
    /// The metadata offset it has applied.
    pub metadata_offset: u64,
    /// It wants to shut down: move leadership away.
    pub want_shutdown: bool,
}

/// The controller's answer to a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The broker is fenced.
    pub fenced: bool,
    /// The broker may stop now: it is shutting down and leads nothing.
    pub should_shut_down: bool,
}

/// A partition leader's request to change the ISR (Kafka's AlterPartition).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlterIsr {
    /// The leader.
    pub node_id: i32,
    /// Its broker epoch.
    pub broker_epoch: i64,
    /// The topic id.
    pub topic_id: Uuid,
    /// The partition.
    pub partition: i32,
    /// The leader epoch the leader is in.
    pub leader_epoch: i32,
    /// The partition epoch the change is based on.
    pub partition_epoch: i32,
    /// The new ISR.
    pub isr: Vec<i32>,
}

/// The controller's in-memory session table.
#[derive(Default)]
pub(crate) struct Sessions {
    /// Whether this node was the active controller at the last tick.
    was_active: bool,
    /// When each broker was last heard from (or, for brokers not heard from
    /// since this node became active, when it became active).
    last_seen: HashMap<i32, Instant>,
    /// Brokers actually heard from while this node is active.
    heard: std::collections::HashSet<i32>,
    /// When leadership was last balanced to preferred replicas.
    last_balance: Option<Instant>,
    /// The metadata offset each broker reported in its last heartbeat.
    metadata_offsets: HashMap<i32, u64>,
    /// Brokers in controlled shutdown: the metadata offset at which they
    /// led nothing any more (Kafka's `controlledShutdownOffset`).
    shutdown_offsets: HashMap<i32, u64>,
}

/// The lowest metadata offset reported by the active brokers (registered,
/// unfenced, not shutting down), as Kafka's
/// `BrokerHeartbeatManager.lowestActiveOffset`; `u64::MAX` when there is
/// none. A broker not heard from yet counts as offset 0.
pub fn lowest_active_offset(image: &ClusterImage, reported: &HashMap<i32, u64>) -> u64 {
    image
        .brokers
        .values()
        .filter(|b| !b.fenced && !b.shutting_down)
        .map(|b| reported.get(&b.node_id).copied().unwrap_or(0))
        .min()
        .unwrap_or(u64::MAX)
}

/// Whether a broker in controlled shutdown may stop now (Kafka's
/// `CONTROLLED_SHUTDOWN -> SHUTDOWN_NOW`): it leads nothing, and every
/// active broker has applied the metadata that moved its leadership away,
/// so no broker still tells clients that it leads. Until then it stays
/// registered and unfenced, answering NOT_LEADER_OR_FOLLOWER with the new
/// leaders, and clients move before it disappears from Metadata.
pub fn may_shut_down(leaderships: usize, shutdown_offset: u64, lowest_active: u64) -> bool {
    leaderships == 0 && shutdown_offset <= lowest_active
}

fn err(code: ResponseError, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

/// Validates an AlterPartition against the partition as committed; returns
/// the ISR to commit. Pure (unit-tested), as Kafka's checks in
/// `ReplicationControlManager.alterPartition`.
pub fn check_alter_isr(image: &ClusterImage, req: &AlterIsr) -> Result<Vec<i32>, ApiError> {
    let Some(b) = image.brokers.get(&req.node_id) else {
        return Err(err(ResponseError::StaleBrokerEpoch, "unknown broker"));
    };
    if b.epoch != req.broker_epoch {
        return Err(err(
            ResponseError::StaleBrokerEpoch,
            format!(
                "broker epoch {} is not the current {}",
                req.broker_epoch, b.epoch
            ),
        ));
    }
    let Some(p) = image.partition(&req.topic_id, req.partition) else {
        return Err(ApiError::code(ResponseError::UnknownTopicOrPartition));
    };
    if p.leader != req.node_id {
        return Err(err(
            ResponseError::NotLeaderOrFollower,
            format!(
                "broker {} does not lead this partition (leader {})",
                req.node_id, p.leader
            ),
        ));
    }
    if req.leader_epoch != p.leader_epoch {
        return Err(err(
            ResponseError::FencedLeaderEpoch,
            format!(
                "leader epoch {} is not the current {}",
                req.leader_epoch, p.leader_epoch
            ),
        ));
    }
    if req.partition_epoch != p.partition_epoch {
        return Err(err(
            ResponseError::InvalidUpdateVersion,
            format!(
                "partition epoch {} is not the current {}",
                req.partition_epoch, p.partition_epoch
            ),
        ));
    }
    let mut isr = req.isr.clone();
    isr.sort_unstable();
    isr.dedup();
    if !isr.contains(&req.node_id) || isr.iter().any(|r| !p.replicas.contains(r)) {
        return Err(err(
            ResponseError::InvalidRequest,
            format!(
                "ISR {:?} must hold the leader and only replicas {:?}",
                req.isr, p.replicas
            ),
        ));
    }
    if let Some(r) = isr
        .iter()
        .find(|r| !p.isr.contains(r) && !image.broker_usable(**r))
    {
        return Err(err(
            ResponseError::IneligibleReplica,
            format!("replica {r} is fenced or shutting down and cannot join the ISR"),
        ));
    }
    // Keep the replica order for the ISR, as Kafka does.
    Ok(p.replicas
        .iter()
        .copied()
        .filter(|r| isr.contains(r))
        .collect())
}

impl Controller {
    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `node_id` has a live session (heard from within
    /// `broker.session.timeout.ms`) on this, the active, controller.
    /// A fenced broker has none (it shut down, or its session lapsed); nor
    /// has one not heard from since this node became the active controller.
    pub(crate) fn has_session(&self, node_id: i32) -> bool {
        let timeout = self.session_timeout();
        if self
            .quorum
            .image()
            .brokers
            .get(&node_id)
            .is_none_or(|b| b.fenced)
        {
            return false;
        }
        let s = self.sessions();
        s.heard.contains(&node_id)
            && s.last_seen
                .get(&node_id)
                .is_some_and(|t| t.elapsed() <= timeout)
    }

    /// Ends a broker's session (it was unregistered).
    pub(crate) fn forget_session(&self, node_id: i32) {
        let mut s = self.sessions();
        s.last_seen.remove(&node_id);
        s.heard.remove(&node_id);
    }

    /// Starts (or renews) a broker's session now.
    pub(crate) fn note_alive(&self, node_id: i32) {
        let mut s = self.sessions();
        s.last_seen.insert(node_id, Instant::now());
        s.heard.insert(node_id);
    }

    fn session_timeout(&self) -> Duration {
        Duration::from_millis(
            self.config
                .get_i64("broker.session.timeout.ms", 9000)
                .clamp(100, 3_600_000) as u64,
        )
    }

    /// Commits the leader and ISR changes the current liveness calls for.
    /// Call with the controller lock held.
    pub(crate) async fn reconcile_partitions(&self) -> Result<(), ApiError> {
        let changes = elections::reconcile(&self.quorum.image());
        if changes.is_empty() {
            return Ok(());
        }
        info!(changes = changes.len(), "committing leader and ISR changes");
        self.commit_chunked(changes).await
    }

    fn set_broker(
        &self,
        image: &ClusterImage,
        node_id: i32,
        fenced: bool,
        shutting_down: bool,
    ) -> Option<MetadataRecord> {
        let b = image.brokers.get(&node_id)?;
        (b.fenced != fenced || b.shutting_down != shutting_down).then_some(
            MetadataRecord::ChangeBroker {
                node_id,
                epoch: b.epoch,
                fenced,
                shutting_down,
            },
        )
    }

    fn check_epoch<'a>(
        image: &'a ClusterImage,
        hb: &Heartbeat,
    ) -> Result<&'a crate::metadata::BrokerImage, ApiError> {
        let Some(b) = image.brokers.get(&hb.node_id) else {
            return Err(err(
                ResponseError::StaleBrokerEpoch,
                "broker is not registered",
            ));
        };
        if b.epoch != hb.epoch {
            return Err(err(
                ResponseError::StaleBrokerEpoch,
                format!("broker epoch {} is not the current {}", hb.epoch, b.epoch),
            ));
        }
        Ok(b)
    }

    /// A broker's heartbeat: renews its session; unfences it once it has
    /// applied the metadata up to its registration; starts its controlled
    /// shutdown when it asks.
    pub async fn heartbeat(&self, hb: Heartbeat) -> Result<HeartbeatReply, ApiError> {
        // The session is renewed before waiting for the controller lock: a
        // long commit (an election over many partitions, a slow quorum) must
        // not let the sessions of brokers that are heartbeating lapse.
        Self::check_epoch(&self.quorum.image(), &hb)?;
        self.note_alive(hb.node_id);
        self.sessions()
            .metadata_offsets
            .insert(hb.node_id, hb.metadata_offset);
        let _g = self.lock.lock().await;
        let image = self.quorum.image();
        let b = Self::check_epoch(&image, &hb)?;
        let change = if hb.want_shutdown {
            self.set_broker(&image, hb.node_id, b.fenced, true)
        } else if b.fenced && !b.shutting_down && hb.metadata_offset >= b.epoch as u64 {
            info!(node_id = hb.node_id, "broker caught up: unfencing it");
            self.set_broker(&image, hb.node_id, false, false)
        } else {
            None
        };
        if let Some(r) = change {
            if hb.want_shutdown {
                info!(
                    node_id = hb.node_id,
                    "broker asked to shut down: moving its leadership away"
                );
            }
            self.commit(vec![r]).await?;
            self.reconcile_partitions().await?;
        }
        let image = self.quorum.image();
        let b = image.brokers.get(&hb.node_id);
        let shutting_down = b.is_some_and(|b| b.shutting_down);
        let leaderships = elections::leaderships(&image, hb.node_id);
        if !shutting_down {
            // A new incarnation, or a shutdown that never completed.
            self.sessions().shutdown_offsets.remove(&hb.node_id);
        }
        let should_shut_down = match b {
            // Fenced (already done, or never unfenced): nothing to wait for.
            Some(b) if b.fenced => shutting_down && leaderships == 0,
            _ if shutting_down && leaderships == 0 => {
                let mut s = self.sessions();
                let target = *s
                    .shutdown_offsets
                    .entry(hb.node_id)
                    .or_insert(image.last_applied);
                let lowest = lowest_active_offset(&image, &s.metadata_offsets);
                may_shut_down(leaderships, target, lowest)
            }
            _ => false,
        };
        if should_shut_down && b.is_some_and(|b| !b.fenced) {
            // Done: fence it now, so its next process registers at once.
            info!(
                node_id = hb.node_id,
                "controlled shutdown granted: every active broker knows the new leaders"
            );
            self.sessions().shutdown_offsets.remove(&hb.node_id);
            if let Some(r) = self.set_broker(&image, hb.node_id, true, true) {
                self.commit(vec![r]).await?;
            }
        }
        Ok(HeartbeatReply {
            fenced: b.is_none_or(|b| b.fenced),
            should_shut_down,
        })
    }

    /// AlterPartition: a leader changes its partition's ISR.
    pub async fn alter_partition(&self, req: AlterIsr) -> Result<PartitionImage, ApiError> {
        let _g = self.lock.lock().await;
        let image = self.quorum.image();
        let isr = check_alter_isr(&image, &req)?;
        let Some(p) = image.partition(&req.topic_id, req.partition) else {
            return Err(ApiError::code(ResponseError::UnknownTopicOrPartition));
        };
        if isr != p.isr {
            info!(topic_id = %req.topic_id, partition = req.partition, from = ?p.isr, to = ?isr, "ISR change");
            self.commit(vec![elections::change(
                req.topic_id,
                req.partition,
                p,
                p.leader,
                isr,
            )])
            .await?;
            if let Err(e) = self.complete_reassignments().await {
                warn!(error = %e, "completing reassignments failed");
            }
        }
        self.quorum
            .image()
            .partition(&req.topic_id, req.partition)
            .cloned()
            .ok_or_else(|| ApiError::code(ResponseError::UnknownTopicOrPartition))
    }

    /// The active controller's timer: fences brokers whose session expired
    /// and commits the elections that follow. Does nothing on other nodes.
    pub async fn tick(&self) {
        if self.quorum.leader() != Some(self.config.node_id) {
            self.sessions().was_active = false;
            return;
        }
        if !self.sessions().was_active {
            // Newly active: validate only on everything committed, and give
            // every broker a full session from now.
            if let Err(e) = self.quorum.ensure_caught_up().await {
                warn!(error = %e, "controller not caught up yet");
                return;
            }
            let mut s = self.sessions();
            s.was_active = true;
            s.heard.clear();
            let now = Instant::now();
            s.last_seen = self
                .quorum
                .image()
                .brokers
                .keys()
                .map(|b| (*b, now))
                .collect();
        }
        let _g = self.lock.lock().await;
        let image = self.quorum.image();
        let timeout = self.session_timeout();
        let expired: Vec<MetadataRecord> = {
            let mut s = self.sessions();
            let now = Instant::now();
            image
                .brokers
                .values()
                .filter(|b| !b.fenced)
                .filter(|b| {
                    now.duration_since(*s.last_seen.entry(b.node_id).or_insert(now)) > timeout
                })
                .filter_map(|b| {
                    warn!(node_id = b.node_id, "broker session expired: fencing it");
                    self.set_broker(&image, b.node_id, true, false)
                })
                .collect()
        };
        if !expired.is_empty() {
            if let Err(e) = self.commit(expired).await {
                warn!(error = %e, "fencing failed");
                return;
            }
        }
        if let Err(e) = self.reconcile_partitions().await {
            warn!(error = %e, "leader election failed");
        }
        if let Err(e) = self.complete_reassignments().await {
            warn!(error = %e, "completing reassignments failed");
        }
        // auto.leader.rebalance.enable, every leader.imbalance.check.interval.seconds.
        if self.config.get_bool("auto.leader.rebalance.enable", true) {
            let every = Duration::from_secs(
                self.config
                    .get_i64("leader.imbalance.check.interval.seconds", 300)
                    .clamp(1, 86_400) as u64,
            );
            let due = {
                let mut s = self.sessions();
                let now = Instant::now();
                let last = *s.last_balance.get_or_insert(now);
                if now.duration_since(last) >= every {
                    s.last_balance = Some(now);
                    true
                } else {
                    false
                }
            };
            if due {
                if let Err(e) = self.balance_leaders().await {
                    warn!(error = %e, "leader rebalance failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_active_offset_counts_only_active_brokers() {
        let (mut img, _) = image();
        let mut reported = HashMap::from([(1, 40), (2, 25), (3, 7)]);
        assert_eq!(lowest_active_offset(&img, &reported), 7);
        // Broker 3 shutting down, broker 2 fenced: only broker 1 counts.
        img.apply(&MetadataRecord::ChangeBroker {
            node_id: 3,
            epoch: 3,
            fenced: false,
            shutting_down: true,
        });
        img.apply(&MetadataRecord::ChangeBroker {
            node_id: 2,
            epoch: 2,
            fenced: true,
            shutting_down: false,
        });
        assert_eq!(lowest_active_offset(&img, &reported), 40);
        // An active broker not heard from yet holds everyone back.
        reported.remove(&1);
        assert_eq!(lowest_active_offset(&img, &reported), 0);
        // No active broker at all: nothing to wait for.
        img.apply(&MetadataRecord::ChangeBroker {
            node_id: 1,
            epoch: 1,
            fenced: true,
            shutting_down: false,
        });
        assert_eq!(lowest_active_offset(&img, &reported), u64::MAX);
    }

    #[test]
    fn controlled_shutdown_waits_for_leaderships_and_active_brokers() {
        // Still leads a partition.
        assert!(!may_shut_down(1, 10, u64::MAX));
        // Leads nothing, but an active broker has not applied offset 10.
        assert!(!may_shut_down(0, 10, 9));
        assert!(may_shut_down(0, 10, 10));
        assert!(may_shut_down(0, 10, u64::MAX));
    }
    use crate::metadata::PartitionAssignment;

    fn image() -> (ClusterImage, Uuid) {
        let mut img = ClusterImage::default();
        for n in 1..=3 {
            img.last_applied = n as u64;
            img.apply(&MetadataRecord::RegisterBroker {
                node_id: n,
                incarnation_id: Uuid::new_v4(),
                endpoints: vec![],
                rack: None,
                features: Default::default(),
            });
            img.apply(&MetadataRecord::ChangeBroker {
                node_id: n,
                epoch: n as i64,
                fenced: false,
                shutting_down: false,
            });
        }
        let id = Uuid::new_v4();
        img.apply(&MetadataRecord::CreateTopic {
            name: "t".into(),
            topic_id: id,
            partitions: vec![PartitionAssignment {
                partition: 0,
                replicas: vec![1, 2, 3],
            }],
            configs: Default::default(),
        });
        (img, id)
    }

    fn req(id: Uuid, isr: &[i32]) -> AlterIsr {
        AlterIsr {
            node_id: 1,
            broker_epoch: 1,
            topic_id: id,
            partition: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            isr: isr.to_vec(),
        }
    }

    #[test]
    fn alter_isr_checks_epochs_and_members_as_kafka() {
        let (mut img, id) = image();
        assert_eq!(
            check_alter_isr(&img, &req(id, &[3, 1])).expect("ok"),
            vec![1, 3]
        );
        let code = |r: Result<Vec<i32>, ApiError>| r.expect_err("refused").code;
        let stale = AlterIsr {
            broker_epoch: 7,
            ..req(id, &[1])
        };
        assert_eq!(
            code(check_alter_isr(&img, &stale)),
            ResponseError::StaleBrokerEpoch.code()
        );
        let old_leader_epoch = AlterIsr {
            leader_epoch: -1,
            ..req(id, &[1])
        };
        assert_eq!(
            code(check_alter_isr(&img, &old_leader_epoch)),
            ResponseError::FencedLeaderEpoch.code()
        );
        let old_partition_epoch = AlterIsr {
            partition_epoch: 5,
            ..req(id, &[1])
        };
        assert_eq!(
            code(check_alter_isr(&img, &old_partition_epoch)),
            ResponseError::InvalidUpdateVersion.code()
        );
        let follower = AlterIsr {
            node_id: 2,
            broker_epoch: 2,
            ..req(id, &[2])
        };
        assert_eq!(
            code(check_alter_isr(&img, &follower)),
            ResponseError::NotLeaderOrFollower.code()
        );
        assert_eq!(
            code(check_alter_isr(&img, &req(id, &[2, 3]))),
            ResponseError::InvalidRequest.code()
        );
        // Shrink to {1}, then a fenced broker may not rejoin.
        img.apply(&elections::change(
            id,
            0,
            &img.topics["t"].partitions[0].clone(),
            1,
            vec![1],
        ));
        img.apply(&MetadataRecord::ChangeBroker {
            node_id: 3,
            epoch: 3,
            fenced: true,
            shutting_down: false,
        });
        let rejoin = AlterIsr {
            partition_epoch: 1,
            ..req(id, &[1, 3])
        };
        assert_eq!(
            code(check_alter_isr(&img, &rejoin)),
            ResponseError::IneligibleReplica.code()
        );
        let rejoin2 = AlterIsr {
            partition_epoch: 1,
            ..req(id, &[1, 2])
        };
        assert_eq!(
            check_alter_isr(&img, &rejoin2).expect("2 is live"),
            vec![1, 2]
        );
    }
}
