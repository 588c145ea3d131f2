//! `reconcile` and `error_policy` of the KafkaConnector controller.

use super::auto_restart::{self, Decision, History};
use super::plan::{annotation_of, desired_config, parse_offsets, plan, Call, Observed};
use super::rest::{ConnectRest, ConnectorStatus, RestError};
use super::{CONTROLLER, FINALIZER};
use crate::connect::render::ConnectNames;
use crate::context::{apply_status, Context};
use crate::Error;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::Resource;
use kube::ResourceExt;
use runnel_crds::condition::{condition, find, types};
use runnel_crds::connector::{
    AutoRestartStatus, ConnectorState, TaskStatus, OFFSETS_KEY, RESTART_ANNOTATION,
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
    /// `None`: keep the previous automatic-restart status.
    auto_restart: Option<Option<AutoRestartStatus>>,
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
            auto_restart: None,
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
    if let Some(ns) = kc.namespace() {
        let tasks: Vec<&str> = obs
            .map(|o| o.tasks.iter().map(|t| t.state.as_str()).collect())
            .unwrap_or_default();
        ctx.metrics.connector(
            &ns,
            &kc.name_any(),
            obs.map(|o| o.connector.state.as_str()),
            &tasks,
        );
    }
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
        auto_restart: outcome.auto_restart.unwrap_or(prev.auto_restart),
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
        let result = match call {
            Call::ListOffsets => list_offsets(kc, ctx, &rest, &ns, &name).await?,
            Call::AlterOffsets => alter_offsets(kc, ctx, &rest, &ns, &name).await?,
            _ => super::rest::run_call(&rest, &name, &desired, call)
                .await
                .map_err(Step::Rest),
        };
        match result {
            Ok(()) => {}
            Err(Step::Refused(m)) => {
                warn!(connector = %name, ?call, message = %m, "offsets request refused");
                return Ok(Outcome::not_ready(
                    "OffsetsRefused",
                    m,
                    Duration::from_secs(30),
                ));
            }
            Err(Step::Rest(e)) if e.status().is_none() => return Ok(unavailable(&e)),
            Err(Step::Rest(e)) => {
                let m = format!("{call:?} failed: {e}");
                warn!(connector = %name, error = %e, ?call, "Connect refused a call");
                return Ok(Outcome::not_ready(
                    "ConnectRejected",
                    m,
                    Duration::from_secs(30),
                ));
            }
        }
        info!(connector = %name, ?call, "done");
        if let Some(a) = annotation_of(call, &annotations) {
            done.push(a);
        }
        let (reason, note) = match call {
            Call::PutConfig if observed.config.is_none() => ("Created", "created the connector"),
            Call::PutConfig => ("ConfigUpdated", "updated the connector's config"),
            Call::Pause => ("Paused", "paused the connector"),
            Call::Resume => ("Resumed", "resumed the connector"),
            Call::Stop => ("Stopped", "stopped the connector"),
            Call::Restart { only_failed: false } => {
                ("Restarted", "restarted the connector and its tasks")
            }
            Call::Restart { only_failed: true } => (
                "Restarted",
                "restarted the connector's failed instances (connector and tasks)",
            ),
            Call::RestartTask(_) => ("TaskRestarted", "restarted a task"),
            Call::ResetOffsets => ("OffsetsReset", "deleted the connector's offsets"),
            Call::ListOffsets => (
                "OffsetsListed",
                "wrote the connector's offsets to spec.listOffsets.toConfigMap",
            ),
            Call::AlterOffsets => (
                "OffsetsAltered",
                "set the connector's offsets from spec.alterOffsets.fromConfigMap",
            ),
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
    let mut status = match rest.status(&name).await {
        Ok(s) => s,
        Err(e) => return Ok(unavailable(&e)),
    };
    let manual_restart = p.calls.iter().any(|c| matches!(c, Call::Restart { .. }));
    let AutoPass {
        status: auto_status,
        note: auto_note,
        restarted,
    } = match &status {
        Some(s) if !manual_restart => auto_restart_pass(kc, ctx, &rest, &name, s).await,
        _ => AutoPass::default(),
    };
    if restarted {
        // Restarted just now: report what Connect says after it.
        if let Ok(s) = rest.status(&name).await {
            status = s;
        }
    }
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
            let restart_hint = auto_note
                .clone()
                .unwrap_or_else(|| format!("restart with the {RESTART_ANNOTATION} annotation"));
            if s.connector.state == "FAILED" {
                Outcome::not_ready(
                    "ConnectorFailed",
                    format!(
                        "the connector failed ({restart_hint}): {}",
                        s.connector
                            .trace
                            .as_deref()
                            .unwrap_or("")
                            .lines()
                            .next()
                            .unwrap_or("")
                    ),
                    Duration::from_secs(10),
                )
            } else if !failed.is_empty() {
                Outcome::not_ready(
                    "TaskFailed",
                    format!(
                        "tasks {} failed ({restart_hint}; or the {RESTART_TASK_ANNOTATION} annotation)",
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
                    auto_restart: None,
                    requeue: resync,
                }
            }
        }
    };
    if kc.spec.state == ConnectorState::Stopped {
        // A stopped connector has no tasks to wait for.
        out.requeue = out.requeue.min(resync);
    }
    if let Some(Some(AutoRestartStatus {
        next_restart_time: Some(next),
        ..
    })) = &auto_status
    {
        // Come back when the next automatic restart is due.
        if let Ok(t) = next.parse::<Timestamp>() {
            let wait = (t.as_second() - Timestamp::now().as_second()).max(1) as u64;
            out.requeue = out.requeue.min(Duration::from_secs(wait));
        }
    }
    out.observed = status;
    out.offsets = offsets;
    out.drift = drift;
    out.auto_restart = auto_status;
    Ok(out)
}

