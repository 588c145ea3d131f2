//! `reconcile` and `error_policy` of the KafkaTopic controller.

use super::owner::owner;
use super::plan::{plan, Desired, Plan, Refusal};
use super::replication::{self, RfOutcome, RfThrottle};
use super::{TopicContext, CONTROLLER, FINALIZER};
use crate::cluster::render::Names;
use crate::cluster::throttle::ThrottleChange;
use crate::context::apply_status;
use crate::kafka::{
    topic_state, KafkaError, TopicState, TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::Error;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::ResourceExt;
use runnel_admin::{AlterConfigOp, NewTopic};
use runnel_crds::condition::{condition, find, is_true, types};
use runnel_crds::topic::TopicDrift;
use runnel_crds::{
    KafkaCluster, KafkaTopic, KafkaTopicStatus, CLUSTER_LABEL, DELETION_POLICY_ANNOTATION,
};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Reconciles one KafkaTopic (behind the finalizer that deletes its topic).
pub async fn reconcile(kt: Arc<KafkaTopic>, tctx: Arc<TopicContext>) -> Result<Action, Error> {
    let ctx = &tctx.ctx;
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let ns = kt.namespace().ok_or(Error::MissingField("namespace"))?;
    let api: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, kt, |event| async {
        match event {
            Finalizer::Apply(kt) => apply(&kt, &tctx, &api).await,
            Finalizer::Cleanup(kt) => cleanup(&kt, &tctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(e.to_string()))
}

/// Retries a failed reconcile after a pause.
pub fn error_policy(kt: Arc<KafkaTopic>, err: &Error, tctx: Arc<TopicContext>) -> Action {
    warn!(topic = %kt.name_any(), error = %err, "reconcile failed");
    tctx.ctx.metrics.failure(CONTROLLER, err.metric_label());
    Action::requeue(Duration::from_secs(10))
}

/// The outcome of one pass, written as the status.
struct Outcome {
    ready: bool,
    reason: &'static str,
    message: String,
    state: Option<TopicState>,
    drift: Option<Vec<String>>,
    requeue: Option<Duration>,
    /// What happened to `status.replicationThrottle`.
    throttle: ThrottleChange,
}

impl Outcome {
    fn not_ready(
        reason: &'static str,
        message: impl Into<String>,
        requeue: Option<Duration>,
    ) -> Self {
        Outcome {
            ready: false,
            reason,
            message: message.into(),
            state: None,
            drift: None,
            requeue,
            throttle: ThrottleChange::Keep,
        }
    }
}

/// The reason for a Kafka error code in a condition (Kafka's own name, CamelCased).
fn kafka_reason(e: &KafkaError) -> &'static str {
    match e.kafka_code() {
        Some(40) => "InvalidConfig",
        Some(37) => "InvalidPartitions",
        Some(38) => "InvalidReplicationFactor",
        Some(17) => "InvalidTopic",
        Some(44) => "PolicyViolation",
        Some(_) => "KafkaRejected",
        None => "KafkaUnavailable",
    }
}

async fn apply(
    kt: &KafkaTopic,
    tctx: &TopicContext,
    api: &Api<KafkaTopic>,
) -> Result<Action, Error> {
    let ctx = &tctx.ctx;
    let outcome = sync(kt, tctx).await?;
    let generation = kt.metadata.generation;
    let prev = kt.status.clone().unwrap_or_default();
    let now = Timestamp::now();

    // Tell about a new problem once, when the Ready condition changes to it.
    let prev_ready = find(&prev.conditions, types::READY);
    let changed = prev_ready
        .is_none_or(|c| c.reason != outcome.reason || (c.status == "True") != outcome.ready);
    if !outcome.ready && changed {
        ctx.event(
            kt,
            CONTROLLER,
            true,
            outcome.reason,
            "Reconcile",
            outcome.message.clone(),
        )
        .await;
    }

    let conds = &prev.conditions;
    let status = KafkaTopicStatus {
        observed_generation: generation,
        conditions: vec![
            condition(
                conds,
                types::READY,
                outcome.ready,
                outcome.reason,
                outcome.message.clone(),
                generation,
                now,
            ),
            condition(
                conds,
                types::RECONCILING,
                false,
                if outcome.ready {
                    "Reconciled"
                } else {
                    outcome.reason
                },
                if outcome.ready {
                    "Kafka matches the spec".to_string()
                } else {
                    outcome.message.clone()
                },
                generation,
                now,
            ),
            condition(
                conds,
                types::DEGRADED,
                !outcome.ready,
                outcome.reason,
                if outcome.ready {
                    "no problems".to_string()
                } else {
                    outcome.message.clone()
                },
                generation,
                now,
            ),
        ],
        topic_name: Some(kt.topic_name()),
        topic_id: outcome
            .state
            .as_ref()
            .and_then(|s| s.topic_id.clone())
            .or(prev.topic_id.clone()),
        partitions: outcome
            .state
            .as_ref()
            .map(|s| s.partitions)
            .or(prev.partitions),
        last_drift: match outcome.drift {
            Some(changes) => Some(TopicDrift {
                detected_at: Time(now),
                changes,
            }),
            None => prev.last_drift,
        },
        replication_throttle: match outcome.throttle {
            ThrottleChange::Keep => prev.replication_throttle,
            ThrottleChange::Set(t) => Some(t),
            ThrottleChange::Cleared => None,
        },
    };
    if kt.status.as_ref() != Some(&status) {
        apply_status(api, &kt.name_any(), &status).await?;
    }
    Ok(match outcome.requeue {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

/// Brings Kafka to the spec where it can, and says how it went.
async fn sync(kt: &KafkaTopic, tctx: &TopicContext) -> Result<Outcome, Error> {
    let ctx = &tctx.ctx;
    let resync = ctx.settings.topic_resync;
    let ns = kt.namespace().ok_or(Error::MissingField("namespace"))?;
    let topic = kt.topic_name();

    let Some(cluster_name) = kt.labels().get(CLUSTER_LABEL).cloned() else {
        return Ok(Outcome::not_ready(
            "MissingClusterLabel",
            format!("add the label {CLUSTER_LABEL}=<KafkaCluster name> to say which cluster (in namespace {ns}) holds this topic"),
            None,
        ));
    };
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(cluster) = clusters.get_opt(&cluster_name).await? else {
        return Ok(Outcome::not_ready(
            "ClusterNotFound",
            format!("KafkaCluster {ns}/{cluster_name} (from label {CLUSTER_LABEL}) does not exist"),
            Some(Duration::from_secs(30)),
        ));
    };
    let configs = match runnel_crds::config_map::to_properties(&kt.spec.config) {
        Ok(c) => c,
        Err(msg) => {
            return Ok(Outcome::not_ready(
                "InvalidConfig",
                format!("spec.config: {msg}"),
                None,
            ))
        }
    };
    let all = tctx.topics.state();
    let owner = owner(&all, kt);
    if owner.uid() != kt.uid() {
        return Ok(Outcome::not_ready(
            "TopicConflict",
            format!(
                "topic {topic} in cluster {cluster_name} is already managed by KafkaTopic {ns}/{}; this resource changes nothing in Kafka",
                owner.name_any()
            ),
            Some(Duration::from_secs(60)),
        ));
    }

    let bootstrap = Names::bootstrap_of(&cluster);
    let admin = match ctx.kafka.get(&bootstrap).await {
        Ok(a) => a,
        Err(e) => {
            return Ok(Outcome::not_ready(
                "KafkaUnavailable",
                format!("cannot reach cluster {cluster_name} at {bootstrap}: {e}"),
                Some(Duration::from_secs(10)),
            ))
        }
    };
    let rate = cluster
        .spec
        .rebalance
        .as_ref()
        .and_then(|r| r.throttle_bytes_per_second);
    // Read afresh: the cached object may predate this operator's last status write, and
    // a throttle missing from it would never be removed.
    let topics: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), &ns);
    let recorded = topics
        .get_status(&kt.name_any())
        .await?
        .status
        .and_then(|s| s.replication_throttle);
    let result = converge(kt, tctx, &admin, &topic, configs, rate, recorded).await;
    match result {
        Ok(o) => Ok(o),
        Err(e) => {
            ctx.kafka.on_error(&bootstrap, &e).await;
            let reason = kafka_reason(&e);
            let requeue = if e.kafka_code().is_some() {
                resync.max(Duration::from_secs(60))
            } else {
                Duration::from_secs(10)
            };
            Ok(Outcome::not_ready(reason, e.to_string(), Some(requeue)))
        }
    }
}

/// Reads the topic, applies the plan, reads it back.
async fn converge(
    kt: &KafkaTopic,
    tctx: &TopicContext,
    admin: &runnel_admin::AdminClient,
    topic: &str,
    configs: std::collections::BTreeMap<String, String>,
    rate: Option<i64>,
    recorded: Option<runnel_crds::cluster::ThrottleStatus>,
) -> Result<Outcome, KafkaError> {
    let ctx = &tctx.ctx;
    let desired = Desired {
        name: topic.to_string(),
        partitions: kt.spec.partitions,
        replicas: kt.spec.replicas,
        configs,
    };
    let actual = topic_state(admin, topic).await?;
    let p: Plan = plan(&desired, actual.as_ref());

    // Kafka changed although the spec did not since the last good pass: someone changed the
    // topic out of band. Report it, then revert it below.
    let prev = kt.status.clone().unwrap_or_default();
    let was_in_sync = prev.observed_generation == kt.metadata.generation
        && is_true(&prev.conditions, types::READY);
    let drift = if was_in_sync && actual.is_some() && !p.is_noop() {
        let changes = p.describe(actual.as_ref());
        warn!(topic, ?changes, "out-of-band change found; reverting");
        ctx.event(
            kt,
            CONTROLLER,
            true,
            "DriftReverted",
            "Revert",
            format!("reverting out-of-band changes: {}", changes.join("; ")),
        )
        .await;
        Some(changes)
    } else {
        None
    };

    if p.create {
        let mut nt = NewTopic::new(
            topic,
            desired.partitions,
            desired.replicas.clamp(1, i16::MAX as i32) as i16,
        );
        nt.configs = desired.configs.clone();
        match admin.create_topic(nt, false).await {
            Ok(created) => {
                info!(topic, partitions = desired.partitions, "created topic");
                let id = created
                    .topic_id
                    .as_ref()
                    .map(crate::kafka::uuid_string)
                    .unwrap_or_default();
                ctx.event(
                    kt,
                    CONTROLLER,
                    false,
                    "TopicCreated",
                    "Create",
                    format!(
                        "created topic {topic} ({} partitions, replication factor {}, id {id})",
                        desired.partitions, desired.replicas
                    ),
                )
                .await;
            }
            // Created meanwhile (e.g. auto-creation): compare again next pass.
            Err(e) if e.kafka_code() == Some(TOPIC_ALREADY_EXISTS) => {
                return Ok(Outcome::not_ready(
                    "Creating",
                    format!("topic {topic} appeared while being created; re-reading"),
                    Some(Duration::from_secs(1)),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(n) = p.grow_partitions_to {
        admin.create_partitions(topic, n, false).await?;
        info!(topic, partitions = n, "increased partitions");
        ctx.event(
            kt,
            CONTROLLER,
            false,
            "PartitionsIncreased",
            "Update",
            format!("topic {topic} now has {n} partitions"),
        )
        .await;
    }
    if !p.set_configs.is_empty() || !p.delete_configs.is_empty() {
        let mut ops: Vec<AlterConfigOp> = p
            .set_configs
            .iter()
            .map(|(k, v)| AlterConfigOp::Set(k.clone(), v.clone()))
            .collect();
        ops.extend(
            p.delete_configs
                .iter()
                .map(|k| AlterConfigOp::Delete(k.clone())),
        );
        admin
            .incremental_alter_topic_configs(topic, &ops, false)
            .await?;
        let mut what: Vec<String> = p
            .set_configs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        what.extend(p.delete_configs.iter().map(|k| format!("removed {k}")));
        info!(topic, changes = ?what, "updated topic configs");
        if !p.create {
            ctx.event(
                kt,
                CONTROLLER,
                false,
                "ConfigUpdated",
                "Update",
                format!("topic {topic}: {}", what.join(", ")),
            )
            .await;
        }
    }
    let state = if p.is_noop() {
        actual
    } else {
        topic_state(admin, topic).await?
    };
    let resync = Some(ctx.settings.topic_resync);
    let Some(state) = state else {
        return Ok(Outcome::not_ready(
            "Creating",
            format!("topic {topic} is not visible yet"),
            Some(Duration::from_secs(2)),
        ));
    };
    // A replication-factor change alone goes through reassignment.
    if let [Refusal::ReplicationFactorChange { desired: rf, .. }] = p.refusals.as_slice() {
        let th = RfThrottle {
            rate,
            recorded: recorded.as_ref(),
        };
        let (outcome, throttle) = replication::change(ctx, kt, admin, topic, *rf, th).await?;
        let (reason, message, requeue) = match outcome {
            RfOutcome::Refused(m) => ("ReplicationFactorTooHigh", m, resync),
            RfOutcome::Moving(m) => ("Reassigning", m, Some(Duration::from_secs(5))),
        };
        return Ok(Outcome {
            ready: false,
            reason,
            message,
            state: Some(state),
            drift,
            requeue,
            throttle: fresh(throttle, recorded),
        });
    }
    if let Some(r) = p.refusals.first() {
        let message = p
            .refusals
            .iter()
            .map(|r| r.message())
            .collect::<Vec<_>>()
            .join("; ");
        return Ok(Outcome {
            ready: false,
            reason: r.reason(),
            message,
            state: Some(state),
            drift,
            requeue: resync,
            throttle: fresh(ThrottleChange::Keep, recorded),
        });
    }
    // A replication-factor change (or any move) is done only when the
    // reassignment is: the new replicas are then in sync.
    let moving = replication::reassigning(admin, topic).await?;
    if moving > 0 {
        return Ok(Outcome {
            ready: false,
            reason: "Reassigning",
            message: format!(
                "topic {topic}: {moving} partition reassignment(s) in progress; the replicas being added are not all in sync yet"
            ),
            state: Some(state),
            drift,
            requeue: Some(Duration::from_secs(5)),
            throttle: fresh(ThrottleChange::Keep, recorded),
        });
    }
    // This topic's moves are done: its throttle goes once no move runs in the cluster.
    let (throttle, requeue) = match &recorded {
        Some(r) => {
            let released = replication::release_throttle(ctx, kt, admin, r).await;
            if let Err(e) = &released {
                warn!(topic, error = %e, "removing the replication throttle failed");
            }
            match released {
                Ok(ThrottleChange::Cleared) => (ThrottleChange::Cleared, resync),
                // Moves still run in the cluster, or removing failed: kept, tried again soon.
                _ => (
                    fresh(ThrottleChange::Keep, recorded.clone()),
                    Some(Duration::from_secs(10)),
                ),
            }
        }
        None => (ThrottleChange::Cleared, resync),
    };
    let message = format!(
        "topic {topic} has {} partitions, replication factor {}, {} configs set",
        state.partitions,
        state.replication_factor,
        state.configs.len()
    );
    Ok(Outcome {
        ready: true,
        reason: "TopicReady",
        message,
        state: Some(state),
        drift,
        requeue,
        throttle,
    })
}

/// `change`, or else the record read afresh made explicit (so that a stale cached
/// status cannot drop it).
fn fresh(
    change: ThrottleChange,
    recorded: Option<runnel_crds::cluster::ThrottleStatus>,
) -> ThrottleChange {
    match (change, recorded) {
        (ThrottleChange::Keep, Some(r)) => ThrottleChange::Set(r),
        (ThrottleChange::Keep, None) => ThrottleChange::Cleared,
        (c, _) => c,
    }
}

/// Deletes the topic (unless retained, not ours, or its cluster is gone).
async fn cleanup(kt: &KafkaTopic, tctx: &TopicContext) -> Result<Action, Error> {
    let ctx = &tctx.ctx;
    let topic = kt.topic_name();
    let ns = kt.namespace().ok_or(Error::MissingField("namespace"))?;
    if kt
        .annotations()
        .get(DELETION_POLICY_ANNOTATION)
        .map(String::as_str)
        == Some("Retain")
    {
        info!(topic, "detached (deletion policy Retain); topic kept");
        ctx.event(
            kt,
            CONTROLLER,
            false,
            "TopicDetached",
            "Delete",
            format!("topic {topic} kept in Kafka ({DELETION_POLICY_ANNOTATION}: Retain)"),
        )
        .await;
        return Ok(Action::await_change());
    }
    let all = tctx.topics.state();
    if owner(&all, kt).uid() != kt.uid() {
        return Ok(Action::await_change());
    }
    let Some(cluster_name) = kt.labels().get(CLUSTER_LABEL).cloned() else {
        return Ok(Action::await_change());
    };
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let cluster = match clusters.get_opt(&cluster_name).await? {
        Some(c) if c.metadata.deletion_timestamp.is_none() => c,
        _ => {
            info!(
                topic,
                cluster = cluster_name,
                "cluster gone; nothing to delete"
            );
            return Ok(Action::await_change());
        }
    };
    let bootstrap = Names::bootstrap_of(&cluster);
    let admin = ctx.kafka.get(&bootstrap).await?;
    match admin.delete_topic(&topic).await {
        Ok(()) => {
            info!(topic, "deleted topic");
            ctx.event(
                kt,
                CONTROLLER,
                false,
                "TopicDeleted",
                "Delete",
                format!("deleted topic {topic}"),
            )
            .await;
        }
        Err(e) if e.kafka_code() == Some(UNKNOWN_TOPIC_OR_PARTITION) => {
            info!(topic, "topic already gone");
        }
        Err(e) => {
            ctx.kafka.on_error(&bootstrap, &e).await;
            return Err(e.into());
        }
    }
    Ok(Action::await_change())
}
