//! Acting on [`scale::decide`]: lists the reassignments in progress, submits a drain or
//! rebalance (AlterPartitionReassignments) and reports a refused scale-down. The
//! reconciler holds the broker StatefulSet at its current size while a drain runs and
//! lowers it only on [`ScaleAction::Shrink`].

use super::scale::ScaleStatus;
use super::scale_decide::{self, ScaleAction, ScaleInput};
use super::throttle::{self, ThrottleChange};
use super::view::KafkaView;
use super::CONTROLLER;
use crate::context::Context;
use kube::{Api, ResourceExt};
use runnel_admin::OngoingReassignments;
use runnel_crds::cluster::{RebalanceMode, APPROVE_REBALANCE_ANNOTATION};
use runnel_crds::condition::{find, types};
use runnel_crds::KafkaCluster;
use tracing::{info, warn};

/// Decides and (unless `paused`) acts: `current` is the broker StatefulSet's replicas.
pub async fn run(
    ctx: &Context,
    kc: &KafkaCluster,
    bootstrap: &str,
    current: i32,
    kafka: Option<&KafkaView>,
    paused: bool,
) -> (ScaleAction, ScaleStatus) {
    let name = kc.name_any();
    let ongoing: Result<OngoingReassignments, String> = match kafka {
        None => Ok(OngoingReassignments::new()),
        Some(_) => {
            let r = async {
                let admin = ctx.kafka.get(bootstrap).await?;
                admin.list_partition_reassignments(None).await
            }
            .await;
            if let Err(e) = &r {
                ctx.kafka.on_error(bootstrap, e).await;
            }
            r.map_err(|e| e.to_string())
        }
    };
    let input = ScaleInput {
        current,
        desired: kc.spec.replicas,
        kafka,
        in_progress: ongoing.as_ref().map_err(String::as_str),
        mode: kc
            .spec
            .rebalance
            .as_ref()
            .map_or(RebalanceMode::Auto, |r| r.mode),
        approved: kc
            .annotations()
            .get(APPROVE_REBALANCE_ANNOTATION)
            .map(String::as_str),
    };
    let (action, mut status) = scale_decide::decide(&input);
    if paused {
        return (action, status);
    }
    // The throttle of finished moves is removed first (also when new moves start now:
    // they get their own).
    // Read afresh: the cached object may predate this operator's last status write, and
    // a throttle missing from it would never be removed.
    let fresh = match kc.namespace() {
        Some(ns) => Api::<KafkaCluster>::namespaced(ctx.client.clone(), &ns)
            .get_status(&name)
            .await
            .map(|k| k.status.and_then(|s| s.replication_throttle))
            .map_err(|e| warn!(cluster = %name, error = %e, "cannot read the status afresh")),
        None => Err(()),
    };
    let previous = fresh.clone().unwrap_or_else(|()| {
        kc.status
            .as_ref()
            .and_then(|s| s.replication_throttle.clone())
    });
    if let Ok(f) = &fresh {
        // Explicit, so that a stale cached status cannot drop it.
        status.throttle = match f {
            Some(t) => ThrottleChange::Set(t.clone()),
            None => ThrottleChange::Cleared,
        };
    }
    let mut kept = previous.clone();
    if let (Some(prev), Some(_), Ok(o)) = (&previous, kafka, &ongoing) {
        if o.is_empty() {
            let r = async {
                let admin = ctx.kafka.get(bootstrap).await?;
                throttle::clear(&admin, prev).await
            }
            .await;
            match r {
                Ok(()) => {
                    info!(cluster = %name, topics = ?prev.topics, brokers = ?prev.brokers, "replication throttle removed");
                    ctx.event(
                        kc,
                        CONTROLLER,
                        false,
                        "ThrottleRemoved",
                        "Scale",
                        format!(
                            "partition moves finished: replication throttle removed from topic(s) {} and broker(s) {:?}",
                            prev.topics.join(", "),
                            prev.brokers
                        ),
                    )
                    .await;
                    status.throttle = ThrottleChange::Cleared;
                    kept = None;
                }
                Err(e) => {
                    warn!(cluster = %name, error = %e, "removing the replication throttle failed");
                    ctx.kafka.on_error(bootstrap, &e).await;
                }
            }
        }
    }
    match &action {
        ScaleAction::Blocked => {
            let message = status.blocked.clone().unwrap_or_default();
            let said = kc
                .status
                .as_ref()
                .and_then(|s| find(&s.conditions, types::SCALE_DOWN_BLOCKED))
                .is_some_and(|c| c.status == "True" && c.message == message);
            warn!(cluster = %name, %message, "scale-down refused");
            if !said {
                ctx.event(kc, CONTROLLER, true, "ScaleDownBlocked", "Scale", message)
                    .await;
            }
        }
        ScaleAction::Reassign { hold } => {
            let rate = kc
                .spec
                .rebalance
                .as_ref()
                .and_then(|r| r.throttle_bytes_per_second);
            if let Some(t) = rate.and_then(|r| throttle::plan(&status.moves, r)) {
                let set = t.status();
                let r = async {
                    let admin = ctx.kafka.get(bootstrap).await?;
                    throttle::apply(&admin, &t).await
                }
                .await;
                // Recorded even when only partly set, so that it is removed later.
                status.throttle = ThrottleChange::Set(match &kept {
                    Some(k) => throttle::union(k, &set),
                    None => set,
                });
                if let Err(e) = r {
                    warn!(cluster = %name, error = %e, "setting the replication throttle failed: the moves wait");
                    ctx.kafka.on_error(bootstrap, &e).await;
                    ctx.event(
                        kc,
                        CONTROLLER,
                        true,
                        "ThrottleFailed",
                        "Scale",
                        format!("the partition moves wait: setting the replication throttle failed: {e}"),
                    )
                    .await;
                    return (action, status);
                }
                info!(cluster = %name, rate = t.rate, topics = t.topics.len(), brokers = ?t.brokers, "replication throttle set for the moves");
            }
            let targets: Vec<runnel_admin::ReassignmentTarget> = status
                .moves
                .iter()
                .map(|m| ((m.topic.clone(), m.partition), Some(m.to.clone())))
                .collect();
            let result = async {
                let admin = ctx.kafka.get(bootstrap).await?;
                admin.alter_partition_reassignments(&targets).await
            }
            .await;
            let kind = if *hold { "drain" } else { "rebalance" };
            match result {
                Ok(results) => {
                    let failed = crate::kafka::failed_partitions(&results);
                    info!(cluster = %name, kind, moves = targets.len(), failed = failed.len(), "partition reassignment submitted");
                    let moved: Vec<String> = status
                        .moves
                        .iter()
                        .map(|m| format!("{} {:?}->{:?}", m.name(), m.from, m.to))
                        .collect();
                    ctx.event(
                        kc,
                        CONTROLLER,
                        !failed.is_empty(),
                        // (distinct reasons: the recorder folds same-reason events
                        // into one series that keeps the first note)
                        if *hold {
                            "DrainStarted"
                        } else {
                            "RebalanceStarted"
                        },
                        "Scale",
                        if failed.is_empty() {
                            format!("{kind}: reassigning {}", moved.join(", "))
                        } else {
                            format!("{kind}: reassignment refused for {}", failed.join("; "))
                        },
                    )
                    .await;
                }
                Err(e) => {
                    warn!(cluster = %name, kind, error = %e, "partition reassignment failed");
                    ctx.kafka.on_error(bootstrap, &e).await;
                }
            }
        }
        ScaleAction::Shrink => {
            info!(cluster = %name, replicas = kc.spec.replicas, "brokers drained: scaling down");
            ctx.event(
                kc,
                CONTROLLER,
                false,
                "ScaleDownDrained",
                "Scale",
                format!(
                    "broker(s) {}..={} hold no replica: scaling the brokers down to {}",
                    kc.spec.replicas,
                    current - 1,
                    kc.spec.replicas
                ),
            )
            .await;
        }
        ScaleAction::None | ScaleAction::Hold => {}
    }
    (action, status)
}
