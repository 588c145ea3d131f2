//! A broker for the integration tests.
//!
//! By default every test starts its own `runnel-broker` process on free
//! ports with a fresh data dir, and kills it when done. The binary is
//! `$RUNNEL_BROKER_BIN` if set; otherwise the tests first run
//! `cargo build --release --bin runnel-broker` (once per test binary) and use
//! `$CARGO_TARGET_DIR/release/runnel-broker` (default `<workspace>/target`).
//!
//! With `RUNNEL_ADMIN_TEST_BOOTSTRAP=host:port` the tests instead run against
//! that already running broker (e.g. Apache Kafka started by
//! `scripts/run-apache-kafka.sh DIR PORT`); `RUNNEL_ADMIN_TEST_DATA_DIR` is
//! then its `log.dirs` (`DIR/data`), for the tests that read
//! `meta.properties`, `RUNNEL_ADMIN_TEST_BROKER_ID` its node id (default 1),
//! and `RUNNEL_ADMIN_TEST_BROKER_KIND` `kafka` (default) or `runnel`.
//!
//! The tests assert Apache Kafka 4.1.1's answers, and runnel-broker must
//! give the same ones.

#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test harness: panicking is the failure report

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use runnel_admin::{AdminClient, AdminConfig, AdminError, TopicDescription};

/// A broker the tests talk to.
pub struct TestBroker {
    /// `127.0.0.1:port` of its PLAINTEXT listener.
    pub bootstrap: String,
    /// Its `log.dirs` (holding `meta.properties`), if known.
    pub data_dir: Option<PathBuf>,
    /// Its node id.
    pub node_id: i32,
    /// Whether it is a `runnel-broker` these tests started.
    pub is_runnel: bool,
    child: Option<Child>,
    work: Option<tempfile::TempDir>,
    ports: Option<(u16, u16)>,
}

/// Starts `runnel-broker` with its data in `work/data`, logging to `work`.
fn spawn_runnel(bin: &Path, work: &Path, port: u16, cport: u16) -> Child {
    spawn_runnel_with(bin, work, port, cport, false)
}