/// What the automatic-restart step did.
#[derive(Default)]
struct AutoPass {
    /// The status to record (`None`: keep the previous one).
    status: Option<Option<AutoRestartStatus>>,
    /// A note for the Ready message.
    note: Option<String>,
    /// A restart was made now.
    restarted: bool,
}

fn rfc3339(secs: i64) -> Option<String> {
    Timestamp::from_second(secs).ok().map(|t| t.to_string())
}

/// The automatic restart of a FAILED connector or task (`spec.autoRestart`): decided by
/// `auto_restart::decide`, made here.
async fn auto_restart_pass(
    kc: &KafkaConnector,
    ctx: &Context,
    rest: &ConnectRest,
    name: &str,
    s: &ConnectorStatus,
) -> AutoPass {
    let prev = kc.status.as_ref().and_then(|s| s.auto_restart.clone());
    let history = prev
        .as_ref()
        .map(|a| History {
            count: a.count,
            last: a
                .last_restart_time
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map(|t| t.as_second()),
        })
        .unwrap_or_default();
    let failed = s.connector.state == "FAILED" || s.tasks.iter().any(|t| t.state == "FAILED");
    let now = Timestamp::now().as_second();
    let unit = ctx.settings.connector_restart_backoff.as_secs().max(1) as i64;
    let decision = auto_restart::decide(
        kc.spec.auto_restart.as_ref(),
        kc.spec.state == ConnectorState::Running,
        failed,
        history,
        now,
        unit,
    );
    let record = |h: History, next: Option<i64>| AutoRestartStatus {
        count: h.count,
        last_restart_time: h.last.and_then(rfc3339),
        next_restart_time: next.and_then(rfc3339),
    };
    match decision {
        Decision::Off => AutoPass {
            status: Some(None),
            ..AutoPass::default()
        },
        Decision::Healthy { history } if history == History::default() => AutoPass {
            status: Some(None),
            ..AutoPass::default()
        },
        Decision::Healthy { .. } => AutoPass::default(),
        Decision::Wait { at } => {
            let a = record(history, Some(at));
            let note = format!(
                "automatic restart {} due at {}",
                history.count + 1,
                a.next_restart_time.clone().unwrap_or_default()
            );
            AutoPass {
                status: Some(Some(a)),
                note: Some(note),
                restarted: false,
            }
        }
        Decision::GaveUp { count } => {
            if prev.as_ref().is_some_and(|a| a.next_restart_time.is_some()) || prev.is_none() {
                ctx.event(
                    kc,
                    CONTROLLER,
                    true,
                    "AutoRestartGaveUp",
                    "Restart",
                    format!("still FAILED after {count} automatic restarts (spec.autoRestart.maxRestarts); restart with the {RESTART_ANNOTATION} annotation"),
                )
                .await;
            }
            AutoPass {
                status: Some(Some(record(history, None))),
                note: Some(format!(
                    "gave up after {count} automatic restarts; restart with the {RESTART_ANNOTATION} annotation"
                )),
                restarted: false,
            }
        }
        Decision::RestartNow { history: h, next } => match rest.restart(name, true).await {
            Ok(()) => {
                info!(connector = %name, count = h.count, "automatic restart");
                ctx.event(
                    kc,
                    CONTROLLER,
                    true,
                    "AutoRestarted",
                    "Restart",
                    format!(
                        "restarted the failed connector/tasks automatically (restart {}{})",
                        h.count,
                        next.and_then(rfc3339)
                            .map(|t| format!("; the next, if still FAILED, at {t}"))
                            .unwrap_or_else(|| "; the last one maxRestarts allows".into())
                    ),
                )
                .await;
                let a = record(h, next);
                let note = format!("automatic restart {} made", h.count);
                AutoPass {
                    status: Some(Some(a)),
                    note: Some(note),
                    restarted: true,
                }
            }
            Err(e) => {
                warn!(connector = %name, error = %e, "automatic restart failed");
                AutoPass {
                    status: None,
                    note: Some(format!("automatic restart failed: {e}")),
                    restarted: false,
                }
            }
        },
    }
}

