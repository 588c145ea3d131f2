//! `reconcile` and `error_policy` of the KafkaConnect controller: internal topics first
//! (Admin API, compacted, the spec's replication factor), then the worker ConfigMap,
//! Service and Deployment by server-side apply, then the status from the Deployment and
//! the workers' REST API.

use super::render::{self, ConnectNames};
use super::CONTROLLER;
use crate::cluster::render::names::FIELD_MANAGER;
use crate::cluster::render::Names;
use crate::connector::rest::ConnectRest;
use crate::context::{apply_status, Context};
use crate::kafka::TOPIC_ALREADY_EXISTS;
use crate::Error;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use runnel_admin::NewTopic;
use runnel_crds::condition::{condition, find, types};
use runnel_crds::{KafkaCluster, KafkaConnect, KafkaConnectStatus};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Retries a failed reconcile after a pause.
pub fn error_policy(kc: Arc<KafkaConnect>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(connect = %kc.name_any(), error = %err, "reconcile failed");
    ctx.metrics.failure(CONTROLLER, err.metric_label());
    Action::requeue(Duration::from_secs(10))
}

/// Where the workers bootstrap: the KafkaCluster's bootstrap Service, or
/// `spec.bootstrapServers`.
async fn bootstrap(
    kc: &KafkaConnect,
    ctx: &Context,
    ns: &str,
) -> Result<Result<String, String>, Error> {
    if let Some(b) = &kc.spec.bootstrap_servers {
        return Ok(Ok(b.clone()));
    }
    let Some(name) = &kc.spec.cluster_ref else {
        return Ok(Err("set spec.clusterRef or spec.bootstrapServers".into()));
    };
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), ns);
    Ok(match api.get_opt(name).await? {
        Some(cluster) => Ok(Names::bootstrap_of(&cluster)),
        None => Err(format!("KafkaCluster {ns}/{name} does not exist")),
    })
}

/// Server-side applies one child, with an event when it is created.
async fn apply_child<K>(ctx: &Context, kc: &KafkaConnect, ns: &str, obj: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let name = obj.meta().name.clone().ok_or(Error::MissingField("name"))?;
    let existed = api.get_opt(&name).await?.is_some();
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let after = api.patch(&name, &pp, &Patch::Apply(obj)).await?;
    if !existed {
        let kind = K::kind(&());
        info!(%kind, %name, "created");
        ctx.event(
            kc,
            CONTROLLER,
            false,
            "Created",
            "Apply",
            format!("created {kind} {name}"),
        )
        .await;
    }
    Ok(after)
}

/// Creates the three internal topics (compacted) that do not exist yet.
async fn internal_topics(kc: &KafkaConnect, ctx: &Context, bootstrap: &str) -> Result<(), String> {
    let admin = match ctx.kafka.get(bootstrap).await {
        Ok(a) => a,
        Err(e) => {
            ctx.kafka.on_error(bootstrap, &e).await;
            return Err(format!("cannot reach Kafka at {bootstrap}: {e}"));
        }
    };
    for t in kc.internal_topics() {
        let nt = NewTopic::new(
            t.name.clone(),
            t.partitions,
            t.replication_factor.clamp(1, i16::MAX as i32) as i16,
        )
        .with_config("cleanup.policy", "compact");
        match admin.create_topic(nt, false).await {
            Ok(_) => {
                info!(topic = %t.name, "created Connect internal topic");
                ctx.event(
                    kc,
                    CONTROLLER,
                    false,
                    "TopicCreated",
                    "Create",
                    format!(
                        "created internal topic {} ({}, {} partitions, replication factor {}, compacted)",
                        t.name, t.key, t.partitions, t.replication_factor
                    ),
                )
                .await;
            }
            Err(e) if e.kafka_code() == Some(TOPIC_ALREADY_EXISTS) => {}
            Err(e) => {
                ctx.kafka.on_error(bootstrap, &e).await;
                return Err(format!("cannot create internal topic {}: {e}", t.name));
            }
        }
    }
    Ok(())
}

