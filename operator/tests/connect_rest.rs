//! The KafkaConnector controller's REST client and decisions against a real Apache Kafka
//! Connect 4.1.1 worker (distributed mode). Opt-in: `RUNNEL_CONNECT_URL` names the worker,
//! `RUNNEL_CONNECT_DIR` a directory both this test and the worker can read and write.
//! `tests/compat/test_connect_rest.py` starts a worker on Runnel (or on Apache Kafka with
//! `COMPAT_APACHE_KAFKA=1`) and runs this test.
//!
//! One flow: invalid input refused by validate; FileStreamSource -> topic ->
//! FileStreamSink moves 10,000 lines exactly once; pause/resume; drift reverted; config
//! change; restart; stop + offsets reset (the source re-reads the file); stop + offsets
//! altered with `PATCH /offsets` (the source re-reads from the line named); delete. A
//! second test: a sink task that fails is restarted automatically by the auto-restart
//! decision, with the back-off, until it runs.

use runnel_crds::connector::{
    AutoRestart, ConnectorState, OFFSETS_ANNOTATION, RESET_OFFSETS_ANNOTATION, RESTART_ANNOTATION,
};
use runnel_crds::KafkaConnector;
use runnel_operator::connector::auto_restart::{self, Decision, History};
use runnel_operator::connector::plan::{desired_config, parse_offsets, plan, Call, Observed, Plan};
use runnel_operator::connector::rest::{run_call, ConnectRest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LINES: usize = 10_000;

fn env() -> Option<(String, PathBuf)> {
    let url = std::env::var("RUNNEL_CONNECT_URL").ok()?;
    let dir = std::env::var("RUNNEL_CONNECT_DIR").ok()?;
    Some((url, PathBuf::from(dir)))
}

fn connector(name: &str, spec: serde_json::Value) -> KafkaConnector {
    KafkaConnector::new(name, serde_json::from_value(spec).expect("spec"))
}

/// One reconcile pass's REST part (as the controller makes it), returning the plan.
async fn converge(
    rest: &ConnectRest,
    kc: &KafkaConnector,
    annotations: &[(&str, &str)],
    spec_changed: bool,
) -> Plan {
    converge_with(rest, kc, annotations, spec_changed, None).await
}

/// [`converge`], with `offsets` as the `offsets.json` of the alter ConfigMap.
async fn converge_with(
    rest: &ConnectRest,
    kc: &KafkaConnector,
    annotations: &[(&str, &str)],
    spec_changed: bool,
    offsets: Option<&str>,
) -> Plan {
    let name = kc.metadata.name.clone().expect("name");
    let desired = desired_config(kc, &name).expect("desired");
    let observed = Observed {
        config: rest.config(&name).await.expect("config"),
        state: rest
            .status(&name)
            .await
            .expect("status")
            .map(|s| s.connector.state),
    };
    let ann: BTreeMap<String, String> = annotations
        .iter()
        .map(|(a, v)| (a.to_string(), v.to_string()))
        .collect();
    let p = plan(&desired, kc.spec.state, &observed, &ann, spec_changed);
    if p.calls.contains(&Call::PutConfig) {
        let v = rest
            .validate(&kc.spec.class, &desired)
            .await
            .expect("validate");
        assert!(v.errors.is_empty(), "{:?}", v.errors);
    }
    for c in &p.calls {
        if *c == Call::AlterOffsets {
            // The controller reads this from the ConfigMap's offsets.json.
            let offsets = parse_offsets(offsets.expect("offsets.json")).expect("offsets.json");
            rest.alter_offsets(&name, &offsets).await.expect("alter");
            continue;
        }
        run_call(rest, &name, &desired, c).await.expect("call");
    }
    p
}

/// Waits until `GET /offsets` lists no partition after a `DELETE /offsets`. Connect lists
/// a regular source connector's partitions from the worker-global offset store's memory,
/// which its background consumer updates only when it reads the tombstones back, while
/// `DELETE` answers once they are acknowledged (`ConnectorOffsetBackingStore`:
/// `connectorPartitions` reads the worker store's map, `start()` does not read to the end;
/// `get()` does). So a `GET` at once may still list a reset partition, always with a null
/// offset; that is asserted, then the empty list awaited.
async fn wait_offsets_reset(rest: &ConnectRest, name: &str) {
    let t0 = Instant::now();
    loop {
        let offsets = rest.offsets(name).await.expect("offsets").expect("exists");
        let listed = offsets["offsets"].as_array().cloned().unwrap_or_default();
        assert!(
            listed.iter().all(|o| o["offset"].is_null()),
            "an offset survived DELETE /offsets: {offsets}"
        );
        if listed.is_empty() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "reset partitions still listed: {offsets}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_state(rest: &ConnectRest, name: &str, want: &str) {
    let t0 = Instant::now();
    loop {
        let s = rest.status(name).await.expect("status");
        if let Some(s) = &s {
            if s.connector.state == want
                && (want != "RUNNING"
                    || (!s.tasks.is_empty() && s.tasks.iter().all(|t| t.state == "RUNNING")))
            {
                return;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{name} never {want}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

async fn wait_lines(p: &Path, n: usize) -> Vec<String> {
    let t0 = Instant::now();
    loop {
        let l = lines(p);
        if l.len() >= n {
            // Settle: nothing more should arrive.
            tokio::time::sleep(Duration::from_secs(3)).await;
            return lines(p);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{} has {} of {n} lines",
            p.display(),
            l.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn append(p: &Path, from: usize, to: usize) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .expect("open");
    for i in from..to {
        writeln!(f, "line-{i:06}").expect("write");
    }
}

fn expected(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("line-{i:06}")).collect()
}

#[tokio::test]
async fn connector_lifecycle_against_a_real_worker() {
    let Some((url, dir)) = env() else {
        eprintln!("RUNNEL_CONNECT_URL / RUNNEL_CONNECT_DIR not set: skipped");
        return;
    };
    let rest = ConnectRest::new(&url);
    let t0 = Instant::now();
    while rest.version().await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "worker REST never answered"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let plugins = rest.plugins().await.expect("plugins");
    assert!(
        plugins
            .iter()
            .any(|p| p.class.ends_with("FileStreamSourceConnector")),
        "{plugins:?}"
    );

    let input = dir.join("in.txt");
    let output = dir.join("out.txt");
    let topic = format!("connect-lines-{}", std::process::id());
    append(&input, 0, LINES);

    // Bad input: Connect's validate refuses it, and nothing is created.
    let bad = connector(
        "bad",
        serde_json::json!({
        "class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "tasksMax": 1,
        "config": {"file": input.to_str(), "batch.size": "not-a-number"}}),
    );
    let v = rest
        .validate(&bad.spec.class, &desired_config(&bad, "bad").expect("cfg"))
        .await
        .expect("validate");
    assert!(
        v.errors.iter().any(|e| e.starts_with("batch.size")),
        "{:?}",
        v.errors
    );
    let unknown = rest
        .validate(
            "com.example.NoSuchConnector",
            &BTreeMap::from([(
                "connector.class".into(),
                "com.example.NoSuchConnector".into(),
            )]),
        )
        .await;
    // Connect 4.1.1 answers 500 with a BadRequestException: still a refusal.
    assert!(matches!(&unknown, Err(e) if e.is_refusal()), "{unknown:?}");
    assert_eq!(rest.config("bad").await.expect("config"), None);

    let mut src = connector(
        "src",
        serde_json::json!({
        "class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "tasksMax": 1,
        "config": {"file": input.to_str(), "topic": topic}}),
    );
    let sink = connector(
        "sink",
        serde_json::json!({
        "class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "tasksMax": 1,
        "config": {"file": output.to_str(), "topics": topic}}),
    );
    assert_eq!(
        converge(&rest, &src, &[], true).await.calls,
        [Call::PutConfig]
    );
    assert_eq!(
        converge(&rest, &sink, &[], true).await.calls,
        [Call::PutConfig]
    );
    wait_state(&rest, "src", "RUNNING").await;
    wait_state(&rest, "sink", "RUNNING").await;
    assert_eq!(
        wait_lines(&output, LINES).await,
        expected(0, LINES),
        "all lines once, in order"
    );
    // In sync: no calls.
    assert_eq!(converge(&rest, &src, &[], false).await, Plan::default());

    // Pause: new lines are not copied until resume.
    src.spec.state = ConnectorState::Paused;
    assert_eq!(converge(&rest, &src, &[], true).await.calls, [Call::Pause]);
    wait_state(&rest, "src", "PAUSED").await;
    append(&input, LINES, LINES + 100);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(lines(&output).len(), LINES, "paused source copied lines");
    src.spec.state = ConnectorState::Running;
    assert_eq!(converge(&rest, &src, &[], true).await.calls, [Call::Resume]);
    wait_state(&rest, "src", "RUNNING").await;
    assert_eq!(
        wait_lines(&output, LINES + 100).await,
        expected(0, LINES + 100)
    );

    // Drift: a config changed through REST is reported and reverted.
    let mut changed = rest.config("src").await.expect("config").expect("exists");
    changed.insert("batch.size".into(), "7".into());
    rest.put_config("src", &changed).await.expect("put");
    let p = converge(&rest, &src, &[], false).await;
    assert_eq!(p.calls, [Call::PutConfig]);
    assert_eq!(p.drift, ["batch.size=7 in Connect, not in spec"]);
    assert_eq!(
        rest.config("src")
            .await
            .expect("config")
            .expect("exists")
            .get("batch.size"),
        None
    );
    // And a state changed through REST.
    rest.set_state("src", "pause").await.expect("pause");
    wait_state(&rest, "src", "PAUSED").await;
    let p = converge(&rest, &src, &[], false).await;
    assert_eq!(p.calls, [Call::Resume]);
    assert_eq!(p.drift, ["state PAUSED in Connect, RUNNING in spec"]);
    wait_state(&rest, "src", "RUNNING").await;

    // A spec config change is applied, not called drift.
    src.spec
        .config
        .insert("batch.size".into(), serde_json::json!(500));
    let p = converge(&rest, &src, &[], true).await;
    assert_eq!(p.calls, [Call::PutConfig]);
    assert!(p.drift.is_empty());
    assert_eq!(
        rest.config("src").await.expect("c").expect("e")["batch.size"],
        "500"
    );

    // Restart annotation.
    let p = converge(&rest, &src, &[(RESTART_ANNOTATION, "true")], false).await;
    assert_eq!(p.calls, [Call::Restart { only_failed: false }]);
    wait_state(&rest, "src", "RUNNING").await;
    append(&input, LINES + 100, LINES + 200);
    assert_eq!(
        wait_lines(&output, LINES + 200).await,
        expected(0, LINES + 200),
        "nothing lost or doubled by the restart"
    );

    // Offsets reset: refused while running, done once stopped; the source then re-reads.
    let p = converge(&rest, &src, &[(RESET_OFFSETS_ANNOTATION, "true")], false).await;
    assert!(p.calls.is_empty() && p.refused.len() == 1, "{p:?}");
    src.spec.state = ConnectorState::Stopped;
    assert_eq!(converge(&rest, &src, &[], true).await.calls, [Call::Stop]);
    wait_state(&rest, "src", "STOPPED").await;
    let offsets = rest.offsets("src").await.expect("offsets").expect("exists");
    assert!(offsets.to_string().contains("position"), "{offsets}");
    assert_eq!(
        converge(&rest, &src, &[(RESET_OFFSETS_ANNOTATION, "true")], false)
            .await
            .calls,
        [Call::ResetOffsets]
    );
    wait_offsets_reset(&rest, "src").await;
    src.spec.state = ConnectorState::Running;
    assert_eq!(converge(&rest, &src, &[], true).await.calls, [Call::Resume]);
    let mut twice = expected(0, LINES + 200);
    twice.extend(expected(0, LINES + 200));
    assert_eq!(
        wait_lines(&output, 2 * (LINES + 200)).await,
        twice,
        "the reset source read the file again"
    );

    // Offsets altered (KIP-875 PATCH): refused while running; once stopped, the source's
    // file position is set to the start of line 5,000, so it re-reads from there.
    let position = 5_000 * "line-000000\n".len();
    let offsets_json = serde_json::json!({"offsets": [{
        "partition": {"filename": input.to_str()},
        "offset": {"position": position}}]})
    .to_string();
    let mut alt = src.clone();
    let p = converge(&rest, &alt, &[(OFFSETS_ANNOTATION, "alter")], false).await;
    assert!(p.calls.is_empty() && p.refused.len() == 1, "{p:?}");
    // Connect itself refuses a PATCH of a running connector.
    let refused = rest
        .alter_offsets("src", &parse_offsets(&offsets_json).expect("json"))
        .await;
    assert!(
        matches!(&refused, Err(e) if e.status() == Some(400)),
        "{refused:?}"
    );
    alt.spec.state = ConnectorState::Stopped;
    assert_eq!(converge(&rest, &alt, &[], true).await.calls, [Call::Stop]);
    wait_state(&rest, "src", "STOPPED").await;
    let p = converge_with(
        &rest,
        &alt,
        &[(OFFSETS_ANNOTATION, "alter")],
        false,
        Some(&offsets_json),
    )
    .await;
    assert_eq!(p.calls, [Call::AlterOffsets]);
    let now = rest.offsets("src").await.expect("offsets").expect("exists");
    assert_eq!(
        now["offsets"][0]["offset"]["position"],
        serde_json::json!(position),
        "{now}"
    );
    alt.spec.state = ConnectorState::Running;
    let p = converge(&rest, &alt, &[], true).await;
    assert_eq!(p.calls, [Call::Resume]);
    let mut want = twice.clone();
    want.extend(expected(5_000, LINES + 200));
    assert_eq!(
        wait_lines(&output, want.len()).await,
        want,
        "the altered source re-read from line 5,000"
    );

    // Delete.
    for n in ["src", "sink"] {
        rest.delete(n).await.expect("delete");
        // Deletion goes through the config topic: the status follows shortly.
        let t0 = Instant::now();
        while rest.config(n).await.expect("config").is_some() {
            assert!(t0.elapsed() < Duration::from_secs(30), "{n} never deleted");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    rest.delete("src")
        .await
        .expect("deleting an absent connector is fine");
}

#[tokio::test]
async fn failed_task_is_restarted_automatically_with_backoff() {
    let Some((url, dir)) = env() else {
        eprintln!("RUNNEL_CONNECT_URL / RUNNEL_CONNECT_DIR not set: skipped");
        return;
    };
    let rest = ConnectRest::new(&url);
    let t0 = Instant::now();
    while !rest.healthy().await.unwrap_or(false) {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "worker never healthy (GET /health, KIP-1017)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A sink writing into a directory that does not exist yet: its task FAILS at start.
    let later = dir.join("later");
    let topic = format!("connect-auto-{}", std::process::id());
    let sink = connector(
        "auto-sink",
        serde_json::json!({
        "class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "tasksMax": 1,
        "config": {"file": later.join("out.txt").to_str(), "topics": topic},
        "autoRestart": {"enabled": true, "maxRestarts": 3}}),
    );
    assert_eq!(
        converge(&rest, &sink, &[], true).await.calls,
        [Call::PutConfig]
    );
    let failed = |s: &runnel_operator::connector::rest::ConnectorStatus| {
        s.connector.state == "FAILED" || s.tasks.iter().any(|t| t.state == "FAILED")
    };
    let wait_failed = || async {
        let t0 = Instant::now();
        loop {
            if let Some(s) = rest.status("auto-sink").await.expect("status") {
                if failed(&s) {
                    return s;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the task never failed"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let s = wait_failed().await;
    assert!(
        s.tasks[0].trace.as_deref().unwrap_or("").contains("later"),
        "{s:?}"
    );
    // The controller's decision, pass by pass, with a 1 s back-off unit.
    let cfg: AutoRestart = sink.spec.auto_restart.clone().expect("autoRestart");
    let mut history = History::default();
    let unit = 1;
    let start = jiff_now();
    let d = auto_restart::decide(Some(&cfg), true, true, history, start, unit);
    let Decision::RestartNow { history: h, next } = d else {
        panic!("first restart at once: {d:?}")
    };
    assert_eq!((h.count, next), (1, Some(start + 2)));
    rest.restart("auto-sink", true).await.expect("restart");
    history = h;
    // Still failing (the directory is missing): the next restart waits for the back-off.
    wait_failed().await;
    let now = jiff_now();
    if now < start + 2 {
        assert_eq!(
            auto_restart::decide(Some(&cfg), true, true, history, now, unit),
            Decision::Wait { at: start + 2 }
        );
    }
    // Fix the cause; the next due restart brings the task up.
    std::fs::create_dir_all(&later).expect("mkdir");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let d = auto_restart::decide(Some(&cfg), true, true, history, jiff_now(), unit);
    let Decision::RestartNow { history: h, .. } = d else {
        panic!("second restart due: {d:?}")
    };
    assert_eq!(h.count, 2);
    rest.restart("auto-sink", true).await.expect("restart");
    wait_state(&rest, "auto-sink", "RUNNING").await;
    // Running through the back-off of the last restart (6 units): the count resets.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let s = rest
        .status("auto-sink")
        .await
        .expect("status")
        .expect("exists");
    assert!(!failed(&s), "{s:?}");
    assert_eq!(
        auto_restart::decide(Some(&cfg), true, false, h, jiff_now(), unit),
        Decision::Healthy {
            history: History::default()
        }
    );
    rest.delete("auto-sink").await.expect("delete");
}

fn jiff_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
