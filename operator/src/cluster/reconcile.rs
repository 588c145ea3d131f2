//! `reconcile` and `error_policy` of the KafkaCluster controller.

use super::render::{self, names::FIELD_MANAGER, statefulset::BROKER_CONTAINER, Names};
use super::roll::{self, RollDecision};
use super::status::{self, KafkaView, Observed, PodView, UnderReplicated};
use super::CONTROLLER;
use crate::context::{apply_status, Context};
use crate::kafka::under_replicated_partitions;
use crate::Error;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use runnel_crds::condition::{find, is_true, types};
use runnel_crds::KafkaCluster;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

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

    let children = match render::children(&kc, &ctx.settings.broker_image) {
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
                spec_error: Some(message),
                update_revision: None,
                pods: vec![],
                kafka: Err("spec not applied".into()),
                rolling: None,
                roll_wait: None,
                bootstrap,
                image,
                version,
            };
            let st = status::status(&obs, prev, Timestamp::now());
            apply_status(&api, &name, &st).await?;
            return Ok(Action::await_change());
        }
    };

    apply(&ctx, &kc, &ns, &children.config_map).await?;
    apply(&ctx, &kc, &ns, &children.headless_service).await?;
    apply(&ctx, &kc, &ns, &children.bootstrap_service).await?;
    apply(&ctx, &kc, &ns, &children.pdb).await?;
    let sts = apply(&ctx, &kc, &ns, &children.statefulset).await?;
    let update_revision = sts.status.as_ref().and_then(|s| s.update_revision.clone());

    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pods = pods_api
        .list(&ListParams::default().labels(&names.selector_string()))
        .await?;
    let prefix = format!("{}-", names.statefulset());
    let mut views: Vec<PodView> = pods
        .items
        .iter()
        .filter_map(|p| {
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
            Some(PodView {
                ordinal,
                name: pname,
                ready,
                revision: p.labels().get("controller-revision-hash").cloned(),
                terminating: p.metadata.deletion_timestamp.is_some(),
                image,
            })
        })
        .collect();
    views.sort_by_key(|p| p.ordinal);

    // Only the roller reads under-replicated partitions, and only for an outdated pod:
    // listing every topic's partitions is skipped otherwise.
    let outdated = update_revision.is_some() && views.iter().any(|p| p.revision != update_revision);
    let kafka = if views.iter().any(|p| p.ready) {
        kafka_view(&ctx, &bootstrap, outdated).await
    } else {
        Err("no broker pod is ready".to_string())
    };

    let mut rolling = None;
    let mut roll_wait = None;
    match roll::next(
        kc.spec.replicas,
        update_revision.as_deref(),
        &views,
        kafka.as_ref().ok(),
    ) {
        RollDecision::UpToDate => {}
        RollDecision::Wait(why) => {
            info!(cluster = %name, why, "rolling restart waits");
            // An error that blocks the roll is a warning, once per distinct message.
            let said = kc
                .status
                .as_ref()
                .and_then(|s| find(&s.conditions, types::READY))
                .is_some_and(|c| c.message.contains(&why));
            if why.starts_with(roll::UNKNOWN_URP) && !said {
                warn!(cluster = %name, why, "rolling restart blocked");
                ctx.event(
                    &*kc,
                    CONTROLLER,
                    true,
                    "RollingRestartBlocked",
                    "RollingRestart",
                    format!("no broker is restarted while {why}"),
                )
                .await;
            }
            roll_wait = Some(why);
        }
        RollDecision::Restart(pod) => {
            info!(cluster = %name, pod, "restarting broker to apply the new pod template");
            pods_api.delete(&pod, &DeleteParams::default()).await?;
            ctx.event(
                &*kc,
                CONTROLLER,
                false,
                "BrokerRestarted",
                "RollingRestart",
                format!("deleted pod {pod} so it restarts with the new configuration"),
            )
            .await;
            if let Some(v) = views.iter_mut().find(|v| v.name == pod) {
                v.terminating = true;
            }
            rolling = Some(pod);
        }
    }

    let obs = Observed {
        generation: kc.metadata.generation,
        replicas: kc.spec.replicas,
        spec_error: None,
        update_revision,
        pods: views,
        kafka,
        rolling,
        roll_wait,
        bootstrap,
        image,
        version,
    };
    let prev = kc.status.as_ref();
    let st = status::status(&obs, prev, Timestamp::now());
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
    Ok(if ready {
        Action::requeue(ctx.settings.cluster_resync)
    } else {
        Action::requeue(Duration::from_secs(5))
    })
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

/// What the brokers report: cluster id, registered brokers and, with `count_urp`,
/// under-replicated partitions.
async fn kafka_view(ctx: &Context, bootstrap: &str, count_urp: bool) -> Result<KafkaView, String> {
    let result = async {
        let admin = ctx.kafka.get(bootstrap).await?;
        let cluster = admin.describe_cluster().await?;
        let urp = if count_urp {
            match under_replicated_partitions(&admin).await? {
                Ok(n) => UnderReplicated::Count(n),
                Err(why) => UnderReplicated::Unknown(why),
            }
        } else {
            UnderReplicated::NotCounted
        };
        Ok::<_, crate::kafka::KafkaError>(KafkaView {
            cluster_id: cluster.cluster_id,
            brokers: cluster
                .brokers
                .iter()
                .map(|b| b.id)
                .collect::<BTreeSet<_>>(),
            under_replicated: urp,
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
