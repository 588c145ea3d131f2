//! After a scale-down, the removed brokers' registrations: once a removed
//! broker's pod is gone and the controller has fenced it, the operator sends
//! UnregisterBroker, so DescribeCluster (even with fenced brokers) no longer
//! lists it (Kafka leaves such registrations until they are unregistered).

use kube::ResourceExt;
use runnel_crds::KafkaCluster;
use tracing::{info, warn};

use super::CONTROLLER;
use crate::context::Context;

/// The broker ids to unregister. Pure: `registered` is every registration
/// (id, fenced); `desired` the spec's broker count; `current` the broker
/// StatefulSet's replicas; `pods` the node ids of broker pods that exist.
/// Only broker-pool ids at or past `desired`, once the StatefulSet has
/// shrunk, whose pod is gone and which the controller has fenced.
pub fn to_unregister(
    registered: &[(i32, bool)],
    desired: i32,
    current: i32,
    pods: &[i32],
) -> Vec<i32> {
    if current > desired {
        return Vec::new();
    }
    registered
        .iter()
        .filter(|(id, fenced)| {
            *fenced
                && *id >= desired
                && *id < runnel_crds::cluster::CONTROLLER_NODE_ID_BASE
                && !pods.contains(id)
        })
        .map(|(id, _)| *id)
        .collect()
}

/// Reads the registrations and unregisters what [`to_unregister`] names,
/// with an event per broker. Errors are logged and retried next time.
pub async fn run(ctx: &Context, kc: &KafkaCluster, bootstrap: &str, current: i32, pods: &[i32]) {
    let admin = match ctx.kafka.get(bootstrap).await {
        Ok(a) => a,
        Err(e) => {
            ctx.kafka.on_error(bootstrap, &e).await;
            return;
        }
    };
    let registered = match admin.registered_brokers().await {
        Ok(r) => r,
        Err(e) => {
            warn!(cluster = %kc.name_any(), error = %e, "cannot list broker registrations");
            ctx.kafka.on_error(bootstrap, &e).await;
            return;
        }
    };
    for id in to_unregister(&registered, kc.spec.replicas, current, pods) {
        match admin.unregister_broker(id).await {
            Ok(()) => {
                info!(cluster = %kc.name_any(), broker = id, "unregistered a removed broker");
                ctx.event(
                    kc,
                    CONTROLLER,
                    false,
                    "BrokerUnregistered",
                    "Scale",
                    format!("broker {id} was removed by a scale-down: its registration is removed (UnregisterBroker)"),
                )
                .await;
            }
            Err(e) => {
                warn!(cluster = %kc.name_any(), broker = id, error = %e, "UnregisterBroker failed; retried on the next reconcile");
                if e.kafka_code().is_none() {
                    ctx.kafka.on_error(bootstrap, &e).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fenced_removed_brokers_without_a_pod_after_the_shrink() {
        let reg = [(0, false), (1, false), (2, false), (3, true), (4, true)];
        // The StatefulSet still has 5: nothing yet.
        assert!(to_unregister(&reg, 3, 5, &[0, 1, 2]).is_empty());
        // Shrunk, pods 3 and 4 gone, both fenced.
        assert_eq!(to_unregister(&reg, 3, 3, &[0, 1, 2]), vec![3, 4]);
        // Pod 4 still terminating: only 3.
        assert_eq!(to_unregister(&reg, 3, 3, &[0, 1, 2, 4]), vec![3]);
        // Not fenced yet (its session has not lapsed): wait.
        let live = [(0, false), (3, false)];
        assert!(to_unregister(&live, 3, 3, &[0]).is_empty());
        // A fenced broker that stays (restarting) is never unregistered.
        assert!(to_unregister(&[(1, true)], 3, 3, &[0, 2]).is_empty());
        // Dedicated controllers never register as brokers, but their id range is excluded.
        let c = runnel_crds::cluster::CONTROLLER_NODE_ID_BASE;
        assert!(to_unregister(&[(c, true)], 3, 3, &[]).is_empty());
    }
}
