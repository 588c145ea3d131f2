//! The broker process: wires config, metadata quorum, controller, replicas
//! and listeners together, and shuts them down in order.

use crate::clock::now_ms;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::config::{BrokerConfig, Listener};
use crate::controller::channel::ControllerChannel;
use crate::controller::Controller;
use crate::error::ApiError;
use crate::group::{GroupConfig, GroupCoordinator};
use crate::log::LogManager;
use crate::metadata::{ClusterImage, Endpoint, MetadataQuorum, MetadataRecord};
use crate::replication::ReplicaManager;

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind.
    #[error("cannot bind listener {name} on {addr}: {source}")]
    Bind {
        /// Listener name.
        name: String,
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The data directory is unusable.
    #[error("log directory error: {0}")]
    Storage(String),
    /// The metadata quorum failed to start.
    #[error("metadata quorum: {0}")]
    Metadata(#[from] crate::metadata::MetadataError),
    /// Registration with the controller failed.
    #[error("broker registration failed: {0}")]
    Register(ApiError),
}

/// State shared by every connection and handler.
pub struct BrokerState {
    /// The static config.
    pub config: BrokerConfig,
    /// This node's id.
    pub node_id: i32,
    /// The cluster id from `meta.properties`.
    pub cluster_id: String,
    /// The metadata quorum.
    pub quorum: MetadataQuorum,
    /// The way to the active controller (local or on the quorum leader).
    pub controller: ControllerChannel,
    /// Hosted partitions.
    pub replicas: ReplicaManager,
    /// The group coordinator.
    pub groups: GroupCoordinator,
    /// The transaction coordinator (loads `__transaction_state`; not
    /// reachable from clients yet, see `txn::TRANSACTIONS_ENABLED`).
    pub txns: crate::txn::TxnCoordinator,
    /// Listeners as bound (ports resolved).
    pub bound: Vec<(Listener, SocketAddr)>,
    /// Flips to true on shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// Client connections currently open.
    pub open_connections: std::sync::atomic::AtomicUsize,
    /// Set once the broker serves: registered, unfenced and caught up (the
    /// health endpoint's `/ready`).
    serving: std::sync::atomic::AtomicBool,
    /// Connection caps and the request-memory budget.
    pub limits: Arc<crate::server::Limits>,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: crate::server::fetch_sessions::FetchSessions,
    /// This broker's producer id block: `[next, end)`.
    producer_ids: std::sync::Mutex<(i64, i64)>,
    /// The broker epoch of this process's registration (-1 before it).
    epoch: std::sync::atomic::AtomicI64,
    /// This process's incarnation id (set once, at registration).
    incarnation: std::sync::OnceLock<Uuid>,
    /// Liveness as the controller last answered a heartbeat.
    liveness: watch::Sender<Liveness>,
    /// Set to start a controlled shutdown.
    want_shutdown: watch::Sender<bool>,
    /// The image as published to this broker: the metadata publisher sets it
    /// only after the replica manager applied it, so a handler that sees a
    /// partition here finds it hosted (or finds it retired by a newer image).
    published: watch::Sender<Arc<ClusterImage>>,
}

/// How long a handler waits for this broker to apply metadata it (or the
/// controller on its behalf) just committed.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the controller last said of this broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Liveness {
    /// An answer has come.
    pub answered: bool,
    /// Fenced.
    pub fenced: bool,
    /// Shutting down and leading nothing: it may stop.
    pub should_shut_down: bool,
}

impl BrokerState {
    /// This process's broker epoch (its registration's metadata offset).
    pub fn broker_epoch(&self) -> i64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Takes the broker epoch from the metadata when it shows this
    /// process's registration under a newer epoch (a retried registration
    /// that was committed twice).
    fn refresh_epoch(&self) {
        let Some(me) = self.incarnation.get() else {
            return;
        };
        let image = self.quorum.image();
        if let Some(b) = image.brokers.get(&self.node_id) {
            if b.incarnation_id == *me && b.epoch != self.broker_epoch() {
                info!(
                    from = self.broker_epoch(),
                    to = b.epoch,
                    "taking this broker's epoch from the metadata"
                );
                self.epoch
                    .store(b.epoch, std::sync::atomic::Ordering::Release);
            }
        }
    }

    /// A receiver of each newly published image.
    pub fn subscribe_published(&self) -> watch::Receiver<Arc<ClusterImage>> {
        self.published.subscribe()
    }

