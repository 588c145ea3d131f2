//! `reconcile` and `error_policy` of the KafkaCluster controller.

use super::quorum::{Quorum, QuorumState};
use super::render::{self, names::FIELD_MANAGER, statefulset::BROKER_CONTAINER, Names, Pool};
use super::roll::{self, RollDecision};
use super::scale::ScaleStatus;
use super::scale_decide::ScaleAction;
use super::scaling;
use super::status::{self, Observed};
use super::view::{KafkaView, Partitions, PodView, QuorumView};
use super::CONTROLLER;
use crate::context::{apply_status, Context};
use crate::kafka::partition_views;
use crate::Error;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use runnel_crds::cluster::PAUSE_RECONCILIATION_ANNOTATION;
use runnel_crds::condition::{find, is_true, types};
use runnel_crds::KafkaCluster;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Whether `kc` carries `kafka.runnel.dev/pause-reconciliation: "true"`.
pub fn paused(kc: &KafkaCluster) -> bool {
    kc.annotations()
        .get(PAUSE_RECONCILIATION_ANNOTATION)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Reconciles one KafkaCluster.
pub async fn reconcile(kc: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let ns = kc.namespace().ok_or(Error::MissingField("namespace"))?;
    let name = kc.name_any();
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &ns);
    if kc.metadata.deletion_timestamp.is_some() {
        // Children go with their owner reference; claims per storage.deleteClaim.
        return Ok(Action::await_change());
    }
    let names = Names::of(&kc);
    let bootstrap = Names::bootstrap_of(&kc);
    let version = render::statefulset::version(&kc, &ctx.settings.broker_image);
    let image = render::statefulset::image(&kc, &ctx.settings.broker_image);
    let paused = paused(&kc);
    let controllers = kc.spec.controllers.as_ref().map(|c| c.replicas);

    // A downgrade the target version cannot run (super::downgrade) keeps the running
    // image in the pod templates.
    let downgrade_refused = super::downgrade::refusal(
        super::downgrade::VERSIONS,
        kc.status.as_ref().and_then(|s| s.version.as_deref()),
        &version,
        kc.status
            .as_ref()
            .and_then(|s| s.metadata_version.as_deref()),
    );
    let held;
    let render_from: &KafkaCluster = match &downgrade_refused {
        None => &kc,
        Some(why) => {
            let said = kc
                .status
                .as_ref()
                .and_then(|s| find(&s.conditions, types::DOWNGRADE_BLOCKED))
                .is_some_and(|c| c.status == "True" && &c.message == why);
            warn!(cluster = %name, why, "version downgrade refused");
            if !said {
                ctx.event(
                    &*kc,
                    CONTROLLER,
                    true,
                    "DowngradeRefused",
                    "Upgrade",
                    why.clone(),
                )
                .await;
            }
            let live = Api::<StatefulSet>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&names.statefulset_of(Pool::Brokers))
                .await?
                .and_then(|s| s.spec)
                .and_then(|s| s.template.spec)
                .and_then(|p| {
                    p.containers
                        .into_iter()
                        .find(|c| c.name == BROKER_CONTAINER)
                })
                .and_then(|c| c.image);
            let mut k = (*kc).clone();
            if let Some(image) = live {
                k.spec.image = Some(image);
                k.spec.version = None;
            }
            held = k;
            &held
        }
    };
    // The metadata quorum: dynamic voters for a combined cluster (unless its live files
    // list static voters); `formed` once a voter was seen, so node 0 no longer formats
    // itself standalone.
    let live_config = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&names.config_map())
        .await?
        .and_then(|c| c.data);
    let formed = kc
        .status
        .as_ref()
        .and_then(|s| s.quorum.as_ref())
        .is_some_and(|q| !q.voters.is_empty());
    let quorum = Quorum::of(kc.spec.controllers.is_some(), live_config.as_ref(), formed);
    let mut children = match render::children_with(render_from, &ctx.settings.broker_image, quorum)
    {
        Ok(c) => c,
        Err(e) => {
            let message = e.to_string();
            let prev = kc.status.as_ref();
            let was = prev
                .and_then(|s| find(&s.conditions, types::DEGRADED))
                .map(|c| c.message.clone());
            if was.as_deref() != Some(message.as_str()) {
                ctx.event(
                    &*kc,
                    CONTROLLER,
                    true,
                    "InvalidSpec",
                    "Reconcile",
                    message.clone(),
                )
                .await;
            }
            let obs = Observed {
                generation: kc.metadata.generation,
                replicas: kc.spec.replicas,
                controllers,
                spec_error: Some(message),
                pods: vec![],
                kafka: Err("spec not applied".into()),
                plan: None,
                rolling: None,
                paused,
                bootstrap,
                image,
                version,
                scale: ScaleStatus::default(),
                quorum: QuorumState {
                    mode: quorum,
                    pending: None,
                },
            };
            let st = status::status(&obs, prev, Timestamp::now());
            apply_status(&api, &name, &st).await?;
            return Ok(Action::await_change());
        }
    };

    // A scale-down drains the brokers it removes first: the broker StatefulSet keeps its
    // current size until `scaling` says they hold no replica (ScaleAction::Shrink).
    let current_brokers = Api::<StatefulSet>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&names.statefulset_of(Pool::Brokers))
        .await?
        .and_then(|s| s.spec.and_then(|s| s.replicas))
        .unwrap_or(kc.spec.replicas);
    let shrunk = children.statefulset.clone();
    if current_brokers > kc.spec.replicas {
        if let Some(s) = children.statefulset.spec.as_mut() {
            s.replicas = Some(current_brokers);
        }
    }

    // The StatefulSets with the pod template their pods should run: applied, or (paused)
    // as they are, with whether applying the spec would change their pod template.
    let mut sets: Vec<(Pool, StatefulSet, bool)> = Vec::new();
    let mut wanted = vec![(Pool::Brokers, &children.statefulset)];
    if let Some(c) = &children.controllers {
        wanted.insert(0, (Pool::Controllers, &c.statefulset));
    }
    if paused {
        info!(cluster = %name, "reconciliation paused: applying nothing, restarting nothing");
        let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
        for (pool, sts) in wanted {
            let sts_name = names.statefulset_of(pool);
            let live = sts_api.get_opt(&sts_name).await?;
            let dry = PatchParams::apply(FIELD_MANAGER).force().dry_run();
            let would = sts_api.patch(&sts_name, &dry, &Patch::Apply(sts)).await;
            // Not created yet (a dry run of a create fails without the object): nothing
            // runs, nothing restarts.
            if let (Some(live), Ok(would)) = (live, would) {
                let changes = live.spec.as_ref().map(|s| &s.template)
                    != would.spec.as_ref().map(|s| &s.template);
                sets.push((pool, live, changes));
            }
        }
    } else {
        apply(&ctx, &kc, &ns, &children.config_map).await?;
        if let Some(c) = &children.controllers {
            apply(&ctx, &kc, &ns, &c.headless_service).await?;
            apply(&ctx, &kc, &ns, &c.pdb).await?;
        }
        apply(&ctx, &kc, &ns, &children.headless_service).await?;
        apply(&ctx, &kc, &ns, &children.bootstrap_service).await?;
        apply(&ctx, &kc, &ns, &children.pdb).await?;
        for (pool, sts) in wanted {
            sets.push((pool, apply(&ctx, &kc, &ns, sts).await?, false));
        }
    }

    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut views: Vec<PodView> = Vec::new();
    for (pool, sts, template_changes) in &sets {
        let update_revision = sts.status.as_ref().and_then(|s| s.update_revision.clone());
        let pods = pods_api
            .list(&ListParams::default().labels(&names.selector_string_of(*pool)))
            .await?;
        let prefix = format!("{}-", names.statefulset_of(*pool));
        views.extend(pods.items.iter().filter_map(|p| {
            let pname = p.name_any();
            let ordinal = pname.strip_prefix(&prefix)?.parse::<i32>().ok()?;
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let image = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.name == BROKER_CONTAINER))
                .map(|c| c.image.clone())
                .filter(|i| !i.is_empty());
            let revision = p.labels().get("controller-revision-hash").cloned();
            let outdated =
                *template_changes || (update_revision.is_some() && revision != update_revision);
            Some(PodView {
                pool: *pool,
                ordinal,
                node_id: pool.node_id(ordinal),
                name: pname,
                ready,
                revision,
                outdated,
                terminating: p.metadata.deletion_timestamp.is_some(),
                image,
                voter: controllers.is_none() || *pool == Pool::Controllers,
                broker: *pool == Pool::Brokers,
            })
        }));
    }
    views.sort_by_key(|p| (p.pool, p.ordinal));

    let kafka = if views.iter().any(|p| p.ready && p.broker) {
        kafka_view(&ctx, &bootstrap).await
    } else {
        Err("no broker pod is ready".to_string())
    };
    // A dynamic quorum's voters are whom DescribeQuorum names (a new node follows the
    // log as an observer until the operator adds it).
    let dynamic_quorum = match (&kafka, quorum.is_dynamic()) {
        (Ok(k), true) => k.quorum.as_ref().ok(),
        _ => None,
    };
    if let Some(q) = dynamic_quorum {
        for v in views.iter_mut().filter(|v| v.pool == Pool::Brokers) {
            v.voter = q.voters.contains_key(&v.node_id);
        }
    }
    let mut quorum_state = QuorumState {
        mode: quorum,
        pending: None,
    };
    if let (Some(q), false) = (dynamic_quorum, paused) {
        quorum_state.pending = super::quorum::run(&ctx, &kc, &bootstrap, q).await;
    }

    let expected = render::config::pools(&kc);
    let elect_preferred = render::config::user_config(&kc)
        .ok()
        .and_then(|c| c.get("auto.leader.rebalance.enable").cloned())
        .is_none_or(|v| v != "false");
    let previous_wait = kc
        .status
        .as_ref()
        .and_then(|s| s.plan.as_ref())
        .and_then(|p| p.waiting_for.as_deref());
    let plan = roll::settle_elections(
        roll::plan(&expected, &views, kafka.as_ref().ok(), elect_preferred),
        previous_wait,
    );
    // Keys Kafka changes at runtime: no restart (they are not in the config hash).
    let dynamic_config = match (&kafka, paused) {
        (Ok(_), false) => super::dynamic::reconcile(&ctx, &kc, &bootstrap).await,
        _ => None,
    };

    let (scale_action, scale) = scaling::run(
        &ctx,
        &kc,
        &bootstrap,
        current_brokers,
        kafka.as_ref().ok(),
        paused,
    )
    .await;
    // A dynamic quorum's removed nodes stop voting before their pods go.
    let still_voting = match dynamic_quorum {
        Some(q) => super::quorum::still_voting(
            &super::scale::removed(current_brokers, kc.spec.replicas),
            q,
        ),
        None => Vec::new(),
    };
    if scale_action == ScaleAction::Shrink && !paused {
        if still_voting.is_empty() {
            apply(&ctx, &kc, &ns, &shrunk).await?;
        } else {
            info!(cluster = %name, ?still_voting, "the StatefulSet shrinks once the removed nodes no longer vote");
        }
    }
    // Brokers a scale-down removed: unregistered once their pods are gone.
    if kafka.is_ok() && !paused && current_brokers <= kc.spec.replicas {
        let pods: Vec<i32> = views
            .iter()
            .filter(|v| v.pool == Pool::Brokers)
            .map(|v| v.node_id)
            .collect();
        super::unregister::run(&ctx, &kc, &bootstrap, current_brokers, &pods).await;
    }

    let mut rolling = None;
    if !paused {
        if !plan.elect.is_empty() {
            elect_preferred_leaders(&ctx, &kc, &bootstrap, &plan.elect).await;
        }
        match &plan.decision {
            RollDecision::UpToDate => {}
            RollDecision::Wait(why) => {
                info!(cluster = %name, why, "rolling restart waits");
                // An error that blocks the roll is a warning, once per distinct message.
                let said = kc
                    .status
                    .as_ref()
                    .and_then(|s| s.plan.as_ref())
                    .and_then(|p| p.waiting_for.as_deref())
                    == Some(why.as_str());
                if why.starts_with(roll::UNKNOWN_PARTITIONS) && !said {
                    warn!(cluster = %name, why, "rolling restart blocked");
                    ctx.event(
                        &*kc,
                        CONTROLLER,
                        true,
                        "RollingRestartBlocked",
                        "RollingRestart",
                        format!("no pod is restarted while {why}"),
                    )
                    .await;
                }
            }
            RollDecision::Restart(pod) => {
                let reason = plan
                    .steps
                    .iter()
                    .find(|s| &s.pod == pod)
                    .map_or("", |s| s.reason.as_str());
                info!(cluster = %name, pod, reason, "restarting to apply the new pod template");
                pods_api.delete(pod, &DeleteParams::default()).await?;
                ctx.event(
                    &*kc,
                    CONTROLLER,
                    false,
                    "BrokerRestarted",
                    "RollingRestart",
                    format!(
                        "deleted pod {pod} so it restarts with the new configuration ({reason})"
                    ),
                )
                .await;
                if let Some(v) = views.iter_mut().find(|v| &v.name == pod) {
                    v.terminating = true;
                }
                rolling = Some(pod.clone());
            }
        }
    }

    let obs = Observed {
        generation: kc.metadata.generation,
        replicas: kc.spec.replicas,
        controllers,
        spec_error: None,
        pods: views,
        kafka,
        plan: Some(plan),
        rolling,
        paused,
        bootstrap,
        image,
        version,
        scale,
        quorum: quorum_state,
    };
    // metadata.version moves only once the requested version runs everywhere.
    let settled = matches!(
        obs.plan.as_ref().map(|p| &p.decision),
        Some(RollDecision::UpToDate)
    ) && obs.rolling.is_none()
        && obs
            .pods
            .iter()
            .all(|p| p.ready && !p.outdated && !p.terminating)
        && status::running_version(&obs).as_deref() == Some(obs.version.as_str());
    let features = match (&obs.kafka, paused) {
        (Ok(_), false) => {
            super::metadata_version::reconcile(&ctx, &kc, &obs.bootstrap, settled).await
        }
        _ => None,
    };
    let prev = kc.status.as_ref();
    let now = Timestamp::now();
    let mut st = status::status(&obs, prev, now);
    if dynamic_config.is_some() {
        st.dynamic_config = dynamic_config;
    }
    if let Some(f) = features {
        st.metadata_version = f.finalized;
        let prev_conds = prev.map(|p| p.conditions.as_slice()).unwrap_or_default();
        if let Some(c) = super::metadata_version::blocked_condition(
            prev_conds,
            f.blocked.as_deref(),
            kc.metadata.generation,
            now,
        ) {
            st.conditions.retain(|x| x.type_ != c.type_);
            st.conditions.push(c);
        }
    } else if let Some(p) = prev {
        // Not asked this time: keep what was reported.
        if let Some(c) = find(&p.conditions, types::METADATA_VERSION_BLOCKED) {
            st.conditions.retain(|x| x.type_ != c.type_);
            st.conditions.push(c.clone());
        }
    }
    if let Some(c) = super::downgrade::blocked_condition(
        prev.map(|p| p.conditions.as_slice()).unwrap_or_default(),
        downgrade_refused.as_deref(),
        kc.metadata.generation,
        now,
    ) {
        st.conditions.retain(|x| x.type_ != c.type_);
        st.conditions.push(c);
    }
    let was_ready = prev.is_some_and(|s| is_true(&s.conditions, types::READY));
    let ready = is_true(&st.conditions, types::READY);
    if ready && !was_ready {
        ctx.event(
            &*kc,
            CONTROLLER,
            false,
            "ClusterReady",
            "Reconcile",
            format!("{} brokers ready at {}", st.ready_replicas, obs.bootstrap),
        )
        .await;
    }
    if prev != Some(&st) {
        apply_status(&api, &name, &st).await?;
    }
    // A drain or rebalance in flight is polled until the reassignments complete.
    let scaling = !matches!(scale_action, ScaleAction::None | ScaleAction::Blocked)
        || !obs.scale.moves.is_empty()
        || obs.quorum.pending.is_some();
    Ok(if ready && !scaling {
        Action::requeue(ctx.settings.cluster_resync)
    } else {
        Action::requeue(Duration::from_secs(5))
    })
}

