//! KafkaTopic replication-factor changes through partition reassignment
//! (AlterPartitionReassignments); the placement is the pure
//! [`replication_factor_plan`]. The moves are throttled as the cluster's
//! scaling moves are (`spec.rebalance.throttleBytesPerSecond` of the
//! KafkaCluster, [`crate::cluster::throttle`]); what was set is recorded in the
//! KafkaTopic's `status.replicationThrottle` and removed by [`release_throttle`].

use super::CONTROLLER;
use crate::cluster::scale::replication_factor_plan;
use crate::cluster::throttle::{self, ThrottleChange};
use crate::context::Context;
use crate::kafka::{partition_views, KafkaError};
use runnel_admin::{AdminClient, ReassignmentTarget};
use runnel_crds::cluster::ThrottleStatus;
use runnel_crds::KafkaTopic;
use tracing::{info, warn};

/// Where a replication-factor change stands.
pub enum RfOutcome {
    /// Cannot be done (why): more replicas than registered brokers.
    Refused(String),
    /// Under way or waiting (what).
    Moving(String),
}

/// How many of `topic`'s partitions are being reassigned: until none is,
/// the replicas being added may not be in sync (Kafka lists them as replicas
/// from the start of the move), so the topic is not Ready.
pub async fn reassigning(admin: &AdminClient, topic: &str) -> Result<usize, KafkaError> {
    let ongoing = admin.list_partition_reassignments(None).await?;
    Ok(ongoing.keys().filter(|(t, _)| t == topic).count())
}

/// The throttle a replication-factor change uses and the one already recorded.
pub struct RfThrottle<'a> {
    /// The cluster's `spec.rebalance.throttleBytesPerSecond`.
    pub rate: Option<i64>,
    /// What `status.replicationThrottle` holds (read afresh).
    pub recorded: Option<&'a ThrottleStatus>,
}

/// Moves `topic`'s partitions to `rf` replicas: submits the reassignment unless one is in
/// progress for the topic, throttled when the cluster asks for it. The status records the
/// throttle before the moves are submitted, so that it is removed even if they fail.
pub async fn change(
    ctx: &Context,
    kt: &KafkaTopic,
    admin: &AdminClient,
    topic: &str,
    rf: i32,
    th: RfThrottle<'_>,
) -> Result<(RfOutcome, ThrottleChange), KafkaError> {
    let moving = reassigning(admin, topic).await?;
    if moving > 0 {
        return Ok((
            RfOutcome::Moving(format!(
                "changing the replication factor of {topic} to {rf}: {moving} partition reassignment(s) in progress"
            )),
            ThrottleChange::Keep,
        ));
    }
    let cluster = admin.describe_cluster().await?;
    let brokers: Vec<i32> = cluster.brokers.iter().map(|b| b.id).collect();
    let racks = cluster
        .brokers
        .iter()
        .filter_map(|b| b.rack.clone().map(|r| (b.id, r)))
        .collect();
    let parts = match partition_views(admin).await? {
        Ok(ps) => ps,
        Err(why) => {
            return Ok((
                RfOutcome::Moving(format!(
                    "changing the replication factor of {topic} waits: {why}"
                )),
                ThrottleChange::Keep,
            ))
        }
    };
    let rf = usize::try_from(rf).unwrap_or(0);
    let moves = match replication_factor_plan(topic, rf, &parts, &brokers, &racks) {
        Ok(m) => m,
        Err(why) => {
            return Ok((
                RfOutcome::Refused(format!("{why}; nothing was changed")),
                ThrottleChange::Keep,
            ))
        }
    };
    if moves.is_empty() {
        return Ok((
            RfOutcome::Moving(format!(
                "replication factor of {topic} is {rf}; waiting for the metadata to show it"
            )),
            ThrottleChange::Keep,
        ));
    }
    let mut throttled = ThrottleChange::Keep;
    if let Some(t) = th.rate.and_then(|r| throttle::plan(&moves, r)) {
        let set = t.status();
        // Recorded even when only partly set, so that it is removed later.
        throttled = ThrottleChange::Set(match th.recorded {
            Some(k) => throttle::union(k, &set),
            None => set,
        });
        if let Err(e) = throttle::apply(admin, &t).await {
            warn!(topic, error = %e, "setting the replication throttle failed: the moves wait");
            ctx.event(
                kt,
                CONTROLLER,
                true,
                "ThrottleFailed",
                "Update",
                format!("the replication-factor change waits: setting the replication throttle failed: {e}"),
            )
            .await;
            return Ok((
                RfOutcome::Moving(format!(
                    "changing the replication factor of {topic} to {rf} waits: setting the replication throttle failed: {e}"
                )),
                throttled,
            ));
        }
        info!(topic, rate = t.rate, brokers = ?t.brokers, "replication throttle set for the replication-factor change");
    }
    let targets: Vec<ReassignmentTarget> = moves
        .iter()
        .map(|m| ((m.topic.clone(), m.partition), Some(m.to.clone())))
        .collect();
    let results = admin.alter_partition_reassignments(&targets).await?;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|((t, p), r)| r.as_ref().err().map(|e| format!("{t}-{p}: {e}")))
        .collect();
    let shown: Vec<String> = moves
        .iter()
        .map(|m| format!("{} {:?}->{:?}", m.name(), m.from, m.to))
        .collect();
    if failed.is_empty() {
        info!(
            topic,
            rf,
            partitions = moves.len(),
            "replication factor change submitted"
        );
    } else {
        warn!(
            topic,
            rf,
            ?failed,
            "replication factor change refused in part"
        );
    }
    ctx.event(
        kt,
        CONTROLLER,
        !failed.is_empty(),
        "PartitionsReassigned",
        "Update",
        if failed.is_empty() {
            format!(
                "replication factor of {topic} to {rf}: {}",
                shown.join(", ")
            )
        } else {
            format!(
                "replication factor of {topic} to {rf} refused for {}",
                failed.join("; ")
            )
        },
    )
    .await;
    Ok((
        RfOutcome::Moving(format!(
            "changing the replication factor of {topic} to {rf}: moving {}",
            shown.join(", ")
        )),
        throttled,
    ))
}

/// Removes the throttle `recorded` lists once no reassignment is in progress in the
/// cluster (as `kafka-reassign-partitions --verify` does; the broker rates may serve
/// other moves until then). `Keep` while moves run or when removing failed.
pub async fn release_throttle(
    ctx: &Context,
    kt: &KafkaTopic,
    admin: &AdminClient,
    recorded: &ThrottleStatus,
) -> Result<ThrottleChange, KafkaError> {
    if !admin.list_partition_reassignments(None).await?.is_empty() {
        return Ok(ThrottleChange::Keep);
    }
    throttle::clear(admin, recorded).await?;
    info!(topics = ?recorded.topics, brokers = ?recorded.brokers, "replication throttle removed");
    ctx.event(
        kt,
        CONTROLLER,
        false,
        "ThrottleRemoved",
        "Update",
        format!(
            "partition moves finished: replication throttle removed from topic(s) {} and broker(s) {:?}",
            recorded.topics.join(", "),
            recorded.brokers
        ),
    )
    .await;
    Ok(ThrottleChange::Cleared)
}
