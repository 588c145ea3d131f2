//! Pure decisions of the KafkaConnector controller: which REST calls bring Connect to the
//! spec, given what Connect reports and the resource's annotations.

use runnel_crds::config_map::to_properties;
use runnel_crds::connector::{
    ConnectorState, OFFSETS_ANNOTATION, RESET_OFFSETS_ANNOTATION, RESTART_ANNOTATION,
    RESTART_TASK_ANNOTATION,
};
use runnel_crds::KafkaConnector;
use std::collections::BTreeMap;

/// One REST call the controller makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `PUT /connectors/{name}/config` (create or update).
    PutConfig,
    /// `PUT /connectors/{name}/pause`.
    Pause,
    /// `PUT /connectors/{name}/resume`.
    Resume,
    /// `PUT /connectors/{name}/stop` (KIP-875).
    Stop,
    /// `POST /connectors/{name}/restart?includeTasks=true&onlyFailed=...`, then the
    /// restart annotation is removed (`onlyFailed` when its value says so).
    Restart {
        /// Restart only the failed connector and tasks.
        only_failed: bool,
    },
    /// `POST /connectors/{name}/tasks/{n}/restart`, then the annotation is removed.
    RestartTask(i32),
    /// `DELETE /connectors/{name}/offsets`, then the annotation is removed.
    ResetOffsets,
    /// `GET /connectors/{name}/offsets` written to `spec.listOffsets.toConfigMap`, then the
    /// annotation is removed.
    ListOffsets,
    /// `PATCH /connectors/{name}/offsets` with `spec.alterOffsets.fromConfigMap`'s
    /// `offsets.json`, then the annotation is removed.
    AlterOffsets,
}

/// Which annotation a call answers (removed once the call is done).
pub fn annotation_of(call: &Call, annotations: &BTreeMap<String, String>) -> Option<&'static str> {
    match call {
        Call::Restart { .. } => Some(RESTART_ANNOTATION),
        Call::RestartTask(_) => Some(RESTART_TASK_ANNOTATION),
        Call::ListOffsets | Call::AlterOffsets => Some(OFFSETS_ANNOTATION),
        Call::ResetOffsets if annotations.contains_key(OFFSETS_ANNOTATION) => {
            Some(OFFSETS_ANNOTATION)
        }
        Call::ResetOffsets => Some(RESET_OFFSETS_ANNOTATION),
        _ => None,
    }
}

/// The offsets an `alter` sends: the ConfigMap's `offsets.json`, checked to be Connect's
/// shape (`{"offsets": [{"partition": {...}, "offset": {...} or null}, ...]}`, at least one).
pub fn parse_offsets(text: &str) -> Result<serde_json::Value, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("offsets.json is not JSON: {e}"))?;
    let list = v
        .get("offsets")
        .and_then(serde_json::Value::as_array)
        .ok_or("offsets.json needs an \"offsets\" array")?;
    if list.is_empty() {
        return Err(
            "offsets.json lists no offsets (reset them with connector-offsets=reset)".into(),
        );
    }
    for (i, o) in list.iter().enumerate() {
        if !o.get("partition").is_some_and(serde_json::Value::is_object) {
            return Err(format!("offsets[{i}] has no \"partition\" object"));
        }
        match o.get("offset") {
            Some(x) if x.is_object() || x.is_null() => {}
            _ => return Err(format!("offsets[{i}] has no \"offset\" object (or null)")),
        }
    }
    Ok(v)
}

/// What Connect reports about the connector.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Observed {
    /// Its config (`GET /connectors/{name}/config`); `None`: it does not exist.
    pub config: Option<BTreeMap<String, String>>,
    /// Its connector state (`GET /connectors/{name}/status`), e.g. `RUNNING`.
    pub state: Option<String>,
}

/// The decision for one pass.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Plan {
    /// Calls, in order.
    pub calls: Vec<Call>,
    /// Differences Connect had from the spec that nobody changed in the spec: someone
    /// changed the connector through REST. Reported and reverted by `calls`.
    pub drift: Vec<String>,
    /// Annotations that ask for something not possible now, with why (kept, retried).
    pub refused: Vec<String>,
}

/// The config the connector should have: `spec.config` plus `connector.class`,
/// `tasks.max` and `name` from the spec and the resource name.
pub fn desired_config(kc: &KafkaConnector, name: &str) -> Result<BTreeMap<String, String>, String> {
    let mut c = to_properties(&kc.spec.config)?;
    for k in ["connector.class", "tasks.max", "name"] {
        if c.contains_key(k) {
            return Err(format!(
                "config key `{k}` comes from the spec (class, tasksMax, the resource name); remove it from spec.config"
            ));
        }
    }
    c.insert("connector.class".into(), kc.spec.class.clone());
    if let Some(t) = kc.spec.tasks_max {
        c.insert("tasks.max".into(), t.to_string());
    }
    c.insert("name".into(), name.to_string());
    Ok(c)
}