/// Runs a preferred leader election for `partitions`, logging (and reporting as a
/// warning event) the partitions it failed for; the next reconcile retries them.
async fn elect_preferred_leaders(
    ctx: &Context,
    kc: &KafkaCluster,
    bootstrap: &str,
    partitions: &[(String, i32)],
) {
    let result = async {
        let admin = ctx.kafka.get(bootstrap).await?;
        admin.elect_preferred_leaders(partitions).await
    }
    .await;
    match result {
        Ok(results) => {
            let failed = crate::kafka::failed_partitions(&results);
            info!(
                cluster = %kc.name_any(),
                partitions = partitions.len(),
                failed = failed.len(),
                "preferred leader election"
            );
            if !failed.is_empty() {
                warn!(cluster = %kc.name_any(), ?failed, "preferred leader election failed for some partitions");
            }
        }
        Err(e) => {
            warn!(cluster = %kc.name_any(), error = %e, "preferred leader election failed");
            ctx.kafka.on_error(bootstrap, &e).await;
        }
    }
}

/// Retries a failed reconcile after a pause.
pub fn error_policy(kc: Arc<KafkaCluster>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(cluster = %kc.name_any(), error = %err, "reconcile failed");
    ctx.metrics.failure(CONTROLLER, err.metric_label());
    Action::requeue(Duration::from_secs(10))
}