/// Why an offsets call could not be made.
enum Step {
    /// Connect answered with an error (or not at all).
    Rest(RestError),
    /// The resource asks for something impossible (no ConfigMap named, bad offsets.json).
    Refused(String),
}

/// `connector-offsets=list`: `GET /offsets` written to `spec.listOffsets.toConfigMap`'s
/// `offsets.json` (server-side apply: other keys of an existing ConfigMap are kept).
async fn list_offsets(
    kc: &KafkaConnector,
    ctx: &Context,
    rest: &ConnectRest,
    ns: &str,
    name: &str,
) -> Result<Result<(), Step>, Error> {
    let Some(cm) = kc
        .spec
        .list_offsets
        .as_ref()
        .map(|l| l.to_config_map.name.clone())
    else {
        return Ok(Err(Step::Refused(
            "connector-offsets=list needs spec.listOffsets.toConfigMap.name".into(),
        )));
    };
    let offsets = match rest.offsets(name).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Ok(Err(Step::Rest(RestError::Status {
                status: 404,
                message: format!("no connector {name}"),
            })))
        }
        Err(e) => return Ok(Err(Step::Rest(e))),
    };
    let text = serde_json::to_string_pretty(&offsets).unwrap_or_else(|_| offsets.to_string());
    let mut meta = serde_json::json!({"name": cm, "namespace": ns});
    if let Some(o) = kc.owner_ref(&()) {
        meta["ownerReferences"] = serde_json::json!([o]);
    }
    let obj = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
        "data": {OFFSETS_KEY: text},
    });
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let pp = PatchParams::apply(crate::cluster::render::names::FIELD_MANAGER).force();
    api.patch(&cm, &pp, &Patch::Apply(&obj)).await?;
    Ok(Ok(()))
}

/// `connector-offsets=alter`: `PATCH /offsets` with `spec.alterOffsets.fromConfigMap`'s
/// `offsets.json`.
async fn alter_offsets(
    kc: &KafkaConnector,
    ctx: &Context,
    rest: &ConnectRest,
    ns: &str,
    name: &str,
) -> Result<Result<(), Step>, Error> {
    let Some(cm) = kc
        .spec
        .alter_offsets
        .as_ref()
        .map(|a| a.from_config_map.name.clone())
    else {
        return Ok(Err(Step::Refused(
            "connector-offsets=alter needs spec.alterOffsets.fromConfigMap.name".into(),
        )));
    };
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let Some(map) = api.get_opt(&cm).await? else {
        return Ok(Err(Step::Refused(format!(
            "ConfigMap {ns}/{cm} does not exist"
        ))));
    };
    let Some(text) = map.data.as_ref().and_then(|d| d.get(OFFSETS_KEY)) else {
        return Ok(Err(Step::Refused(format!(
            "ConfigMap {ns}/{cm} has no key {OFFSETS_KEY}"
        ))));
    };
    let offsets = match parse_offsets(text) {
        Ok(v) => v,
        Err(m) => return Ok(Err(Step::Refused(format!("ConfigMap {ns}/{cm}: {m}")))),
    };
    match rest.alter_offsets(name, &offsets).await {
        Ok(msg) => {
            info!(connector = %name, configmap = %cm, %msg, "offsets altered");
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(Step::Rest(e))),
    }
}

/// Deletes the connector from Connect (gone KafkaConnect: nothing to delete).
async fn cleanup(kc: &KafkaConnector, ctx: &Context) -> Result<Action, Error> {
    let ns = kc.namespace().ok_or(Error::MissingField("namespace"))?;
    let name = kc.name_any();
    ctx.metrics.forget_connector(&ns, &name);
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
