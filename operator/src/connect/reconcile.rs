//! `reconcile` and `error_policy` of the KafkaConnect controller: internal topics first
//! (Admin API, compacted, the spec's replication factor), then the worker ConfigMap,
//! Service and Deployment by server-side apply, then the status from the Deployment and
//! the workers' REST API.

use super::plugins;
use super::render::{self, ConnectNames};
use super::roll::{next_step, Assignment, RollStep, WorkerPod};
use super::CONTROLLER;
use crate::cluster::render::names::FIELD_MANAGER;
use crate::cluster::render::Names;
use crate::connector::rest::ConnectRest;
use crate::context::{apply_status, Context};
use crate::kafka::TOPIC_ALREADY_EXISTS;
use crate::Error;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
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
        Ok((_, msg)) if msg.starts_with("rolling") => {
            (false, "RollingRestart", msg, Duration::from_secs(5))
        }
        Ok((_, msg)) => (false, "WorkersStarting", msg, Duration::from_secs(5)),
        Err((reason, msg)) => (false, reason, msg, Duration::from_secs(15)),
    };
    let prev = kc.status.clone().unwrap_or_default();
    let changed = find(&prev.conditions, types::READY)
        .is_none_or(|c| c.reason != reason || (c.status == "True") != ready);
    if changed && reason != "WorkersStarting" && reason != "RollingRestart" {
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
            !ready && reason != "WorkersStarting" && reason != "RollingRestart",
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
    let sts: StatefulSet = apply_child(ctx, kc, ns, &children.stateful_set).await?;
    remove_old_deployment(kc, ctx, ns, names).await?;
    let ss = sts.status.clone().unwrap_or_default();
    let ready = ss.ready_replicas.unwrap_or(0);
    status.ready_replicas = Some(ready);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let listed = pods
        .list(&ListParams::default().labels(&names.selector_string()))
        .await?
        .items;
    let revision = ss.update_revision.clone().unwrap_or_default();
    let observed: Vec<WorkerPod> = listed.iter().map(|p| worker_pod(p, &revision)).collect();
    let mut workers: Vec<String> = observed
        .iter()
        .filter(|p| !p.terminating)
        .map(|p| p.name.clone())
        .collect();
    workers.sort();
    status.workers = workers;
    let rest = ConnectRest::new(&names.url());
    if ready > 0 {
        match rest.plugins().await {
            Ok(mut p) => {
                p.sort_by(|a, b| a.class.cmp(&b.class));
                status.connector_plugins = p;
            }
            Err(e) => warn!(connect = %kc.name_any(), error = %e, "cannot list connector plugins"),
        }
    }
    let current = ss.observed_generation >= sts.metadata.generation && !revision.is_empty();
    let step = if !current {
        RollStep::Wait("the StatefulSet controller has not seen the new template yet".into())
    } else if observed.iter().all(|p| p.up_to_date || p.terminating) {
        RollStep::Done
    } else {
        let assignments = match rest.all_statuses().await {
            Ok(all) => Some(assignments(&all)),
            Err(e) => {
                warn!(connect = %kc.name_any(), error = %e, "cannot read connector statuses");
                None
            }
        };
        next_step(
            &observed,
            kc.spec.replicas,
            assignments.as_deref(),
            render::REST_PORT,
        )
    };
    let rolling = match step {
        RollStep::Done => None,
        RollStep::Wait(why) => Some(format!("rolling the workers: waiting ({why})")),
        RollStep::Restart(pod) => {
            info!(connect = %kc.name_any(), %pod, "restarting a worker (rolling restart)");
            match pods.delete(&pod, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
            ctx.event(
                kc,
                CONTROLLER,
                false,
                "WorkerRestarted",
                "Roll",
                format!(
                    "restarted worker {pod} for the new pod template (the group had rebalanced)"
                ),
            )
            .await;
            Some(format!("rolling the workers: restarted {pod}"))
        }
    };
    if let Some(failure) = plugins::download_failure(&listed) {
        // A worker whose plugins cannot be fetched never starts: say why (the roll above
        // still replaces it once the spec is fixed).
        return Ok(Err(("PluginDownloadFailed", failure)));
    }
    if let Some(m) = rolling {
        return Ok(Ok((false, m)));
    }
    let want = kc.spec.replicas;
    let done = ready >= want && current;
    Ok(Ok((
        done,
        format!(
            "{ready}/{want} workers ready (group {}, bootstrap {bootstrap})",
            kc.spec.group_id
        ),
    )))
}

/// A worker pod as the roll sees it.
fn worker_pod(p: &Pod, update_revision: &str) -> WorkerPod {
    let labels = p.metadata.labels.clone().unwrap_or_default();
    let st = p.status.clone().unwrap_or_default();
    WorkerPod {
        name: p.name_any(),
        ip: st.pod_ip.clone(),
        ready: st
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        up_to_date: labels.get("controller-revision-hash").map(String::as_str)
            == Some(update_revision),
        terminating: p.metadata.deletion_timestamp.is_some(),
    }
}

/// Every connector and task of `all` as the roll sees it.
fn assignments(all: &[crate::connector::rest::ConnectorStatus]) -> Vec<Assignment> {
    let mut out = Vec::new();
    for s in all {
        out.push(Assignment {
            what: s.name.clone(),
            state: s.connector.state.clone(),
            worker_id: s.connector.worker_id.clone(),
        });
        for t in &s.tasks {
            out.push(Assignment {
                what: format!("{}/{}", s.name, t.id),
                state: t.state.clone(),
                worker_id: t.worker_id.clone(),
            });
        }
    }
    out
}

/// Deletes the Deployment `<name>-connect` earlier versions made (the workers are a
/// StatefulSet now), once the StatefulSet has a ready worker.
async fn remove_old_deployment(
    kc: &KafkaConnect,
    ctx: &Context,
    ns: &str,
    names: &ConnectNames,
) -> Result<(), Error> {
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let Some(d) = api.get_opt(&names.workers()).await? else {
        return Ok(());
    };
    let ours = d
        .metadata
        .owner_references
        .unwrap_or_default()
        .iter()
        .any(|o| Some(&o.uid) == kc.metadata.uid.as_ref());
    if ours {
        api.delete(&names.workers(), &DeleteParams::default())
            .await?;
        info!(connect = %kc.name_any(), "deleted the workers' old Deployment");
        ctx.event(
            kc,
            CONTROLLER,
            false,
            "DeploymentReplaced",
            "Apply",
            "the workers are a StatefulSet now; deleted the old Deployment".into(),
        )
        .await;
    }
    Ok(())
}
