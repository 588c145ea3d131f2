//! `reconcile` and `error_policy` of the KafkaConnector controller.

use super::plan::{desired_config, plan, Call, Observed};
use super::rest::{ConnectRest, RestError};
use super::{CONTROLLER, FINALIZER};
use crate::connect::render::ConnectNames;
use crate::context::{apply_status, Context};
use crate::Error;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::ResourceExt;
use runnel_crds::condition::{condition, find, types};
use runnel_crds::connector::{
    ConnectorState, TaskStatus, RESET_OFFSETS_ANNOTATION, RESTART_ANNOTATION,
    RESTART_TASK_ANNOTATION,
};
use runnel_crds::{KafkaConnect, KafkaConnector, KafkaConnectorStatus};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Most characters of a trace kept in the status.
const MAX_TRACE: usize = 2000;

/// Reconciles one KafkaConnector (behind the finalizer that deletes its connector).
pub async fn reconcile(kc: Arc<KafkaConnector>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let ns = kc.namespace().ok_or(Error::MissingField("namespace"))?;
    let api: Api<KafkaConnector> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, kc, |event| async {
        match event {
            Finalizer::Apply(kc) => apply(&kc, &ctx, &api).await,
            Finalizer::Cleanup(kc) => cleanup(&kc, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(e.to_string()))
}

/// Retries a failed reconcile after a pause.
pub fn error_policy(kc: Arc<KafkaConnector>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(connector = %kc.name_any(), error = %err, "reconcile failed");
    ctx.metrics.failure(CONTROLLER, err.metric_label());
    Action::requeue(Duration::from_secs(10))
}

/// One pass's result, written as the status.
struct Outcome {
    ready: bool,
    reason: &'static str,
    message: String,
    observed: Option<super::rest::ConnectorStatus>,
    offsets: Option<serde_json::Value>,
    drift: Option<String>,
    requeue: Duration,
}

impl Outcome {
    fn not_ready(reason: &'static str, message: impl Into<String>, requeue: Duration) -> Self {
        Outcome {
            ready: false,
            reason,
            message: message.into(),
            observed: None,
            offsets: None,
            drift: None,
            requeue,
        }
    }
}

/// The REST client of the KafkaConnect `kc` runs on, or why there is none.
async fn connect_of(
    kc: &KafkaConnector,
    ctx: &Context,
    ns: &str,
) -> Result<Result<(KafkaConnect, ConnectRest), Outcome>, Error> {
    let Some(name) = kc.connect_name() else {
        return Ok(Err(Outcome::not_ready(
            "MissingConnectRef",
            "set spec.connectRef (or the kafka.runnel.dev/connect label) to a KafkaConnect of this namespace",
            Duration::from_secs(300),
        )));
    };
    let api: Api<KafkaConnect> = Api::namespaced(ctx.client.clone(), ns);
    let Some(connect) = api.get_opt(&name).await? else {
        return Ok(Err(Outcome::not_ready(
            "ConnectNotFound",
            format!("KafkaConnect {ns}/{name} does not exist"),
            Duration::from_secs(30),
        )));
    };
    let url = connect
        .status
        .as_ref()
        .and_then(|s| s.url.clone())
        .unwrap_or_else(|| ConnectNames::of(&connect).url());
    Ok(Ok((connect, ConnectRest::new(&url))))
}

async fn apply(
    kc: &KafkaConnector,
    ctx: &Context,
    api: &Api<KafkaConnector>,
) -> Result<Action, Error> {
    let outcome = sync(kc, ctx, api).await?;
    let generation = kc.metadata.generation;
    let prev = kc.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let prev_ready = find(&prev.conditions, types::READY);
    let changed = prev_ready
        .is_none_or(|c| c.reason != outcome.reason || (c.status == "True") != outcome.ready);
    if changed {
        ctx.event(
            kc,
            CONTROLLER,
            !outcome.ready,
            outcome.reason,
            "Reconcile",
            outcome.message.clone(),
        )
        .await;
    }
    let conds = &prev.conditions;
    let obs = outcome.observed.as_ref();
    let status = KafkaConnectorStatus {
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
        connector_state: obs.map(|o| o.connector.state.clone()),
        worker_id: obs.and_then(|o| o.connector.worker_id.clone()),
        connector_type: obs.and_then(|o| o.type_.clone()),
        tasks: obs
            .map(|o| {
                o.tasks
                    .iter()
                    .map(|t| TaskStatus {
                        id: t.id,
                        state: t.state.clone(),
                        worker_id: t.worker_id.clone(),
                        trace: t
                            .trace
                            .as_ref()
                            .map(|s| s.chars().take(MAX_TRACE).collect()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        offsets: outcome
            .offsets
            .or(if obs.is_some() { None } else { prev.offsets }),
        last_drift: outcome.drift.or(prev.last_drift),
    };
    if kc.status.as_ref() != Some(&status) {
        apply_status(api, &kc.name_any(), &status).await?;
    }
    Ok(Action::requeue(outcome.requeue))
}

/// Removes `keys` from the resource's annotations (JSON merge patch with nulls).
async fn remove_annotations(
    api: &Api<KafkaConnector>,
    name: &str,
    keys: &[&str],
) -> Result<(), Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let ann: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (k.to_string(), serde_json::Value::Null))
        .collect();
    let patch = serde_json::json!({"metadata": {"annotations": ann}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn unavailable(e: &RestError) -> Outcome {
    Outcome::not_ready("ConnectUnavailable", e.to_string(), Duration::from_secs(15))
}

/// Brings Connect to the spec where it can, and says how it went.
async fn sync(
    kc: &KafkaConnector,
    ctx: &Context,
    api: &Api<KafkaConnector>,
) -> Result<Outcome, Error> {
    let ns = kc.namespace().ok_or(Error::MissingField("namespace"))?;
    let name = kc.name_any();
    let (_connect, rest) = match connect_of(kc, ctx, &ns).await? {
        Ok(c) => c,
        Err(o) => return Ok(o),
    };
    let desired = match desired_config(kc, &name) {
        Ok(d) => d,
        Err(m) => {
            return Ok(Outcome::not_ready(
                "InvalidSpec",
                m,
                Duration::from_secs(300),
            ))
        }
    };
    let config = match rest.config(&name).await {
        Ok(c) => c,
        Err(e) => return Ok(unavailable(&e)),
    };
    let state = match rest.status(&name).await {
        Ok(s) => s.map(|s| s.connector.state),
        Err(e) => return Ok(unavailable(&e)),
    };
    let observed = Observed { config, state };
    let annotations = kc.annotations().clone();
    let spec_changed =
        kc.status.as_ref().and_then(|s| s.observed_generation) != kc.metadata.generation;
    let p = plan(
        &desired,
        kc.spec.state,
        &observed,
        &annotations,
        spec_changed,
    );

    if p.calls.contains(&Call::PutConfig) {
        // Connect's own checks first: an unknown class or a bad config is reported, and
        // the running connector (if any) is left alone.
        match rest.validate(&kc.spec.class, &desired).await {
            Ok(v) if !v.errors.is_empty() => {
                return Ok(Outcome::not_ready(
                    "InvalidConfig",
                    format!("Connect refuses the config: {}", v.errors.join("; ")),
                    Duration::from_secs(60),
                ))
            }
            Ok(_) => {}
            Err(e) if e.is_refusal() => {
                return Ok(Outcome::not_ready(
                    "InvalidConnector",
                    format!("Connect refuses connector class {}: {e}", kc.spec.class),
                    Duration::from_secs(60),
                ))
            }
            Err(e) => return Ok(unavailable(&e)),
        }
    }
    let mut done: Vec<&str> = Vec::new();
    for call in &p.calls {
        if let Err(e) = super::rest::run_call(&rest, &name, &desired, call).await {
            if e.status().is_none() {
                return Ok(unavailable(&e));
            }
            let m = format!("{call:?} failed: {e}");
            warn!(connector = %name, error = %e, ?call, "Connect refused a call");
            return Ok(Outcome::not_ready(
                "ConnectRejected",
                m,
                Duration::from_secs(30),
            ));
        }
        info!(connector = %name, ?call, "done");
        let (reason, note) = match call {
            Call::PutConfig if observed.config.is_none() => ("Created", "created the connector"),
            Call::PutConfig => ("ConfigUpdated", "updated the connector's config"),
            Call::Pause => ("Paused", "paused the connector"),
            Call::Resume => ("Resumed", "resumed the connector"),
            Call::Stop => ("Stopped", "stopped the connector"),
            Call::Restart => {
                done.push(RESTART_ANNOTATION);
                ("Restarted", "restarted the connector and its tasks")
            }
            Call::RestartTask(_) => {
                done.push(RESTART_TASK_ANNOTATION);
                ("TaskRestarted", "restarted a task")
            }
            Call::ResetOffsets => {
                done.push(RESET_OFFSETS_ANNOTATION);
                ("OffsetsReset", "deleted the connector's offsets")
            }
        };
        let note = match call {
            Call::RestartTask(n) => format!("{note} ({n})"),
            _ => note.to_string(),
        };
        ctx.event(kc, CONTROLLER, false, reason, "Apply", note)
            .await;
    }
    remove_annotations(api, &name, &done).await?;
    let drift = if p.drift.is_empty() {
        None
    } else {
        let d = p.drift.join("; ");
        ctx.event(
            kc,
            CONTROLLER,
            true,
            "DriftReverted",
            "Apply",
            format!("the connector was changed outside this resource; reverted: {d}"),
        )
        .await;
        Some(d)
    };

    // What Connect reports now.
    let status = match rest.status(&name).await {
        Ok(s) => s,
        Err(e) => return Ok(unavailable(&e)),
    };
    let offsets = rest.offsets(&name).await.ok().flatten();
    let resync = ctx.settings.connector_resync;
    let mut out = match &status {
        None => Outcome::not_ready(
            "Creating",
            "Connect has not reported the connector yet",
            Duration::from_secs(3),
        ),
        Some(s) => {
            let want = super::plan::state_name(kc.spec.state);
            let failed: Vec<String> = s
                .tasks
                .iter()
                .filter(|t| t.state == "FAILED")
                .map(|t| t.id.to_string())
                .collect();
            if s.connector.state == "FAILED" {
                Outcome::not_ready(
                    "ConnectorFailed",
                    format!(
                        "the connector failed (restart with the {RESTART_ANNOTATION} annotation): {}",
                        s.connector.trace.as_deref().unwrap_or("").lines().next().unwrap_or("")
                    ),
                    Duration::from_secs(10),
                )
            } else if !failed.is_empty() {
                Outcome::not_ready(
                    "TaskFailed",
                    format!(
                        "tasks {} failed (restart with the {RESTART_ANNOTATION} or {RESTART_TASK_ANNOTATION} annotation)",
                        failed.join(", ")
                    ),
                    Duration::from_secs(10),
                )
            } else if s.connector.state != want {
                Outcome::not_ready(
                    "Transitioning",
                    format!("Connect reports {}, spec asks {want}", s.connector.state),
                    Duration::from_secs(3),
                )
            } else if !p.refused.is_empty() {
                Outcome::not_ready(
                    "AnnotationRefused",
                    p.refused.join("; "),
                    Duration::from_secs(10),
                )
            } else {
                Outcome {
                    ready: true,
                    reason: "Ready",
                    message: format!("connector {want} with {} tasks", s.tasks.len()),
                    observed: None,
                    offsets: None,
                    drift: None,
                    requeue: resync,
                }
            }
        }
    };
    if kc.spec.state == ConnectorState::Stopped {
        // A stopped connector has no tasks to wait for.
        out.requeue = out.requeue.min(resync);
    }
    out.observed = status;
    out.offsets = offsets;
    out.drift = drift;
    Ok(out)
}

/// Deletes the connector from Connect (gone KafkaConnect: nothing to delete).
async fn cleanup(kc: &KafkaConnector, ctx: &Context) -> Result<Action, Error> {
    let ns = kc.namespace().ok_or(Error::MissingField("namespace"))?;
    let name = kc.name_any();
    let (connect, rest) = match connect_of(kc, ctx, &ns).await? {
        Ok(c) => c,
        Err(o) => {
            info!(connector = %name, reason = o.reason, "no KafkaConnect to delete the connector from");
            return Ok(Action::await_change());
        }
    };
    if connect.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    rest.delete(&name).await?;
    info!(connector = %name, "deleted the connector");
    ctx.event(
        kc,
        CONTROLLER,
        false,
        "Deleted",
        "Delete",
        format!(
            "deleted connector {name} from KafkaConnect {}",
            connect.name_any()
        ),
    )
    .await;
    Ok(Action::await_change())
}
