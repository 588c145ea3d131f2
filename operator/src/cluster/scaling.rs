//! Acting on [`scale::decide`]: lists the reassignments in progress, submits a drain or
//! rebalance (AlterPartitionReassignments) and reports a refused scale-down. The
//! reconciler holds the broker StatefulSet at its current size while a drain runs and
//! lowers it only on [`ScaleAction::Shrink`].

use super::scale::ScaleStatus;
use super::scale_decide::{self, ScaleAction, ScaleInput};
use super::view::KafkaView;
use super::CONTROLLER;
use crate::context::Context;
use kube::ResourceExt;
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
    let (action, status) = scale_decide::decide(&input);
    if paused {
        return (action, status);
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