    /// The latest cluster image published to this broker (see `published`).
    pub fn image(&self) -> Arc<ClusterImage> {
        self.published.borrow().clone()
    }

    /// Waits until this broker has applied every metadata record committed
    /// so far (e.g. after a controller call, so the response and the next
    /// request see its effect). Gives up after a bound, with a log line.
    pub async fn catch_up(&self) {
        let want = self.quorum.image().last_applied;
        let mut rx = self.published.subscribe();
        let caught_up = tokio::time::timeout(CATCH_UP_TIMEOUT, async {
            rx.wait_for(|img| img.last_applied >= want).await.is_ok()
        })
        .await;
        if caught_up.is_err() {
            warn!(
                offset = want,
                "timed out waiting for this broker to apply committed metadata"
            );
        }
    }

    /// Allocates a producer id for an idempotent producer, from this
    /// broker's block; a new block comes from the active controller.
    pub async fn allocate_producer_id(&self) -> Result<i64, ApiError> {
        loop {
            {
                let mut b = self.producer_ids.lock().unwrap_or_else(|e| e.into_inner());
                if b.0 < b.1 {
                    let id = b.0;
                    b.0 += 1;
                    return Ok(id);
                }
            }
            let (first, size) = self.controller.allocate_producer_ids(self.node_id).await?;
            let mut b = self.producer_ids.lock().unwrap_or_else(|e| e.into_inner());
            if b.0 >= b.1 {
                *b = (first, first + size);
            }
        }
    }
}