/// Connect's state name for a desired state.
pub fn state_name(s: ConnectorState) -> &'static str {
    match s {
        ConnectorState::Running => "RUNNING",
        ConnectorState::Paused => "PAUSED",
        ConnectorState::Stopped => "STOPPED",
    }
}

/// The differences between two configs, as `key: have -> want` lines.
pub fn config_diff(
    have: &BTreeMap<String, String>,
    want: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, w) in want {
        match have.get(k) {
            Some(h) if h == w => {}
            Some(h) => out.push(format!("{k}={h} in Connect, {w} in spec")),
            None => out.push(format!("{k} missing in Connect, {w} in spec")),
        }
    }
    for (k, h) in have {
        if !want.contains_key(k) {
            out.push(format!("{k}={h} in Connect, not in spec"));
        }
    }
    out
}

/// Decides the calls. `spec_changed`: the generation differs from the status's
/// `observedGeneration` (a difference is then the user's edit, not drift).
pub fn plan(
    desired: &BTreeMap<String, String>,
    state: ConnectorState,
    observed: &Observed,
    annotations: &BTreeMap<String, String>,
    spec_changed: bool,
) -> Plan {
    let mut p = Plan::default();
    let Some(have) = &observed.config else {
        // Created in RUNNING; then moved to the asked state.
        p.calls.push(Call::PutConfig);
        match state {
            ConnectorState::Running => {}
            ConnectorState::Paused => p.calls.push(Call::Pause),
            ConnectorState::Stopped => p.calls.push(Call::Stop),
        }
        return p;
    };
    let diff = config_diff(have, desired);
    if !diff.is_empty() {
        if !spec_changed {
            p.drift.extend(diff);
        }
        p.calls.push(Call::PutConfig);
    }
    let now = observed.state.as_deref().unwrap_or("UNASSIGNED");
    let want = state_name(state);
    // A FAILED or UNASSIGNED connector is in its target state as far as pause/stop go;
    // restarting a failed one is the restart annotation's job.
    let move_call = match (state, now) {
        (ConnectorState::Running, "PAUSED" | "STOPPED") => Some(Call::Resume),
        (ConnectorState::Paused, "RUNNING" | "STOPPED") => Some(Call::Pause),
        (ConnectorState::Stopped, "RUNNING" | "PAUSED" | "FAILED") => Some(Call::Stop),
        _ => None,
    };
    if let Some(c) = move_call.clone() {
        if !spec_changed {
            p.drift
                .push(format!("state {now} in Connect, {want} in spec"));
        }
        p.calls.push(c);
    }
    if let Some(v) = annotations.get(RESTART_ANNOTATION) {
        p.calls.push(Call::Restart {
            only_failed: v.split(',').any(|w| w.trim() == "onlyFailed"),
        });
    }
    if let Some(v) = annotations.get(RESTART_TASK_ANNOTATION) {
        match v.trim().parse::<i32>() {
            Ok(n) if n >= 0 => p.calls.push(Call::RestartTask(n)),
            _ => p.refused.push(format!(
                "{RESTART_TASK_ANNOTATION}={v}: not a task id (a number from 0)"
            )),
        }
    }
    let offsets_op = match annotations.get(OFFSETS_ANNOTATION).map(|v| v.trim()) {
        Some("list") => Some(Call::ListOffsets),
        Some("alter") => Some(Call::AlterOffsets),
        Some("reset") => Some(Call::ResetOffsets),
        Some(other) => {
            p.refused.push(format!(
                "{OFFSETS_ANNOTATION}={other}: expected list, alter or reset"
            ));
            None
        }
        None if annotations.contains_key(RESET_OFFSETS_ANNOTATION) => Some(Call::ResetOffsets),
        None => None,
    };
    match offsets_op {
        None => {}
        // Listing works in any state.
        Some(Call::ListOffsets) => p.calls.push(Call::ListOffsets),
        // Connect alters and resets offsets only of a STOPPED connector (KIP-875).
        Some(call) => {
            let what = if call == Call::AlterOffsets {
                "altered"
            } else {
                "reset"
            };
            if state == ConnectorState::Stopped && now == "STOPPED" && move_call.is_none() {
                p.calls.push(call);
            } else if state != ConnectorState::Stopped {
                p.refused.push(format!(
                    "offsets can only be {what} while the connector is stopped (set spec.state: stopped)"
                ));
            } else {
                p.refused.push(format!(
                    "offsets {what}: waiting for the connector to stop (Connect reports {now})"
                ));
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connector(spec: serde_json::Value) -> KafkaConnector {
        KafkaConnector::new("src", serde_json::from_value(spec).expect("spec"))
    }

    fn want() -> BTreeMap<String, String> {
        let kc = connector(json!({"class": "FileStreamSource", "tasksMax": 1,
                                  "config": {"file": "/in", "topic": "t"}}));
        desired_config(&kc, "src").expect("cfg")
    }

    fn seen(config: Option<BTreeMap<String, String>>, state: &str) -> Observed {
        Observed {
            config,
            state: Some(state.into()),
        }
    }

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn desired_config_adds_class_tasks_and_name_and_refuses_them_in_config() {
        let c = want();
        assert_eq!(c["connector.class"], "FileStreamSource");
        assert_eq!(c["tasks.max"], "1");
        assert_eq!(c["name"], "src");
        assert_eq!(c["file"], "/in");
        let bad = connector(json!({"class": "X", "config": {"connector.class": "Y"}}));
        assert!(desired_config(&bad, "src").is_err());
    }

    #[test]
    fn absent_connector_is_created_then_moved_to_its_state() {
        let none = Observed::default();
        let e = BTreeMap::new();
        assert_eq!(
            plan(&want(), ConnectorState::Running, &none, &e, true).calls,
            [Call::PutConfig]
        );
        assert_eq!(
            plan(&want(), ConnectorState::Paused, &none, &e, true).calls,
            [Call::PutConfig, Call::Pause]
        );
        assert_eq!(
            plan(&want(), ConnectorState::Stopped, &none, &e, true).calls,
            [Call::PutConfig, Call::Stop]
        );
    }

    #[test]
    fn in_sync_needs_nothing() {
        let p = plan(
            &want(),
            ConnectorState::Running,
            &seen(Some(want()), "RUNNING"),
            &BTreeMap::new(),
            false,
        );
        assert_eq!(p, Plan::default());
        // FAILED is not moved by pause/resume: the restart annotation restarts it.
        let p = plan(
            &want(),
            ConnectorState::Running,
            &seen(Some(want()), "FAILED"),
            &BTreeMap::new(),
            false,
        );
        assert!(p.calls.is_empty());
    }

    #[test]
    fn spec_edit_updates_without_drift_and_rest_edit_is_drift() {
        let mut have = want();
        have.insert("topic".into(), "other".into());
        let p = plan(
            &want(),
            ConnectorState::Running,
            &seen(Some(have.clone()), "RUNNING"),
            &BTreeMap::new(),
            true,
        );
        assert_eq!(p.calls, [Call::PutConfig]);
        assert!(p.drift.is_empty());
        let p = plan(
            &want(),
            ConnectorState::Running,
            &seen(Some(have), "RUNNING"),
            &BTreeMap::new(),
            false,
        );
        assert_eq!(p.calls, [Call::PutConfig]);
        assert_eq!(p.drift, ["topic=other in Connect, t in spec"]);
        // A paused-through-REST connector is drift too, and resumed.
        let p = plan(
            &want(),
            ConnectorState::Running,
            &seen(Some(want()), "PAUSED"),
            &BTreeMap::new(),
            false,
        );
        assert_eq!(p.calls, [Call::Resume]);
        assert_eq!(p.drift, ["state PAUSED in Connect, RUNNING in spec"]);
    }

    #[test]
    fn state_moves() {
        let e = BTreeMap::new();
        let cases = [
            (ConnectorState::Paused, "RUNNING", Some(Call::Pause)),
            (ConnectorState::Stopped, "RUNNING", Some(Call::Stop)),
            (ConnectorState::Stopped, "PAUSED", Some(Call::Stop)),
            (ConnectorState::Running, "STOPPED", Some(Call::Resume)),
            (ConnectorState::Paused, "STOPPED", Some(Call::Pause)),
            (ConnectorState::Stopped, "STOPPED", None),
            (ConnectorState::Paused, "PAUSED", None),
        ];
        for (state, now, call) in cases {
            let p = plan(&want(), state, &seen(Some(want()), now), &e, true);
            assert_eq!(
                p.calls,
                call.into_iter().collect::<Vec<_>>(),
                "{state:?} from {now}"
            );
        }
    }

    #[test]
    fn restart_annotations() {
        let o = seen(Some(want()), "RUNNING");
        let p = plan(
            &want(),
            ConnectorState::Running,
            &o,
            &ann(&[(RESTART_ANNOTATION, "")]),
            false,
        );
        assert_eq!(p.calls, [Call::Restart { only_failed: false }]);
        let p = plan(
            &want(),
            ConnectorState::Running,
            &o,
            &ann(&[(RESTART_ANNOTATION, "includeTasks,onlyFailed")]),
            false,
        );
        assert_eq!(p.calls, [Call::Restart { only_failed: true }]);
        let p = plan(
            &want(),
            ConnectorState::Running,
            &o,
            &ann(&[(RESTART_TASK_ANNOTATION, "2")]),
            false,
        );
        assert_eq!(p.calls, [Call::RestartTask(2)]);
        let p = plan(
            &want(),
            ConnectorState::Running,
            &o,
            &ann(&[(RESTART_TASK_ANNOTATION, "x")]),
            false,
        );
        assert!(p.calls.is_empty());
        assert_eq!(p.refused.len(), 1);
    }

    #[test]
    fn offsets_reset_only_once_stopped() {
        let a = ann(&[(RESET_OFFSETS_ANNOTATION, "true")]);
        let p = plan(
            &want(),
            ConnectorState::Stopped,
            &seen(Some(want()), "STOPPED"),
            &a,
            false,
        );
        assert_eq!(p.calls, [Call::ResetOffsets]);
        let p = plan(
            &want(),
            ConnectorState::Running,
            &seen(Some(want()), "RUNNING"),
            &a,
            false,
        );
        assert!(p.calls.is_empty());
        assert!(p.refused[0].contains("only be reset while the connector is stopped"));
        assert_eq!(
            annotation_of(&Call::ResetOffsets, &a),
            Some(RESET_OFFSETS_ANNOTATION)
        );
        // Asked to stop in the same pass: stop first, reset on a later pass.
        let p = plan(
            &want(),
            ConnectorState::Stopped,
            &seen(Some(want()), "RUNNING"),
            &a,
            true,
        );
        assert_eq!(p.calls, [Call::Stop]);
        assert!(p.refused[0].contains("waiting for the connector to stop"));
    }

    #[test]
    fn offsets_annotation_lists_in_any_state_and_alters_or_resets_only_once_stopped() {
        let stopped = seen(Some(want()), "STOPPED");
        let running = seen(Some(want()), "RUNNING");
        for (v, call) in [
            ("list", Call::ListOffsets),
            ("alter", Call::AlterOffsets),
            ("reset", Call::ResetOffsets),
        ] {
            let a = ann(&[(OFFSETS_ANNOTATION, v)]);
            let p = plan(&want(), ConnectorState::Stopped, &stopped, &a, false);
            assert_eq!(p.calls, std::slice::from_ref(&call), "{v}");
            assert_eq!(annotation_of(&call, &a), Some(OFFSETS_ANNOTATION));
            let p = plan(&want(), ConnectorState::Running, &running, &a, false);
            if call == Call::ListOffsets {
                assert_eq!(p.calls, [Call::ListOffsets]);
            } else {
                assert!(p.calls.is_empty(), "{v}: {p:?}");
                assert!(
                    p.refused[0].contains("while the connector is stopped"),
                    "{p:?}"
                );
            }
        }
        // Stop asked in the same pass: stop first, alter on a later pass.
        let a = ann(&[(OFFSETS_ANNOTATION, "alter")]);
        let p = plan(&want(), ConnectorState::Stopped, &running, &a, true);
        assert_eq!(p.calls, [Call::Stop]);
        assert!(p.refused[0].contains("waiting for the connector to stop"));
        let p = plan(
            &want(),
            ConnectorState::Stopped,
            &stopped,
            &ann(&[(OFFSETS_ANNOTATION, "rewind")]),
            false,
        );
        assert!(p.calls.is_empty());
        assert!(p.refused[0].contains("expected list, alter or reset"));
    }

    #[test]
    fn offsets_json_must_be_connects_shape() {
        let ok = r#"{"offsets": [{"partition": {"filename": "/in"}, "offset": {"position": 12}},
                                 {"partition": {"kafka_topic": "t", "kafka_partition": 0}, "offset": null}]}"#;
        assert_eq!(
            parse_offsets(ok).expect("ok")["offsets"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        for bad in [
            "not json",
            "{}",
            r#"{"offsets": []}"#,
            r#"{"offsets": [{"offset": {"position": 1}}]}"#,
            r#"{"offsets": [{"partition": {"f": 1}, "offset": 3}]}"#,
        ] {
            assert!(parse_offsets(bad).is_err(), "{bad}");
        }
    }
}