/// [`spawn_runnel`]; `dynamic`: a KIP-853 quorum of one (`--standalone`, with
/// `controller.quorum.bootstrap.servers` instead of `controller.quorum.voters`).
fn spawn_runnel_with(bin: &Path, work: &Path, port: u16, cport: u16, dynamic: bool) -> Child {
    let data = work.join("data");
    let log = |name: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(work.join(name))
            .unwrap()
    };
    Command::new(bin)
        .arg("--override")
        .arg("node.id=1")
        .arg("--override")
        .arg(format!("log.dirs={}", data.display()))
        .arg("--override")
        .arg(format!(
            "listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}"
        ))
        .arg("--override")
        .arg(format!("advertised.listeners=PLAINTEXT://127.0.0.1:{port}"))
        .args(if dynamic {
            vec![
                "--override".to_string(),
                "controller.quorum.voters=".to_string(),
                "--override".to_string(),
                format!("controller.quorum.bootstrap.servers=127.0.0.1:{cport}"),
                "--standalone".to_string(),
            ]
        } else {
            vec![
                "--override".to_string(),
                format!("controller.quorum.voters=1@127.0.0.1:{cport}"),
            ]
        })
        .stdin(Stdio::null())
        .stdout(log("broker.stdout.log"))
        .stderr(log("broker.stderr.log"))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()))
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A port that refuses connections for as long as the returned socket lives:
/// bound but never listening, so no other test (or broker it starts) can take
/// the port in the meantime, and the kernel answers every SYN with a reset.
pub fn dead_port() -> (tokio::net::TcpSocket, u16) {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds (once) and returns the broker binary.
fn broker_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("RUNNEL_BROKER_BIN") {
            let bin = PathBuf::from(bin);
            assert!(
                bin.is_file(),
                "RUNNEL_BROKER_BIN={} does not exist",
                bin.display()
            );
            return bin;
        }
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join("target"));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--bin", "runnel-broker"])
            .current_dir(workspace_root())
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("running cargo build for runnel-broker");
        assert!(
            status.success(),
            "cargo build --release --bin runnel-broker failed"
        );
        let bin = target.join("release").join("runnel-broker");
        assert!(bin.is_file(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

impl TestBroker {
    /// Starts a fresh `runnel-broker`, or returns the external broker of
    /// `RUNNEL_ADMIN_TEST_BOOTSTRAP`, and waits until it serves Metadata
    /// with at least one broker.
    pub async fn start() -> TestBroker {
        Self::start_with(false).await
    }

    /// A fresh `runnel-broker` whose metadata quorum is dynamic (KIP-853), a
    /// voter of one formatted `--standalone`; `None` against an external broker.
    pub async fn start_dynamic() -> Option<TestBroker> {
        if std::env::var("RUNNEL_ADMIN_TEST_BOOTSTRAP").is_ok() {
            return None;
        }
        Some(Self::start_with(true).await)
    }

    async fn start_with(dynamic: bool) -> TestBroker {
        if let Ok(bootstrap) = std::env::var("RUNNEL_ADMIN_TEST_BOOTSTRAP") {
            let mut broker = TestBroker {
                bootstrap,
                data_dir: std::env::var("RUNNEL_ADMIN_TEST_DATA_DIR")
                    .ok()
                    .map(PathBuf::from),
                node_id: std::env::var("RUNNEL_ADMIN_TEST_BROKER_ID")
                    .ok()
                    .map(|s| s.parse().unwrap())
                    .unwrap_or(1),
                is_runnel: std::env::var("RUNNEL_ADMIN_TEST_BROKER_KIND").as_deref()
                    == Ok("runnel"),
                child: None,
                work: None,
                ports: None,
            };
            broker.wait_ready().await;
            return broker;
        }
        let bin = broker_binary();
        let work = tempfile::Builder::new()
            .prefix("runnel-admin-test-")
            .tempdir()
            .unwrap();
        let data = work.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let port = free_port();
        let mut cport = free_port();
        while cport == port {
            cport = free_port();
        }
        let child = spawn_runnel_with(&bin, work.path(), port, cport, dynamic);
        let mut broker = TestBroker {
            bootstrap: format!("127.0.0.1:{port}"),
            data_dir: Some(data),
            node_id: 1,
            is_runnel: true,
            child: Some(child),
            work: Some(work),
            ports: Some((port, cport)),
        };
        broker.wait_ready().await;
        broker
    }

    /// Stops the runnel broker this harness started and starts it again on
    /// the same ports and data dir.
    pub async fn restart(&mut self) {
        let (Some(work), Some((port, cport))) = (&self.work, self.ports) else {
            panic!("only a runnel broker started by the tests can be restarted");
        };
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.child = Some(spawn_runnel(&broker_binary(), work.path(), port, cport));
        self.wait_ready().await;
    }

    /// The broker's log lines so far (runnel only), for failure messages.
    pub fn logs(&self) -> String {
        let Some(work) = &self.work else {
            return String::new();
        };
        let mut out = String::new();
        for f in ["broker.stderr.log", "broker.stdout.log"] {
            let text = std::fs::read_to_string(work.path().join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            out.push_str(&format!("==> {f} <==\n{}\n", tail.join("\n")));
        }
        out
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "runnel-broker exited with {status} during startup\n{}",
                        self.logs()
                    );
                }
            }
            match self.client().await {
                Ok(admin) => match admin.describe_cluster().await {
                    Ok(c) if !c.brokers.is_empty() => return,
                    Ok(c) => last = format!("no brokers yet: {c:?}"),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "broker at {} not ready within 60 s: {last}\n{}",
            self.bootstrap,
            self.logs()
        );
    }

    /// A client with short timeouts.
    pub async fn client(&self) -> Result<AdminClient, AdminError> {
        AdminClient::connect(&self.bootstrap, test_config()).await
    }

    /// The `cluster.id` in `meta.properties`, if the data dir is known.
    pub fn meta_cluster_id(&self) -> Option<String> {
        let dir = self.data_dir.as_ref()?;
        let text = std::fs::read_to_string(dir.join("meta.properties")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("cluster.id="))
            .map(|s| s.trim().to_string())
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Only the process this harness spawned, by its handle.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The client settings the tests use.
pub fn test_config() -> AdminConfig {
    AdminConfig {
        client_id: "runnel-admin-test".into(),
        request_timeout: Duration::from_secs(15),
        connect_timeout: Duration::from_secs(5),
    }
}

/// A topic name unique to this test run (tests may share an external broker).
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls Metadata until `name` exists and every partition has a leader
/// (Kafka propagates a new topic to brokers asynchronously).
pub async fn wait_for_topic(admin: &AdminClient, name: &str) -> TopicDescription {
    let deadline = Instant::now() + Duration::from_secs(30);
    let names = [name.to_string()];
    loop {
        let mut all = admin.describe_topics(Some(&names)).await.unwrap();
        let last = match all.remove(name) {
            Some(Ok(t))
                if !t.partitions.is_empty()
                    && t.partitions
                        .iter()
                        .all(|p| p.leader.is_some() && p.error_code == 0) =>
            {
                return t
            }
            other => format!("{other:?}"),
        };
        assert!(Instant::now() < deadline, "topic {name} not ready: {last}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls Metadata until topic `name` has `count` partitions with leaders.
pub async fn wait_for_partitions(
    admin: &AdminClient,
    name: &str,
    count: usize,
) -> TopicDescription {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = wait_for_topic(admin, name).await;
        if t.partitions.len() == count {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "topic {name} has {} partitions, not {count}",
            t.partitions.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls Metadata until `name` is gone, and returns its per-topic error.
pub async fn wait_for_topic_gone(admin: &AdminClient, name: &str) -> AdminError {
    let deadline = Instant::now() + Duration::from_secs(30);
    let names = [name.to_string()];
    loop {
        let mut all = admin.describe_topics(Some(&names)).await.unwrap();
        match all.remove(name) {
            Some(Err(e)) => return e,
            other => assert!(
                Instant::now() < deadline,
                "topic {name} still described: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts `r` is an [`AdminError::Kafka`] of `api` with `name` and `message`.
#[track_caller]
pub fn assert_kafka_error<T: std::fmt::Debug>(
    r: Result<T, AdminError>,
    api: &str,
    code: i16,
    name: &str,
    message: Option<&str>,
) {
    match r {
        Err(AdminError::Kafka {
            api: a,
            code: c,
            name: n,
            message: m,
        }) => {
            assert_eq!(
                (a, c, n.as_str(), m.as_deref()),
                (api, code, name, message),
                "unexpected Kafka error"
            );
        }
        other => panic!("expected {api} error {name} ({code}), got {other:?}"),
    }
}
