//! The KafkaConnector controller: each KafkaConnector becomes a connector on the workers
//! of its KafkaConnect, managed through the Kafka Connect REST API.

pub mod auto_restart;
pub mod plan;
mod reconcile;
pub mod rest;

use crate::context::Context;
use futures::StreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use runnel_crds::{KafkaConnect, KafkaConnector};
use std::future::Future;
use std::sync::Arc;
use tracing::{debug, warn};

/// The finalizer that deletes the connector from Connect before the resource goes.
pub const FINALIZER: &str = "kafka.runnel.dev/connector";
/// The controller's name in metrics and events.
pub const CONTROLLER: &str = "kafkaconnector";

/// Runs the controller over `connectors` until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    connectors: Api<KafkaConnector>,
    connects: Api<KafkaConnect>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = Controller::new(connectors, watcher::Config::default());
    let store = controller.store();
    controller
        // A KafkaConnect that appears or changes (e.g. becomes ready) re-runs its connectors.
        .watches(
            connects,
            watcher::Config::default(),
            move |kc: KafkaConnect| {
                let ns = kc.namespace();
                let name = kc.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|c| c.namespace() == ns && c.connect_name().as_deref() == Some(&name))
                    .map(|c| ObjectRef::from_obj(&*c))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => debug!(connector = %obj, "reconciled"),
                Err(e) => warn!(error = %e, "connector reconcile failed"),
            }
        })
        .await;
}
