//! KafkaTopic replication-factor changes through partition reassignment
//! (AlterPartitionReassignments); the placement is the pure
//! [`replication_factor_plan`].

use super::CONTROLLER;
use crate::cluster::scale::replication_factor_plan;
use crate::context::Context;
use crate::kafka::{partition_views, KafkaError};
use runnel_admin::{AdminClient, ReassignmentTarget};
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

/// Moves `topic`'s partitions to `rf` replicas: submits the reassignment unless one is in
/// progress for the topic.
pub async fn change(
    ctx: &Context,
    kt: &KafkaTopic,
    admin: &AdminClient,
    topic: &str,
    rf: i32,
) -> Result<RfOutcome, KafkaError> {
    let moving = reassigning(admin, topic).await?;
    if moving > 0 {
        return Ok(RfOutcome::Moving(format!(
            "changing the replication factor of {topic} to {rf}: {moving} partition reassignment(s) in progress"
        )));
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
            return Ok(RfOutcome::Moving(format!(
                "changing the replication factor of {topic} waits: {why}"
            )))
        }
    };
    let rf = usize::try_from(rf).unwrap_or(0);
    let moves = match replication_factor_plan(topic, rf, &parts, &brokers, &racks) {
        Ok(m) => m,
        Err(why) => return Ok(RfOutcome::Refused(format!("{why}; nothing was changed"))),
    };
    if moves.is_empty() {
        return Ok(RfOutcome::Moving(format!(
            "replication factor of {topic} is {rf}; waiting for the metadata to show it"
        )));
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
    Ok(RfOutcome::Moving(format!(
        "changing the replication factor of {topic} to {rf}: moving {}",
        shown.join(", ")
    )))
}