/// Server-side applies one child, with an event when it is created or changed.
async fn apply<K>(ctx: &Context, kc: &KafkaCluster, ns: &str, obj: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let name = obj.meta().name.clone().ok_or(Error::MissingField("name"))?;
    let before = api
        .get_opt(&name)
        .await?
        .and_then(|o| o.meta().resource_version.clone());
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let after = api.patch(&name, &pp, &Patch::Apply(obj)).await?;
    let kind = K::kind(&());
    match before {
        None => {
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
        Some(rv) if after.meta().resource_version.as_ref() != Some(&rv) => {
            info!(%kind, %name, "updated");
            ctx.event(
                kc,
                CONTROLLER,
                false,
                "Updated",
                "Apply",
                format!("updated {kind} {name}"),
            )
            .await;
        }
        Some(_) => {}
    }
    Ok(after)
}

/// What the brokers report: cluster id, registered unfenced brokers, the quorum, and
/// every partition's ISR with its topic's min.insync.replicas.
async fn kafka_view(ctx: &Context, bootstrap: &str) -> Result<KafkaView, String> {
    let result = async {
        let admin = ctx.kafka.get(bootstrap).await?;
        let cluster = admin.describe_cluster().await?;
        let quorum = match admin.describe_quorum().await {
            Ok(q) => Ok(QuorumView {
                leader: q.leader_id,
                voters: q.voters.into_iter().collect(),
                high_watermark: q.high_watermark,
                directories: q
                    .voter_directories
                    .into_iter()
                    .filter_map(|(id, d)| Some((id, d?)))
                    .collect(),
                // (observer_directories is in observers' order)
                observers: q
                    .observers
                    .into_iter()
                    .zip(q.observer_directories)
                    .map(|((id, end), (_, d))| (id, (end, d)))
                    .collect(),
            }),
            Err(e) if e.kafka_code().is_some() => Err(e.to_string()),
            Err(e) => return Err(e),
        };
        let partitions = match partition_views(&admin).await? {
            Ok(ps) => Partitions::Known(ps),
            Err(why) => Partitions::Unknown(why),
        };
        Ok::<_, crate::kafka::KafkaError>(KafkaView {
            cluster_id: cluster.cluster_id,
            brokers: cluster
                .brokers
                .iter()
                .map(|b| b.id)
                .collect::<BTreeSet<_>>(),
            racks: cluster
                .brokers
                .iter()
                .filter_map(|b| b.rack.clone().map(|r| (b.id, r)))
                .collect(),
            quorum,
            partitions,
        })
    }
    .await;
    match result {
        Ok(v) => Ok(v),
        Err(e) => {
            ctx.kafka.on_error(bootstrap, &e).await;
            Err(e.to_string())
        }
    }
}
