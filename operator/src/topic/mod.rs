//! The KafkaTopic controller: each KafkaTopic becomes a real topic, managed through the
//! Kafka Admin API of the cluster its `kafka.runnel.dev/cluster` label names.

pub mod owner;
pub mod plan;
mod reconcile;
mod replication;

use crate::context::Context;
use futures::StreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use runnel_crds::{KafkaCluster, KafkaTopic, CLUSTER_LABEL};
use std::future::Future;
use std::sync::Arc;
use tracing::{debug, warn};

/// The finalizer that deletes the Kafka topic before the resource goes.
pub const FINALIZER: &str = "kafka.runnel.dev/topic";
/// The controller's name in metrics and events.
pub const CONTROLLER: &str = "kafkatopic";

/// The topic controller's context: the shared one plus the cache of all KafkaTopics
/// (to find two resources claiming one topic).
pub struct TopicContext {
    /// Shared context.
    pub ctx: Arc<Context>,
    /// Every KafkaTopic the controller sees.
    pub topics: Store<KafkaTopic>,
}

/// Runs the controller over `topics` until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    topics: Api<KafkaTopic>,
    clusters: Api<KafkaCluster>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = Controller::new(topics, watcher::Config::default());
    let store = controller.store();
    let mapper_store = store.clone();
    let tctx = Arc::new(TopicContext { ctx, topics: store });
    controller
        // A cluster that appears or changes (e.g. becomes ready) re-runs its topics.
        .watches(
            clusters,
            watcher::Config::default(),
            move |kc: KafkaCluster| {
                let ns = kc.namespace();
                let name = kc.name_any();
                mapper_store
                    .state()
                    .into_iter()
                    .filter(|t| t.namespace() == ns && t.labels().get(CLUSTER_LABEL) == Some(&name))
                    .map(|t| ObjectRef::from_obj(&*t))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, tctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => debug!(topic = %obj, "reconciled"),
                Err(e) => warn!(error = %e, "topic reconcile failed"),
            }
        })
        .await;
}
