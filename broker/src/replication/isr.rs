//! ISR changes, from partition leaders to the controller (Kafka's
//! AlterPartitionManager): expansions found while serving follower
//! fetches, and shrinks found by a periodic check of followers that fell
//! behind for longer than `replica.lag.time.max.ms`. One change per
//! partition is in flight at a time (the partition marks it pending); the
//! answer, or the committed metadata, settles it.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::Partition;
use crate::broker::BrokerState;
use crate::controller::liveness::AlterIsr;

/// Sends the ISR change `isr` for `part` in the background.
pub fn request(state: &Arc<BrokerState>, part: Arc<Partition>, isr: Vec<i32>) {
    let Some((leader_epoch, partition_epoch)) = part.isr_epochs() else {
        part.isr_answered(None);
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        let req = AlterIsr {
            node_id: state.node_id,
            broker_epoch: state.broker_epoch(),
            topic_id: part.topic_id,
            partition: part.tp.partition,
            leader_epoch,
            partition_epoch,
            isr: isr.clone(),
        };
        match state.controller.alter_partition(req).await {
            Ok(pi) => {
                info!(partition = %part.tp, isr = ?pi.isr, "ISR changed");
                part.isr_answered(Some(&pi));
            }
            Err(e) => {
                warn!(partition = %part.tp, want = ?isr, error = %e, "ISR change refused");
                part.isr_answered(None);
            }
        }
    });
}

/// Every `replica.lag.time.max.ms / 2`, asks to drop ISR members that have
/// not caught up within `replica.lag.time.max.ms`.
pub async fn run_shrink_checks(state: Arc<BrokerState>) {
    let lag = Duration::from_millis(
        state
            .config
            .get_i64("replica.lag.time.max.ms", 30_000)
            .clamp(100, 3_600_000) as u64,
    );
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(lag / 2) => {}
            _ = shutdown.changed() => return,
        }
        for part in state.replicas.all() {
            if let Some((isr, ..)) = part.isr_shrink(lag) {
                info!(partition = %part.tp, to = ?isr, "followers fell behind: shrinking the ISR");
                request(&state, part, isr);
            }
        }
    }
}