/// Reconciles one KafkaConnect.
pub async fn reconcile(kc: Arc<KafkaConnect>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let ns = kc.namespace().ok_or(Error::MissingField("namespace"))?;
    let api: Api<KafkaConnect> = Api::namespaced(ctx.client.clone(), &ns);
    let names = ConnectNames::of(&kc);
    let mut status = KafkaConnectStatus {
        replicas: Some(kc.spec.replicas),
        url: Some(names.url()),
        ..kc.status.clone().unwrap_or_default()
    };
    let (ready, reason, message, requeue) = match sync(&kc, &ctx, &ns, &names, &mut status).await? {
        Ok((ready, msg)) if ready => (true, "Ready", msg, ctx.settings.cluster_resync),
        Ok((_, msg)) => (false, "WorkersStarting", msg, Duration::from_secs(5)),
        Err((reason, msg)) => (false, reason, msg, Duration::from_secs(15)),
    };
    let prev = kc.status.clone().unwrap_or_default();
    let changed = find(&prev.conditions, types::READY)
        .is_none_or(|c| c.reason != reason || (c.status == "True") != ready);
    if changed && reason != "WorkersStarting" {
        ctx.event(
            &*kc,
            CONTROLLER,
            !ready,
            reason,
            "Reconcile",
            message.clone(),
        )
        .await;
    }
    let generation = kc.metadata.generation;
    let now = Timestamp::now();
    status.observed_generation = generation;
    status.conditions = vec![
        condition(
            &prev.conditions,
            types::READY,
            ready,
            reason,
            message.clone(),
            generation,
            now,
        ),
        condition(
            &prev.conditions,
            types::DEGRADED,
            !ready && reason != "WorkersStarting",
            reason,
            if ready { "no problems".into() } else { message },
            generation,
            now,
        ),
    ];
    if kc.status.as_ref() != Some(&status) {
        apply_status(&api, &kc.name_any(), &status).await?;
    }
    Ok(Action::requeue(requeue))
}

/// `Ok(Ok((ready, message)))`, or `Ok(Err((reason, message)))` for a problem to report.
async fn sync(
    kc: &KafkaConnect,
    ctx: &Context,
    ns: &str,
    names: &ConnectNames,
    status: &mut KafkaConnectStatus,
) -> Result<Result<(bool, String), (&'static str, String)>, Error> {
    let bootstrap = match bootstrap(kc, ctx, ns).await? {
        Ok(b) => b,
        Err(m) => return Ok(Err(("ClusterNotFound", m))),
    };
    let children = match render::children(kc, &bootstrap, &ctx.settings.connect_image) {
        Ok(c) => c,
        Err(e) => return Ok(Err(("InvalidSpec", e.to_string()))),
    };
    if let Err(m) = internal_topics(kc, ctx, &bootstrap).await {
        return Ok(Err(("InternalTopicsUnavailable", m)));
    }
    apply_child(ctx, kc, ns, &children.config_map).await?;
    apply_child(ctx, kc, ns, &children.service).await?;
    let dep: Deployment = apply_child(ctx, kc, ns, &children.deployment).await?;
    let ds = dep.status.unwrap_or_default();
    let updated = ds.updated_replicas.unwrap_or(0);
    let ready = ds.ready_replicas.unwrap_or(0);
    status.ready_replicas = Some(ready);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let mut workers: Vec<String> = pods
        .list(&ListParams::default().labels(&names.selector_string()))
        .await?
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.name_any())
        .collect();
    workers.sort();
    status.workers = workers;
    if ready > 0 {
        let rest = ConnectRest::new(&names.url());
        match rest.plugins().await {
            Ok(mut p) => {
                p.sort_by(|a, b| a.class.cmp(&b.class));
                status.connector_plugins = p;
            }
            Err(e) => warn!(connect = %kc.name_any(), error = %e, "cannot list connector plugins"),
        }
    }
    let want = kc.spec.replicas;
    let done =
        ready >= want && updated >= want && ds.observed_generation >= dep.metadata.generation;
    Ok(Ok((
        done,
        format!(
            "{ready}/{want} workers ready (group {}, bootstrap {bootstrap})",
            kc.spec.group_id
        ),
    )))
}