/// A running broker.
pub struct Broker {
    state: Arc<BrokerState>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// What `meta.properties` says about this node's storage.
struct Formatted {
    cluster_id: String,
    /// `directory.id` (Kafka's metadata directory id), when present.
    directory_id: Option<uuid::Uuid>,
}

/// Reads or creates `meta.properties` in the log dir.
fn format_storage(config: &BrokerConfig) -> Result<Formatted, StartError> {
    let dir = &config.log_dirs[0];
    std::fs::create_dir_all(dir)
        .map_err(|e| StartError::Storage(format!("{}: {e}", dir.display())))?;
    let path = dir.join("meta.properties");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let props = crate::config::parse_properties(&text);
        if let Some(id) = props.get("node.id") {
            if id.parse::<i32>().ok() != Some(config.node_id) {
                return Err(StartError::Storage(format!(
                    "{} belongs to node.id {id}, but this broker is node.id {}",
                    path.display(),
                    config.node_id
                )));
            }
        }
        if let Some(c) = props.get("cluster.id") {
            if let Some(want) = &config.format_cluster_id {
                if want != c {
                    return Err(StartError::Storage(format!(
                        "{} belongs to cluster {c}, but this broker was started with --cluster-id {want}",
                        path.display()
                    )));
                }
            }
            return Ok(Formatted {
                cluster_id: c.clone(),
                directory_id: props
                    .get("directory.id")
                    .and_then(|d| crate::log::parse_kafka_uuid(d)),
            });
        }
    }
    check_format_options(config)?;
    let cluster_id = config
        .format_cluster_id
        .clone()
        .unwrap_or_else(|| crate::log::topic_id_string(&crate::log::new_kafka_uuid()));
    let directory_id = crate::log::new_kafka_uuid();
    let text = format!(
        "#\n#Formatted by runnel-broker\nnode.id={}\ndirectory.id={}\nversion=1\ncluster.id={cluster_id}\n",
        config.node_id,
        crate::log::topic_id_string(&directory_id)
    );
    let tmp = dir.join("meta.properties.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| StartError::Storage(format!("{}: {e}", path.display())))?;
    info!(cluster_id, dir = %dir.display(), "formatted storage");
    Ok(Formatted {
        cluster_id,
        directory_id: Some(directory_id),
    })
}

/// The checks `kafka-storage format` makes of `--standalone` and
/// `--no-initial-controllers`, with its messages: a controller of a dynamic
/// quorum needs exactly one of them; a static quorum takes neither.
fn check_format_options(config: &BrokerConfig) -> Result<(), StartError> {
    let (standalone, none) = (
        config.format_standalone,
        config.format_no_initial_controllers,
    );
    if standalone && none {
        return Err(StartError::Storage(
            "Only one of --standalone, --initial-controllers, or --no-initial-controllers may be specified".into(),
        ));
    }
    if (standalone || none) && !config.voters.is_empty() && config.is_controller() {
        return Err(StartError::Storage(
            "You cannot specify controller.quorum.voters and format the node with --initial-controllers or --standalone. If you want to use dynamic quorum, please remove controller.quorum.voters and specify controller.quorum.bootstrap.servers instead.".into(),
        ));
    }
    if config.is_dynamic_controller() && !standalone && !none {
        return Err(StartError::Storage(
            "Because controller.quorum.voters is not set on this controller, you must specify one of the following: --standalone, --initial-controllers, or --no-initial-controllers.".into(),
        ));
    }
    Ok(())
}

impl Broker {
    /// Starts the broker: storage, quorum, registration, listeners.
    pub async fn start(config: BrokerConfig) -> Result<Self, StartError> {
        let formatted = format_storage(&config)?;
        let cluster_id = formatted.cluster_id.clone();
        let logs = LogManager::open(&config.log_dirs[0])
            .map_err(|e| StartError::Storage(e.to_string()))?;
        // Bind client listeners first, so port 0 resolves before registration.
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        // A controller-only node has no client listener.
        let client_listeners = if config.is_broker() {
            config.broker_listeners()
        } else {
            Vec::new()
        };
        for l in client_listeners {
            let host = if l.host.is_empty() {
                "0.0.0.0"
            } else {
                l.host.as_str()
            };
            let addr = format!("{host}:{}", l.port);
            let tcp = TcpListener::bind(&addr)
                .await
                .map_err(|source| StartError::Bind {
                    name: l.name.clone(),
                    addr: addr.clone(),
                    source,
                })?;
            let local = tcp.local_addr().map_err(|source| StartError::Bind {
                name: l.name.clone(),
                addr,
                source,
            })?;
            bound.push((l.clone(), local));
            listeners.push(tcp);
        }
        let health = match config.health_port {
            Some(port) => {
                let addr = format!("0.0.0.0:{port}");
                Some(
                    TcpListener::bind(&addr)
                        .await
                        .map_err(|source| StartError::Bind {
                            name: "health".into(),
                            addr,
                            source,
                        })?,
                )
            }
            None => None,
        };
        let meta_dir = config.metadata_dir().join("__cluster_metadata-0");
        let quorum = open_quorum(&config, &meta_dir, &formatted).await?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let replicas = ReplicaManager::new(config.node_id, logs, config.props.clone());
        let controller = ControllerChannel::new(
            config.node_id,
            quorum.clone(),
            Arc::new(Controller::new(quorum.clone(), config.clone())),
        );
        let state = Arc::new(BrokerState {
            node_id: config.node_id,
            cluster_id,
            quorum: quorum.clone(),
            controller,
            replicas,
            groups: GroupCoordinator::new(GroupConfig::from_broker(&config)),
            txns: crate::txn::TxnCoordinator::new(crate::txn::TxnConfig::from_broker(&config)),
            bound,
            shutdown,
            open_connections: std::sync::atomic::AtomicUsize::new(0),
            serving: std::sync::atomic::AtomicBool::new(false),
            limits: crate::server::Limits::new(config.get_i64("queued.max.request.bytes", -1)),
            fetch_sessions: crate::server::fetch_sessions::FetchSessions::new(
                usize::try_from(config.get_i64("max.incremental.fetch.session.cache.slots", 1000))
                    .unwrap_or(0),
                crate::server::fetch_sessions::EVICTION,
            ),
            producer_ids: std::sync::Mutex::new((0, 0)),
            epoch: std::sync::atomic::AtomicI64::new(-1),
            incarnation: std::sync::OnceLock::new(),
            liveness: watch::channel(Liveness::default()).0,
            want_shutdown: watch::channel(false).0,
            published: watch::channel(Arc::new(ClusterImage::default())).0,
            config,
        });
        if state.config.is_controller() {
            // Kafka requests on the controller listener (KIP-919,
            // `--bootstrap-controller`). Weak: the quorum lives in the state.
            let weak = Arc::downgrade(&state);
            state
                .quorum
                .set_kafka_handler(Arc::new(move |stream, peer| {
                    let weak = weak.clone();
                    Box::pin(async move {
                        if let Some(st) = weak.upgrade() {
                            crate::server::serve_controller_connection(st, stream, peer).await;
                        }
                    })
                }));
        }
        let health_task =
            health.map(|l| tokio::spawn(crate::server::health::serve(state.clone(), l)));
        if !state.config.is_broker() {
            let mut me = Self::start_controller_only(state, shutdown_tx);
            me.tasks.extend(health_task);
            return Ok(me);
        }
        state.register().await.map_err(StartError::Register)?;
        if state.quorum.newly_formatted() {
            // This start created the metadata log: write the bootstrap
            // records (registration above proved there is a controller).
            state
                .controller
                .bootstrap_cluster_defaults(state.config.format_metadata_version)
                .await
                .map_err(StartError::Register)?;
        }
        // Registration committed, so the local image holds everything
        // committed before it: set strays aside and open hosted partitions
        // before serving.
        let image = state.quorum.image();
        {
            let (st, img) = (state.clone(), image.clone());
            tokio::task::spawn_blocking(move || {
                st.replicas.set_aside_strays(&img);
                st.replicas.apply(&img);
            })
            .await
            .map_err(|e| StartError::Storage(format!("opening partitions failed: {e}")))?;
        }
        GroupCoordinator::on_metadata(&state, &image);
        crate::txn::TxnCoordinator::on_metadata(&state, &image);
        state.published.send_replace(image);
        let mut tasks: Vec<JoinHandle<()>> = health_task.into_iter().collect();
        tasks.push(tokio::spawn(publish_metadata(state.clone())));
        tasks.push(tokio::spawn(heartbeats(state.clone())));
        tasks.push(tokio::spawn(controller_timer(state.clone())));
        state.wait_unfenced().await;
        tasks.push(tokio::spawn(housekeeping(state.clone())));
        tasks.push(tokio::spawn(producer_expiry(state.clone())));
        if state.config.get_bool("log.cleaner.enable", true) {
            let threads = state.config.get_i64("log.cleaner.threads", 1).clamp(0, 64);
            for i in 0..threads {
                let st = state.clone();
                if let Err(e) = std::thread::Builder::new()
                    .name(format!("log-cleaner-{i}"))
                    .spawn(move || log_cleaner(st, threads))
                {
                    error!(error = %e, "cannot start a log cleaner thread");
                }
            }
        }
        tasks.push(tokio::spawn(high_watermark_checkpoints(state.clone())));
        tasks.push(tokio::spawn(run_groups(state.clone())));
        tasks.push(tokio::spawn(crate::txn::end_txn::run_timeouts(
            state.clone(),
        )));
        tasks.push(tokio::spawn(crate::txn::expiry::run(state.clone())));
        tasks.push(tokio::spawn(crate::replication::fetcher::run(
            state.clone(),
        )));
        tasks.push(tokio::spawn(crate::replication::isr::run_shrink_checks(
            state.clone(),
        )));
        for tcp in listeners {
            tasks.push(tokio::spawn(crate::server::accept_loop(state.clone(), tcp)));
        }
        info!(node_id = state.node_id, listeners = ?state.bound.iter().map(|(l, a)| format!("{}://{a}", l.name)).collect::<Vec<_>>(), "broker started");
        Ok(Self {
            state,
            shutdown_tx,
            tasks,
        })
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    /// Resolves with the reason once the metadata quorum stopped on a fatal
    /// error: the broker must then stop (as Kafka's fault handler halts it)
    /// rather than go on serving as if healthy.
    pub async fn fatal(&self) -> String {
        let mut rx = self.state.quorum.fatal();
        let why = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        };
        match why {
            Some(w) => w,
            None => std::future::pending().await,
        }
    }

