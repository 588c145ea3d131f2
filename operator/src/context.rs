//! State shared by the reconcilers.

use crate::kafka::KafkaClients;
use crate::metrics::Metrics;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// Operator settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Image for clusters that set neither `image` nor `version`.
    pub broker_image: String,
    /// How often a ready KafkaTopic is compared with Kafka (drift detection).
    pub topic_resync: Duration,
    /// How often a ready KafkaCluster is re-checked.
    pub cluster_resync: Duration,
    /// Image of KafkaConnects that set no `image`.
    pub connect_image: String,
    /// How often a ready KafkaConnector is compared with Connect (drift detection).
    pub connector_resync: Duration,
    /// The unit of the automatic connector restarts' back-off (`n*n + n` units after the
    /// n-th restart; Strimzi's is a minute).
    pub connector_restart_backoff: Duration,
}

/// Everything a reconcile needs.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Settings.
    pub settings: Settings,
    /// Metrics.
    pub metrics: Metrics,
    /// Kafka admin connections, one per cluster bootstrap.
    pub kafka: KafkaClients,
    recorder: Recorder,
    /// Set when the controllers are running (for `/readyz`).
    pub running: Arc<AtomicBool>,
}

impl Context {
    /// A context for `client`, publishing events as `runnel-operator` from `instance`.
    pub fn new(
        client: Client,
        settings: Settings,
        metrics: Metrics,
        instance: Option<String>,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "runnel-operator".into(),
                instance,
            },
        );
        Context {
            client,
            settings,
            metrics,
            kafka: KafkaClients::default(),
            recorder,
            running: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Publishes an event on `obj` (and counts the action). Failures are logged, not raised:
    /// an event is never worth failing a reconcile for.
    pub async fn event<K>(
        &self,
        obj: &K,
        controller: &str,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) where
        K: Resource<DynamicType = ()>,
    {
        self.metrics.action(controller, reason);
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            warn!(error = %e, object = %obj.name_any(), reason, "cannot publish event");
        }
    }

    /// Whether the controllers run.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

/// Writes `status` of `name` with server-side apply (the operator owns the whole status).
pub async fn apply_status<K>(
    api: &kube::Api<K>,
    name: &str,
    status: &impl serde::Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let pp = kube::api::PatchParams::apply(crate::cluster::render::names::FIELD_MANAGER).force();
    api.patch_status(name, &pp, &kube::api::Patch::Apply(&patch))
        .await?;
    Ok(())
}
