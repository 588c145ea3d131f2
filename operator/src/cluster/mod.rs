//! The KafkaCluster controller: renders and applies the brokers' children, rolls
//! brokers safely, and reports status from pods and from the brokers themselves.

pub mod downgrade;
pub mod dynamic;
pub mod metadata_version;
pub mod quorum;
mod reconcile;
pub mod render;
pub mod roll;
pub mod scale;
pub mod scale_decide;
mod scaling;
pub mod status;
pub mod throttle;
pub mod unregister;
pub mod view;

use crate::context::Context;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use runnel_crds::{KafkaCluster, CLUSTER_LABEL};
use std::future::Future;
use std::sync::Arc;
use tracing::{debug, warn};

/// The controller's name in metrics and events.
pub const CONTROLLER: &str = "kafkacluster";

/// Runs the controller (in `namespace`, or all) until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    client: Client,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let namespace = namespace.as_deref();
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=runnel-operator");
    Controller::new(
        api::<KafkaCluster>(&client, namespace),
        watcher::Config::default(),
    )
    .owns(api::<StatefulSet>(&client, namespace), owned.clone())
    .owns(api::<ConfigMap>(&client, namespace), owned.clone())
    .owns(api::<Service>(&client, namespace), owned.clone())
    .owns(
        api::<PodDisruptionBudget>(&client, namespace),
        owned.clone(),
    )
    // Broker pods becoming ready or going away change the status.
    .watches(api::<Pod>(&client, namespace), owned, |pod: Pod| {
        let ns = pod.namespace();
        pod.labels()
            .get(CLUSTER_LABEL)
            .map(|c| {
                let r = ObjectRef::<KafkaCluster>::new(c);
                match ns {
                    Some(ns) => r.within(&ns),
                    None => r,
                }
            })
            .into_iter()
    })
    .graceful_shutdown_on(shutdown)
    .run(reconcile::reconcile, reconcile::error_policy, ctx)
    .for_each(|res| async move {
        match res {
            Ok((obj, _)) => debug!(cluster = %obj, "reconciled"),
            Err(e) => warn!(error = %e, "cluster reconcile failed"),
        }
    })
    .await;
}
