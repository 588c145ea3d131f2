//! The KafkaConnect controller: Apache Kafka Connect workers (distributed mode) for a
//! Kafka cluster, their internal topics, and their REST Service.

pub mod plugins;
mod reconcile;
pub mod render;
pub mod roll;

use crate::context::Context;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::runtime::controller::Controller;
use kube::runtime::watcher;
use kube::Api;
use runnel_crds::KafkaConnect;
use std::future::Future;
use std::sync::Arc;
use tracing::{debug, warn};

/// The controller's name in metrics and events.
pub const CONTROLLER: &str = "kafkaconnect";

/// Runs the controller over `connects` (and their StatefulSets) until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    connects: Api<KafkaConnect>,
    stateful_sets: Api<StatefulSet>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    Controller::new(connects, watcher::Config::default())
        .owns(
            stateful_sets,
            watcher::Config::default().labels("app.kubernetes.io/component=connect"),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => debug!(connect = %obj, "reconciled"),
                Err(e) => warn!(error = %e, "connect reconcile failed"),
            }
        })
        .await;
}