    /// The rest of the start of a controller-only node
    /// (`process.roles=controller`): a voter running the controller, with no
    /// client listener, no broker registration and no partitions.
    fn start_controller_only(state: Arc<BrokerState>, shutdown_tx: watch::Sender<bool>) -> Self {
        let mut tasks = vec![tokio::spawn(controller_timer(state.clone()))];
        if state.quorum.newly_formatted() {
            tasks.push(tokio::spawn(bootstrap_defaults(state.clone())));
        }
        info!(
            node_id = state.node_id,
            voters = ?state.config.voters,
            bootstrap = ?state.config.bootstrap_servers,
            "controller started (process.roles=controller: a metadata quorum voter; no client listener, not a broker)"
        );
        Self {
            state,
            shutdown_tx,
            tasks,
        }
    }

    /// The bound address of the first client listener (`0.0.0.0:0` on a
    /// controller-only node, which has none).
    pub fn addr(&self) -> SocketAddr {
        self.state
            .bound
            .first()
            .map(|b| b.1)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Graceful shutdown: a controlled shutdown first (the controller moves
    /// this broker's leaderships away, bounded by
    /// `controlled.shutdown.timeout.ms`-like 30 s), then stop accepting, let
    /// in-flight requests finish, flush every log and the quorum.
    pub async fn shutdown(self) {
        if !self.state.config.is_broker() {
            info!("shutting down (controller-only node)");
            let _ = self.shutdown_tx.send(true);
            for t in self.tasks {
                t.abort();
            }
            if let Err(e) = self.state.quorum.shutdown().await {
                error!(error = %e, "metadata quorum shutdown failed");
            }
            info!("shutdown complete");
            return;
        }
        info!("controlled shutdown: asking the controller to move leadership away");
        self.state.want_shutdown.send_replace(true);
        let mut rx = self.state.liveness.subscribe();
        match tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|l| l.should_shut_down))
            .await
        {
            Ok(Ok(_)) => info!("controlled shutdown done: this broker leads no partition"),
            _ => warn!("controlled shutdown did not complete in 30 s; shutting down anyway"),
        }
        info!("shutting down");
        let _ = self.shutdown_tx.send(true);
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        for t in self.tasks {
            tokio::select! {
                _ = &mut deadline => { warn!("timed out waiting for tasks; continuing shutdown"); break; }
                r = t => if let Err(e) = r { if e.is_panic() { error!("task panicked: {e}"); } }
            }
        }
        crate::server::wait_for_connections(&self.state, Duration::from_secs(10)).await;
        self.state.replicas.shutdown();
        if let Err(e) = self.state.quorum.shutdown().await {
            error!(error = %e, "metadata quorum shutdown failed");
        }
        info!("shutdown complete");
    }
}

impl BrokerState {
    /// Registers with the active controller (wherever it is), then waits
    /// until this node's own copy of the metadata shows the registration,
    /// so everything committed before it is applied locally.
    async fn register(&self) -> Result<(), ApiError> {
        let endpoints = self
            .config
            .advertised_listeners
            .iter()
            .map(|a| {
                let bound_port = self
                    .bound
                    .iter()
                    .find(|(l, _)| l.name == a.name)
                    .map(|(_, s)| s.port());
                let port = if a.port == 0 {
                    bound_port.unwrap_or(0)
                } else {
                    a.port
                };
                let host = if a.host.is_empty() {
                    "localhost".to_string()
                } else {
                    a.host.clone()
                };
                Endpoint {
                    listener: a.name.clone(),
                    host,
                    port,
                    security_protocol: self
                        .config
                        .security_protocol_map
                        .get(&a.name)
                        .cloned()
                        .unwrap_or_else(|| "PLAINTEXT".into()),
                }
            })
            .collect();
        let incarnation = *self.incarnation.get_or_init(Uuid::new_v4);
        let record = MetadataRecord::RegisterBroker {
            node_id: self.node_id,
            incarnation_id: incarnation,
            endpoints,
            rack: self.config.rack.clone(),
            features: crate::metadata::features::supported_features(),
        };
        // The channel follows the leader and retries for its own deadline;
        // a few rounds of it cover voters that start minutes apart.
        // DUPLICATE_BROKER_REGISTRATION (this id's previous process is
        // still within its session, or another live process has it) is
        // retried for a while longer than a session.
        let session = Duration::from_millis(
            self.config
                .get_i64("broker.session.timeout.ms", 9000)
                .clamp(100, 3_600_000) as u64,
        );
        let until = tokio::time::Instant::now() + session * 2 + Duration::from_secs(5);
        let mut last;
        let mut attempt = 0;
        loop {
            match self.controller.register_broker(record.clone()).await {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => {
                    attempt += 1;
                    let dup = e.code == ResponseError::DuplicateBrokerRegistration.code();
                    let no_controller = e.code == ResponseError::RequestTimedOut.code();
                    if dup {
                        warn!(error = %e, "node.id {} is held by a live registration (this node's previous process within its session, or a duplicate node.id); retrying", self.node_id);
                    } else {
                        warn!(attempt, error = %e, "broker registration failed; retrying");
                    }
                    last = Some(e);
                    // Without a controller (none reachable, no leader) a
                    // broker keeps trying and does not serve, as Kafka's.
                    if (!dup && !no_controller && attempt >= 4)
                        || (dup && tokio::time::Instant::now() >= until)
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
        let mut rx = self.quorum.subscribe();
        let seen = tokio::time::timeout(
            Duration::from_secs(60),
            rx.wait_for(|img| {
                img.brokers
                    .get(&self.node_id)
                    .is_some_and(|b| b.incarnation_id == incarnation)
            }),
        )
        .await;
        match seen {
            Ok(Ok(img)) => {
                let epoch = img.brokers.get(&self.node_id).map(|b| b.epoch).unwrap_or(-1);
                self.epoch
                    .store(epoch, std::sync::atomic::Ordering::Release);
                info!(node_id = self.node_id, epoch, "registered with the controller");
                Ok(())
            }
            _ => Err(ApiError::new(
                ResponseError::RequestTimedOut,
                "the registration was committed but this node's metadata did not catch up within 60 s",
            )),
        }
    }
}

impl BrokerState {
    /// This node's id while it is in its own controlled shutdown (it still
    /// answers the requests it has read, and lists itself to clients: see
    /// `ClusterImage::client_brokers`), else None.
    pub fn stopping_self(&self) -> Option<i32> {
        (*self.want_shutdown.borrow()).then_some(self.node_id)
    }

    /// Waits until the controller unfences this broker (it has applied the
    /// metadata up to its registration) and this broker has applied the
    /// elections that follow, as a Kafka broker waits before serving.
    async fn wait_unfenced(&self) {
        let mut rx = self.liveness.subscribe();
        loop {
            let r = tokio::time::timeout(
                Duration::from_secs(10),
                rx.wait_for(|l| l.answered && !l.fenced),
            )
            .await;
            match r {
                Ok(_) => break,
                Err(_) => warn!("still waiting for the controller to unfence this broker"),
            }
        }
        let mut img = self.published.subscribe();
        let _ = tokio::time::timeout(
            CATCH_UP_TIMEOUT,
            img.wait_for(|i| i.brokers.get(&self.node_id).is_some_and(|b| !b.fenced)),
        )
        .await;
        self.catch_up().await;
        self.serving
            .store(true, std::sync::atomic::Ordering::Release);
        info!(node_id = self.node_id, "unfenced: serving");
    }

    /// Whether this node serves, for the health endpoint's `/ready`: a broker
    /// once registered, unfenced and caught up, while neither fenced again nor
    /// shutting down (Kafka's broker state RUNNING); a controller-only node
    /// while its metadata quorum has a leader.
    pub fn readiness(&self) -> Result<(), String> {
        if *self.shutdown.borrow() || *self.want_shutdown.borrow() {
            return Err("shutting down".into());
        }
        if !self.config.is_broker() {
            return match self.quorum.leader() {
                Some(_) => Ok(()),
                None => Err("the metadata quorum has no leader".into()),
            };
        }
        let l = *self.liveness.borrow();
        if !l.answered {
            return Err("not registered with the active controller yet".into());
        }
        if l.fenced {
            return Err("fenced by the active controller".into());
        }
        if !self.serving.load(std::sync::atomic::Ordering::Acquire) {
            return Err("catching up with the cluster metadata".into());
        }
        Ok(())
    }
}

/// Opens this node's part of the metadata quorum: a voter when
/// `process.roles` has `controller`, else an observer that finds the quorum
/// through `controller.quorum.voters` or `controller.quorum.bootstrap.servers`.
async fn open_quorum(
    config: &BrokerConfig,
    meta_dir: &std::path::Path,
    formatted: &Formatted,
) -> Result<MetadataQuorum, StartError> {
    // Check-quorum after 1.5 × controller.quorum.fetch.timeout.ms, as
    // Kafka's KafkaRaftClient.
    let fetch_timeout = config
        .get_i64("controller.quorum.fetch.timeout.ms", 2000)
        .clamp(100, 3_600_000) as u64;
    let opts = crate::metadata::QuorumOptions {
        cluster_id: formatted.cluster_id.clone(),
        directory_id: formatted.directory_id,
        check_quorum: Duration::from_millis(fetch_timeout * 3 / 2),
        ..Default::default()
    };
    if config.is_dynamic_controller() {
        let endpoints = config.controller_endpoints();
        let Some((_, host, port)) = endpoints.first().cloned() else {
            return Err(StartError::Storage(
                "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role".into(),
            ));
        };
        let Some(directory_id) = formatted.directory_id else {
            return Err(StartError::Storage(format!(
                "{}/meta.properties has no directory.id, which a controller of a dynamic quorum needs",
                config.log_dirs[0].display()
            )));
        };
        let addr = format!("{host}:{port}");
        // Never ask this node itself to join.
        let contact: Vec<String> = config
            .bootstrap_servers
            .iter()
            .filter(|b| **b != addr)
            .cloned()
            .collect();
        let own = crate::metadata::QuorumNode {
            addr,
            directory_id: Some(directory_id),
            endpoints,
        };
        // Honoured while the metadata log is empty (a crash between writing
        // meta.properties and initializing the log does not lose it).
        let standalone = config.format_standalone;
        return Ok(MetadataQuorum::open_dynamic(
            meta_dir,
            config.node_id,
            own,
            contact,
            standalone,
            opts,
        )
        .await?);
    }
    if config.is_controller() {
        return Ok(MetadataQuorum::open_with(
            meta_dir,
            config.node_id,
            config.voters.clone(),
            opts,
        )
        .await?);
    }
    let contact: Vec<String> = if config.voters.is_empty() {
        config.bootstrap_servers.clone()
    } else {
        config.voters.iter().map(|(_, a)| a.clone()).collect()
    };
    // Replication from the leader arrives on an ephemeral port of the
    // client listener's interface, advertised under the inter-broker host.
    let bind_host = config
        .broker_listeners()
        .first()
        .map(|l| l.host.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "0.0.0.0".to_string());
    let inter = config.get("inter.broker.listener.name").unwrap_or("");
    let advertised_host = config
        .advertised_listeners
        .iter()
        .find(|l| l.name.eq_ignore_ascii_case(inter))
        .or_else(|| config.advertised_listeners.first())
        .map(|l| l.host.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    Ok(MetadataQuorum::open_observer(
        meta_dir,
        config.node_id,
        contact,
        bind_host,
        advertised_host,
        opts,
    )
    .await?)
}

/// Writes the bootstrap records of a newly formatted cluster from a
/// controller-only node (a combined node does it after registering),
/// retrying until a controller is active.
async fn bootstrap_defaults(state: Arc<BrokerState>) {
    let mut shutdown = state.shutdown.clone();
    loop {
        match state
            .controller
            .bootstrap_cluster_defaults(state.config.format_metadata_version)
            .await
        {
            Ok(()) => return,
            Err(e) => warn!(error = %e, "writing the cluster's bootstrap records failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Heartbeats to the active controller: every `broker.heartbeat.interval.ms`
/// (every 100 ms while fenced or shutting down), with the metadata offset
/// this broker has applied and whether it wants to shut down.
async fn heartbeats(state: Arc<BrokerState>) {
    use crate::controller::liveness::Heartbeat;
    let interval = Duration::from_millis(
        state
            .config
            .get_i64("broker.heartbeat.interval.ms", 2000)
            .clamp(10, 60_000) as u64,
    );
    let mut want = state.want_shutdown.subscribe();
    let mut shutdown = state.shutdown.clone();
    loop {
        let want_shutdown = *want.borrow_and_update();
        state.refresh_epoch();
        let hb = Heartbeat {
            node_id: state.node_id,
            epoch: state.broker_epoch(),
            metadata_offset: state.replicas.applied_offset().unwrap_or(0),
            want_shutdown,
        };
        let fast = match state.controller.heartbeat(hb, interval * 2).await {
            Ok(r) => {
                state.liveness.send_replace(Liveness {
                    answered: true,
                    fenced: r.fenced,
                    should_shut_down: r.should_shut_down,
                });
                r.fenced || want_shutdown
            }
            Err(e) => {
                if e.code == ResponseError::StaleBrokerEpoch.code() {
                    error!(error = %e, "the controller no longer knows this broker's registration (another process with node.id {}?)", state.node_id);
                } else {
                    warn!(error = %e, "heartbeat failed");
                }
                true
            }
        };
        let wait = if fast {
            Duration::from_millis(100)
        } else {
            interval
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = want.changed() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Drives the active controller's session checks once a second (a no-op
/// on nodes that are not the quorum leader).
async fn controller_timer(state: Arc<BrokerState>) {
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
        state.controller.local().tick().await;
    }
}

/// The metadata publisher: the only path from committed metadata to the
/// partitions this broker hosts. It takes images in commit order (a watch
/// only ever moves forward; the replica manager refuses an older one),
/// applies each to the replica manager on a blocking thread (it opens,
/// creates and renames directories), and only then publishes it to the
/// handlers.
async fn publish_metadata(state: Arc<BrokerState>) {
    let mut rx = state.quorum.subscribe();
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let image = rx.borrow_and_update().clone();
        let (st, img) = (state.clone(), image.clone());
        match tokio::task::spawn_blocking(move || st.replicas.apply(&img)).await {
            Ok(outcome) if outcome.stale => continue,
            Ok(_) => {}
            Err(e) => {
                error!(error = %e, "applying metadata to the hosted partitions failed");
                continue;
            }
        }
        GroupCoordinator::on_metadata(&state, &image);
        crate::txn::TxnCoordinator::on_metadata(&state, &image);
        state.published.send_if_modified(|cur| {
            if image.last_applied >= cur.last_applied {
                *cur = image;
                true
            } else {
                false
            }
        });
    }
}

async fn run_groups(state: Arc<BrokerState>) {
    let retention_check = Duration::from_millis(
        state
            .config
            .get_i64("offsets.retention.check.interval.ms", 600_000)
            .clamp(100, 3_600_000) as u64,
    );
    let mut last_expiry = tokio::time::Instant::now();
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.changed() => return,
        }
        state.groups.tick(&state).await;
        if last_expiry.elapsed() >= retention_check {
            last_expiry = tokio::time::Instant::now();
            state.groups.expire_offsets(&state).await;
        }
    }
}

/// Every `replica.high.watermark.checkpoint.interval.ms` (Kafka's 5 s),
/// writes the replicas' high watermarks to the log directory, off the async
/// workers; a restarted replica starts from them.
async fn high_watermark_checkpoints(state: Arc<BrokerState>) {
    let interval = state
        .config
        .get_i64("replica.high.watermark.checkpoint.interval.ms", 5000)
        .clamp(100, 3_600_000);
    every_on_blocking_pool(state, interval, "high watermark checkpoint", |st| {
        st.replicas.checkpoint_high_watermarks()
    })
    .await
}

/// Retention and checkpoints every `log.retention.check.interval.ms`.
async fn housekeeping(state: Arc<BrokerState>) {
    let interval = state
        .config
        .get_i64("log.retention.check.interval.ms", 300_000)
        .clamp(100, 300_000);
    every_on_blocking_pool(state, interval, "housekeeping", |st| {
        st.replicas.housekeeping(now_ms())
    })
    .await
}

/// Every `producer.id.expiration.check.interval.ms` (Kafka's internal
/// config, 10 minutes), forgets the producers idle for
/// `producer.id.expiration.ms` (dynamic: the value in force each time).
async fn producer_expiry(state: Arc<BrokerState>) {
    let interval = state
        .config
        .get_i64("producer.id.expiration.check.interval.ms", 600_000)
        .clamp(100, 3_600_000);
    every_on_blocking_pool(state, interval, "producer id expiration", |st| {
        let ms = crate::server::broker_i64(st, "producer.id.expiration.ms", 86_400_000);
        st.replicas.expire_producers(now_ms(), ms)
    })
    .await
}

/// One log cleaner thread (`log.cleaner.threads` of them, each its own OS
/// thread at a lower CPU priority, nice 10, so that cleaning yields to the
/// request path): cleans the dirtiest compacted log, again at once while
/// logs are due, else after `log.cleaner.backoff.ms`; stops at shutdown.
fn log_cleaner(state: Arc<BrokerState>, threads: i64) {
    let backoff = state
        .config
        .get_i64("log.cleaner.backoff.ms", 15_000)
        .clamp(10, 3_600_000);
    let dedupe = state
        .config
        .get_i64("log.cleaner.dedupe.buffer.size", 134_217_728)
        .max(1 << 16);
    let io = state
        .config
        .get("log.cleaner.io.max.bytes.per.second")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(f64::MAX);
    let settings = crate::log::CleanerSettings {
        dedupe_buffer_bytes: (dedupe / threads.max(1)) as u64,
        io_bytes_per_sec: io,
    };
    // Linux: a thread id names the thread alone. Lowering the priority
    // needs no privilege; failing to is harmless.
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 10) {
        tracing::warn!(error = %e, "cannot lower the log cleaner thread's priority");
    }
    let shutdown = state.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if state.replicas.clean_dirtiest(&settings) {
            continue;
        }
        let until = std::time::Instant::now() + Duration::from_millis(backoff as u64);
        while std::time::Instant::now() < until {
            if *shutdown.borrow() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50).min(until - std::time::Instant::now()));
        }
    }
}

/// Runs `work` (disk I/O) on the blocking pool every `interval_ms` until
/// shutdown.
async fn every_on_blocking_pool(
    state: Arc<BrokerState>,
    interval_ms: i64,
    what: &'static str,
    work: fn(&BrokerState),
) {
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(interval_ms as u64)) => {}
            _ = shutdown.changed() => return,
        }
        let st = state.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || work(&st)).await {
            error!(error = %e, task = what, "periodic task failed");
        }
    }
}
