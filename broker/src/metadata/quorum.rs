//! The metadata quorum: an openraft node whose log is the cluster metadata
//! log and whose state machine is the [`ClusterImage`].
//!
//! - [`types`]: the openraft type configuration and node id mapping.
//! - [`log_store`]: the durable raft log (and vote).
//! - [`state_machine`]: applies entries to the image; snapshots.
//! - [`network`]: the TCP RPC transport between voters.
//! - [`frame`]: CRC-checked framing and atomic file replacement.
//!
//! On-disk state lives under `dir/raft/`.

mod check_quorum;
mod frame;
mod log_store;
mod network;
mod state_machine;
mod types;
mod voters;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::{Config, SnapshotPolicy};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ClusterImage, MetadataRecord};
use log_store::LogStore;
use network::NetworkFactory;
use state_machine::StateMachine;
pub use types::QuorumNode;
use types::{to_kafka_id, to_raft_id, Raft, RecordBatch};
pub use voters::VoterChangeError;

/// Errors from the metadata quorum.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Storage failed.
    #[error("metadata storage error: {0}")]
    Storage(String),
    /// This node is not the quorum leader.
    #[error("not the active controller")]
    NotController,
    /// The quorum is shutting down.
    #[error("metadata quorum is shut down")]
    Shutdown,
    /// The quorum configuration (node id, voters) is invalid.
    #[error("invalid metadata quorum config: {0}")]
    InvalidConfig(String),
    /// The controller listener could not be bound.
    #[error("metadata quorum network error: {0}")]
    Network(String),
    /// The records would make a metadata log entry larger than the quorum
    /// stores; nothing was proposed.
    #[error("the metadata records take {size} bytes, more than the {limit} bytes one metadata log entry may hold")]
    TooLarge {
        /// Encoded size of the proposal.
        size: usize,
        /// [`MAX_PROPOSAL_BYTES`].
        limit: usize,
    },
}

/// The largest encoded proposal accepted (Kafka's KRaft caps a metadata
/// record batch at 8 MiB). Far below the log's frame limit, so a request can
/// never produce an entry the log store would refuse to write.
pub const MAX_PROPOSAL_BYTES: usize = 8 * 1024 * 1024;

/// Tunables of the quorum; [`MetadataQuorum::open`] uses the defaults.
#[derive(Debug, Clone)]
pub struct QuorumOptions {
    /// Leader heartbeat interval.
    pub heartbeat: Duration,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// Check-quorum (KIP-595): a leader that has heard from no majority of
    /// the voters for this long stops acting as the active controller
    /// until it hears from one again (Kafka resigns after 1.5 ×
    /// `controller.quorum.fetch.timeout.ms`).
    pub check_quorum: Duration,
    /// A snapshot is built after this many entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept in the log after a snapshot (for lagging followers).
    pub logs_kept_after_snapshot: u64,
    /// This node's cluster id (`meta.properties`): sent with every quorum
    /// request, and requests from another cluster are refused. Empty: not
    /// checked.
    pub cluster_id: String,
    /// This node's metadata directory id (`directory.id` in
    /// `meta.properties`): an observer tells the leader (DescribeQuorum
    /// shows it). The members of a dynamic quorum carry theirs in
    /// [`QuorumNode`].
    pub directory_id: Option<uuid::Uuid>,
}

impl Default for QuorumOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            check_quorum: Duration::from_millis(3000),
            snapshot_every: 1000,
            logs_kept_after_snapshot: 1000,
            cluster_id: String::new(),
            directory_id: None,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct Inner {
    raft: Raft,
    /// This node's cluster id (see [`QuorumOptions::cluster_id`]).
    cluster_id: String,
    /// The active controller's handler for requests forwarded to this node.
    forward: network::ForwardSlot,
    /// The handler of Kafka-protocol connections on the controller listener.
    kafka: network::KafkaSlot,
    /// Set (once) when the raft core stopped on its own: a storage error or
    /// another fatal condition. The broker must not go on as if healthy.
    fatal: watch::Sender<Option<String>>,
    tx: watch::Sender<Arc<ClusterImage>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    shut_down: AtomicBool,
    /// Whether this open initialized a new metadata log (the analogue of
    /// `kafka-storage format`).
    formatted: AtomicBool,
    /// Set while this node leads the raft but failed check-quorum: it does
    /// not act, or answer, as the active controller.
    resigned: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let tasks = self.tasks.get_mut().unwrap_or_else(|e| e.into_inner());
        for t in tasks.drain(..) {
            t.abort();
        }
    }
}

/// One voter of the metadata quorum.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VoterStatus {
    /// Node id.
    pub node_id: i32,
    /// Controller listener address.
    pub addr: String,
    /// Its metadata directory id, when known (KIP-853).
    #[serde(default)]
    pub directory_id: Option<uuid::Uuid>,
    /// A dynamic voter's controller listeners, `(name, host, port)`.
    #[serde(default)]
    pub endpoints: Vec<(String, String, u16)>,
    /// The end of its metadata log as the leader knows it (-1 unknown).
    pub log_end: i64,
}

/// The metadata quorum's state (DescribeQuorum).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QuorumStatus {
    /// The leader, if known.
    pub leader: Option<i32>,
    /// The raft term (Kafka's leader epoch of the metadata partition).
    pub term: u64,
    /// The end of the applied (committed) metadata log.
    pub high_watermark: i64,
    /// The voters.
    pub voters: Vec<VoterStatus>,
    /// The observers: broker-only nodes following the log (raft learners).
    #[serde(default)]
    pub observers: Vec<VoterStatus>,
}

/// How this node takes part in the metadata quorum.
#[derive(Debug, Clone)]
enum QuorumRole {
    /// A voter (`process.roles` has `controller`), with the static voters.
    Voter(Vec<(i32, String)>),
    /// An observer (`process.roles=broker`): a learner the leader adds.
    Observer {
        contact: Vec<String>,
        bind_host: String,
        advertised_host: String,
    },
    /// A controller of a dynamic quorum (KIP-853,
    /// `controller.quorum.bootstrap.servers`): it listens on its controller
    /// listener (`own.addr`), follows the log as an observer until
    /// AddRaftVoter makes it a voter; `standalone` forms a quorum of one
    /// with it on first start (`kafka-storage format --standalone`).
    Dynamic {
        own: QuorumNode,
        contact: Vec<String>,
        standalone: bool,
    },
}

/// An observer's loop: while the membership it has does not list this node
/// at `own` (first start, a new port after a restart, or not replicated to
/// yet), ask the voters at `contact` (following leader hints) to add it.
async fn follow(raft: Raft, me: u64, own: QuorumNode, contact: Vec<String>, cluster: String) {
    use std::collections::VecDeque;
    let mut failures: u64 = 0;
    loop {
        let joined = {
            let m = raft.metrics();
            let b = m.borrow();
            let mem = b.membership_config.membership();
            // A voter (of a dynamic quorum) takes part in elections itself.
            mem.voter_ids().any(|v| v == me)
                || (mem.get_node(&me) == Some(&own) && b.current_leader.is_some())
        };
        if joined {
            failures = 0;
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        let mut targets: VecDeque<String> = contact.iter().cloned().collect();
        let mut errors = Vec::new();
        let mut added = None;
        let mut tries = 0;
        while let Some(addr) = targets.pop_front() {
            tries += 1;
            if tries > 2 * contact.len() + 2 {
                break;
            }
            match network::request_join(&addr, &cluster, me, &own, Duration::from_secs(5)).await {
                Ok(network::JoinReply::Added) => {
                    added = Some(addr);
                    break;
                }
                Ok(network::JoinReply::NotLeader(Some(l))) => targets.push_front(l),
                Ok(network::JoinReply::NotLeader(None)) => {
                    errors.push(format!("{addr}: no leader elected yet"))
                }
                Ok(network::JoinReply::Refused(why)) => {
                    tracing::error!(controller = %addr, "the metadata quorum refuses this node as an observer: {why}");
                    errors.push(format!("{addr}: {why}"));
                }
                Ok(network::JoinReply::Retry(why)) => errors.push(format!("{addr}: {why}")),
                Err(e) => errors.push(format!("{addr}: {e}")),
            }
        }
        match added {
            Some(addr) => {
                if failures > 0 || !errors.is_empty() {
                    tracing::info!(leader = %addr, "joined the metadata quorum as an observer");
                }
                failures = 0;
                // Wait for the membership entry to reach this node.
                let mut m = raft.metrics();
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    m.wait_for(|b| {
                        b.membership_config.membership().get_node(&me) == Some(&own)
                            && b.current_leader.is_some()
                    }),
                )
                .await;
            }
            None => {
                failures += 1;
                if failures == 1 || failures % 10 == 0 {
                    tracing::warn!(
                        controllers = ?contact,
                        ?errors,
                        "cannot reach the active controller of the metadata quorum; retrying (this broker does not serve until it has the metadata)"
                    );
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// How long a restarted voter stays out of elections at most while a
/// majority says it has a live leader.
const QUIET_START_MAX: Duration = Duration::from_secs(30);

/// A restarted voter's start without disruption (the aim of Kafka's
/// pre-vote, KIP-996, which openraft 0.9 lacks): it takes no part in
/// elections until the leader has reached it, or a majority of the voters
/// (itself included) says it has heard from no leader within `window`
/// (probed over the raft listener), or [`QUIET_START_MAX`] passed. Without
/// it, a voter the leader cannot reach yet (its new pod's DNS name is not
/// published yet) times out, wins an election with a higher term, and the
/// brokers, which cannot reach it either, lose their sessions: a rolling
/// restart of the controllers fenced every broker.
async fn quiet_start(
    raft: Raft,
    me: u64,
    cluster: String,
    heard: network::HeardSlot,
    started_ms: i64,
    window: Duration,
) {
    let until = tokio::time::Instant::now() + QUIET_START_MAX;
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let why = loop {
        if heard.load(Ordering::Acquire) >= started_ms {
            break "the leader reached this voter";
        }
        if tokio::time::Instant::now() >= until {
            break "no leader reached this voter in time";
        }
        let peers: Vec<String> = {
            let m = raft.metrics();
            let b = m.borrow();
            let mem = b.membership_config.membership();
            mem.voter_ids()
                .filter(|v| *v != me)
                .filter_map(|v| mem.get_node(&v).map(|n| n.addr.clone()))
                .collect()
        };
        let asks = peers
            .iter()
            .map(|p| network::probe_leader(p, &cluster, Duration::from_millis(500)));
        let answers = futures::future::join_all(asks).await;
        if may_campaign(&answers, window_ms) {
            break "a majority of the voters has no live leader";
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tracing::info!(
        reason = why,
        "metadata quorum: this restarted voter takes part in elections"
    );
    raft.runtime_config().elect(true);
}

/// Whether this voter may campaign, by the other voters' answers to a
/// leader probe (ms since they last heard from a leader): as a pre-vote
/// (KIP-996), a voter grants when it has heard from no leader within
/// `window_ms`; one that does not answer (down, or an older version) does
/// not. With its own grant, a majority of the voters must grant.
fn may_campaign(answers: &[std::io::Result<Option<i64>>], window_ms: i64) -> bool {
    let grants = 1 + answers
        .iter()
        .filter(|a| matches!(a, Ok(None)) || matches!(a, Ok(Some(ago)) if *ago > window_ms))
        .count();
    grants * 2 > answers.len() + 1
}

/// A handle to the metadata quorum.
#[derive(Clone)]
pub struct MetadataQuorum {
    inner: Arc<Inner>,
}

/// Sets the image's controller id, notifying subscribers only on change.
fn set_controller(tx: &watch::Sender<Arc<ClusterImage>>, leader: Option<i32>) {
    tx.send_if_modified(|cur| {
        if cur.controller_id == leader {
            return false;
        }
        Arc::make_mut(cur).controller_id = leader;
        true
    });
}

impl MetadataQuorum {
    /// Opens (creating on first start) the quorum whose state lives in `dir`.
    pub async fn open(
        dir: &Path,
        node_id: i32,
        voters: Vec<(i32, String)>,
    ) -> Result<Self, MetadataError> {
        Self::open_with(dir, node_id, voters, QuorumOptions::default()).await
    }

    /// [`Self::open`] with explicit tunables.
    pub async fn open_with(
        dir: &Path,
        node_id: i32,
        voters: Vec<(i32, String)>,
        opts: QuorumOptions,
    ) -> Result<Self, MetadataError> {
        Self::open_as(dir, node_id, QuorumRole::Voter(voters), opts).await
    }

    /// Opens the quorum as an observer (a broker-only node): a raft learner
    /// that never votes. It listens for the leader's replication on an
    /// ephemeral port of `bind_host`, advertised as `advertised_host`, and
    /// asks the voters at `contact` (`controller.quorum.voters` or
    /// `controller.quorum.bootstrap.servers`) to add it, until the leader has,
    /// and again whenever its address is not in the membership.
    pub async fn open_observer(
        dir: &Path,
        node_id: i32,
        contact: Vec<String>,
        bind_host: String,
        advertised_host: String,
        opts: QuorumOptions,
    ) -> Result<Self, MetadataError> {
        let role = QuorumRole::Observer {
            contact,
            bind_host,
            advertised_host,
        };
        Self::open_as(dir, node_id, role, opts).await
    }

    /// Opens the quorum as a controller of a dynamic quorum (KIP-853): it
    /// serves the quorum on `own.addr` (its controller listener) and asks
    /// the controllers at `contact` (`controller.quorum.bootstrap.servers`)
    /// to let it follow the log as an observer until AddRaftVoter makes it a
    /// voter. `standalone`: on an empty log, form a quorum of one with this
    /// node (`kafka-storage format --standalone`); ignored once the log
    /// holds a membership.
    pub async fn open_dynamic(
        dir: &Path,
        node_id: i32,
        own: QuorumNode,
        contact: Vec<String>,
        standalone: bool,
        opts: QuorumOptions,
    ) -> Result<Self, MetadataError> {
        let role = QuorumRole::Dynamic {
            own,
            contact,
            standalone,
        };
        Self::open_as(dir, node_id, role, opts).await
    }

    async fn open_as(
        dir: &Path,
        node_id: i32,
        role: QuorumRole,
        opts: QuorumOptions,
    ) -> Result<Self, MetadataError> {
        let raft_id = to_raft_id(node_id).ok_or_else(|| {
            MetadataError::InvalidConfig(format!("node id {node_id} is negative"))
        })?;
        let mut members = BTreeMap::new();
        let voters = match &role {
            QuorumRole::Voter(v) => v.clone(),
            QuorumRole::Observer { .. } | QuorumRole::Dynamic { .. } => Vec::new(),
        };
        for (id, addr) in &voters {
            let rid = to_raft_id(*id).ok_or_else(|| {
                MetadataError::InvalidConfig(format!("voter id {id} is negative"))
            })?;
            if members.insert(rid, QuorumNode::new(addr.clone())).is_some() {
                return Err(MetadataError::InvalidConfig(format!(
                    "voter {id} is listed twice"
                )));
            }
        }
        let (listener, own_addr) = match &role {
            QuorumRole::Voter(_) => {
                let Some(own) = members.get(&raft_id) else {
                    return Err(MetadataError::InvalidConfig(format!(
                        "node {node_id} is not among the controller quorum voters"
                    )));
                };
                let l = network::bind(&own.addr).await.map_err(|e| {
                    MetadataError::Network(format!(
                        "cannot bind controller listener {}: {e}",
                        own.addr
                    ))
                })?;
                (l, own.addr.clone())
            }
            QuorumRole::Observer {
                bind_host,
                advertised_host,
                ..
            } => {
                let bind = format!("{bind_host}:0");
                let l = network::bind(&bind).await.map_err(|e| {
                    MetadataError::Network(format!(
                        "cannot bind the metadata observer listener {bind}: {e}"
                    ))
                })?;
                let port = l
                    .local_addr()
                    .map_err(|e| MetadataError::Network(e.to_string()))?
                    .port();
                (l, format!("{advertised_host}:{port}"))
            }
            QuorumRole::Dynamic { own, .. } => {
                let l = network::bind(&own.addr).await.map_err(|e| {
                    MetadataError::Network(format!(
                        "cannot bind controller listener {}: {e}",
                        own.addr
                    ))
                })?;
                (l, own.addr.clone())
            }
        };

        let raft_dir = dir.join("raft");
        let (tx, _) = watch::channel(Arc::new(ClusterImage::default()));
        let (log_store, state_machine) = {
            let (d, tx) = (raft_dir.clone(), tx.clone());
            tokio::task::spawn_blocking(move || {
                let log = LogStore::open(&d)?;
                let sm = StateMachine::open(&d, tx)?;
                Ok::<_, std::io::Error>((log, sm))
            })
            .await
            .map_err(|e| MetadataError::Storage(e.to_string()))?
            .map_err(|e| {
                MetadataError::Storage(format!("cannot open {}: {e}", raft_dir.display()))
            })?
        };

        let config = Config {
            cluster_name: "runnel-metadata".to_string(),
            heartbeat_interval: millis(opts.heartbeat),
            election_timeout_min: millis(opts.election_timeout_min),
            election_timeout_max: millis(opts.election_timeout_max),
            install_snapshot_timeout: 1000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(opts.snapshot_every),
            max_in_snapshot_log_to_keep: opts.logs_kept_after_snapshot,
            // A voter of several starts without elections: see `quiet_start`.
            enable_elect: !matches!(&role, QuorumRole::Voter(v) if v.len() > 1),
            ..Default::default()
        }
        .validate()
        .map_err(|e| MetadataError::InvalidConfig(e.to_string()))?;

        let raft = Raft::new(
            raft_id,
            Arc::new(config),
            NetworkFactory {
                node_id: raft_id,
                cluster: opts.cluster_id.clone(),
            },
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| MetadataError::Storage(e.to_string()))?;

        let (fatal, _) = watch::channel(None);
        let forward: network::ForwardSlot = Arc::new(std::sync::OnceLock::new());
        let kafka: network::KafkaSlot = Arc::new(std::sync::OnceLock::new());
        let heard: network::HeardSlot = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let started_ms = crate::clock::now_ms();
        let mut tasks = vec![network::serve(
            listener,
            raft.clone(),
            forward.clone(),
            kafka.clone(),
            (
                opts.cluster_id.clone(),
                match &role {
                    QuorumRole::Dynamic { own, .. } => own.directory_id,
                    _ => opts.directory_id,
                },
            ),
            tx.subscribe(),
            heard.clone(),
        )];
        let resigned = Arc::new(AtomicBool::new(false));
        tasks.push(tokio::spawn({
            let mut metrics = raft.metrics();
            let tx = tx.clone();
            let fatal = fatal.clone();
            let resigned = resigned.clone();
            let mut check = check_quorum::CheckQuorum::new(opts.check_quorum);
            // Re-checked at least this often: metrics need not change while
            // a leader hears from nobody.
            let recheck = (opts.check_quorum / 4).clamp(
                Duration::from_millis(10),
                Duration::from_millis(250),
            );
            // A voter's static `controller.quorum.voters`, to compare with
            // the voter set the metadata log holds.
            let configured: Option<std::collections::BTreeSet<u64>> = match &role {
                QuorumRole::Voter(_) => Some(members.keys().copied().collect()),
                QuorumRole::Observer { .. } | QuorumRole::Dynamic { .. } => None,
            };
            let mut reported = None;
            async move {
                loop {
                    let (leader, stopped) = {
                        let m = metrics.borrow_and_update();
                        let in_log: std::collections::BTreeSet<u64> =
                            m.membership_config.membership().voter_ids().collect();
                        if let Some(conf) = &configured {
                            if !in_log.is_empty() && *conf != in_log && reported.as_ref() != Some(&in_log) {
                                tracing::error!(
                                    configured = ?conf,
                                    quorum = ?in_log,
                                    "controller.quorum.voters on this node disagrees with the voters in the metadata log; the log's voters are used: make controller.quorum.voters the same on every node"
                                );
                                reported = Some(in_log.clone());
                            }
                        }
                        let stopped = match &m.running_state {
                            Err(Fatal::Stopped) | Ok(()) => None,
                            Err(e) => Some(e.to_string()),
                        };
                        let contact = check_quorum::Contact {
                            leading: m.current_leader == Some(raft_id)
                                && m.state == openraft::ServerState::Leader,
                            voters: in_log.len(),
                            since_quorum_ack: m.millis_since_quorum_ack.map(Duration::from_millis),
                        };
                        match check.observe(contact, std::time::Instant::now()) {
                            check_quorum::Verdict::Resigned => tracing::warn!(
                                timeout_ms = opts.check_quorum.as_millis() as u64,
                                since_quorum_ack_ms = ?m.millis_since_quorum_ack,
                                "check-quorum: no majority of the metadata voters has answered this leader; it stops acting as the active controller until one does"
                            ),
                            check_quorum::Verdict::Regained => tracing::info!(
                                "check-quorum: a majority of the metadata voters answers again; acting as the active controller"
                            ),
                            check_quorum::Verdict::Same => {}
                        }
                        resigned.store(check.resigned(), Ordering::Release);
                        let leader = m.current_leader.and_then(to_kafka_id);
                        (if check.resigned() { None } else { leader }, stopped)
                    };
                    set_controller(&tx, leader);
                    if let Some(why) = stopped {
                        tracing::error!(error = %why, "the metadata quorum stopped on a fatal error");
                        set_controller(&tx, None);
                        fatal.send_replace(Some(why));
                        break;
                    }
                    tokio::select! {
                        changed = metrics.changed() => if changed.is_err() { break },
                        _ = tokio::time::sleep(recheck) => {}
                    }
                }
            }
        }));
        let quorum = Self {
            inner: Arc::new(Inner {
                raft: raft.clone(),
                cluster_id: opts.cluster_id.clone(),
                forward,
                kafka,
                fatal,
                tx,
                tasks: Mutex::new(tasks),
                shut_down: AtomicBool::new(false),
                formatted: AtomicBool::new(false),
                resigned,
            }),
        };

        if let QuorumRole::Dynamic {
            own,
            contact,
            standalone,
        } = &role
        {
            let initialized = raft
                .is_initialized()
                .await
                .map_err(|e| MetadataError::Storage(e.to_string()))?;
            if !initialized && *standalone {
                tracing::info!(node_id, addr = %own.addr, "initializing a dynamic metadata quorum with this controller as its only voter (standalone)");
                match raft
                    .initialize(BTreeMap::from([(raft_id, own.clone())]))
                    .await
                {
                    Ok(()) => quorum.inner.formatted.store(true, Ordering::SeqCst),
                    Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                    Err(e) => return Err(MetadataError::Storage(e.to_string())),
                }
            }
            let lone_voter = raft
                .with_raft_state(move |st| {
                    let v: Vec<u64> = st.membership_state.effective().voter_ids().collect();
                    v == [raft_id]
                })
                .await
                .map_err(|e| MetadataError::Storage(e.to_string()))?;
            if lone_voter {
                let wait = raft.wait(Some(Duration::from_secs(10)));
                match wait
                    .current_leader(raft_id, "lone voter becomes leader")
                    .await
                {
                    Ok(m) => {
                        set_controller(&quorum.inner.tx, m.current_leader.and_then(to_kafka_id))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the lone metadata voter did not become leader")
                    }
                }
            }
            tracing::info!(node_id, addr = %own.addr, ?contact, "metadata quorum: a controller of a dynamic quorum (controller.quorum.bootstrap.servers)");
            let task = tokio::spawn(follow(
                raft.clone(),
                raft_id,
                own.clone(),
                contact.clone(),
                opts.cluster_id.clone(),
            ));
            quorum
                .inner
                .tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(task);
            return Ok(quorum);
        }
        if let QuorumRole::Observer { contact, .. } = role {
            tracing::info!(node_id, addr = %own_addr, ?contact, "metadata quorum: this node is an observer (process.roles=broker)");
            let own = QuorumNode {
                addr: own_addr,
                directory_id: opts.directory_id,
                endpoints: Vec::new(),
            };
            let task = tokio::spawn(follow(
                raft.clone(),
                raft_id,
                own,
                contact,
                opts.cluster_id.clone(),
            ));
            quorum
                .inner
                .tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(task);
            return Ok(quorum);
        }
        let stored: Vec<u64> = raft
            .with_raft_state(|st| st.membership_state.effective().voter_ids().collect())
            .await
            .map_err(|e| MetadataError::Storage(e.to_string()))?;
        if !stored.is_empty() && !stored.iter().eq(members.keys()) {
            tracing::warn!(
                ?stored,
                configured = ?members.keys().collect::<Vec<_>>(),
                "stored quorum membership differs from the configured voters; using the stored one"
            );
        }
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| MetadataError::Storage(e.to_string()))?;
        let lowest = members.keys().next().copied();
        if !initialized && lowest == Some(raft_id) {
            tracing::info!(node_id, voters = ?voters, "initializing the metadata quorum");
            match raft.initialize(members.clone()).await {
                Ok(()) => quorum.inner.formatted.store(true, Ordering::SeqCst),
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(MetadataError::Storage(e.to_string())),
            }
        }
        if members.len() > 1 {
            if initialized {
                let task = tokio::spawn(quiet_start(
                    raft.clone(),
                    raft_id,
                    opts.cluster_id.clone(),
                    heard.clone(),
                    started_ms,
                    opts.election_timeout_max * 4,
                ));
                quorum
                    .inner
                    .tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(task);
            } else {
                raft.runtime_config().elect(true);
            }
        }
        if members.len() == 1 {
            // A single voter elects itself within one election timeout; wait so
            // that the first proposals do not see NotController.
            let wait = raft.wait(Some(Duration::from_secs(10)));
            match wait
                .current_leader(raft_id, "single voter becomes leader")
                .await
            {
                Ok(m) => set_controller(&quorum.inner.tx, m.current_leader.and_then(to_kafka_id)),
                Err(e) => tracing::warn!(error = %e, "single metadata voter did not become leader"),
            }
        }
        tracing::info!(node_id, dir = %dir.display(), "metadata quorum open");
        Ok(quorum)
    }

    /// Commits `records` as one atomic batch and returns once they are applied
    /// to the local image.
    pub async fn propose(&self, records: Vec<MetadataRecord>) -> Result<(), MetadataError> {
        if self.inner.shut_down.load(Ordering::Acquire) {
            return Err(MetadataError::Shutdown);
        }
        if let Some(why) = self.inner.fatal.borrow().clone() {
            return Err(MetadataError::Storage(format!(
                "the metadata quorum has stopped: {why}"
            )));
        }
        if self.inner.resigned.load(Ordering::Acquire) {
            return Err(MetadataError::NotController);
        }
        let size = serde_json::to_vec(&records)
            .map_err(|e| MetadataError::Storage(format!("cannot encode metadata records: {e}")))?
            .len();
        if size > MAX_PROPOSAL_BYTES {
            return Err(MetadataError::TooLarge {
                size,
                limit: MAX_PROPOSAL_BYTES,
            });
        }
        let resp = match self.inner.raft.client_write(RecordBatch(records)).await {
            Ok(r) => r,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                return Err(MetadataError::NotController)
            }
            Err(RaftError::APIError(e)) => return Err(MetadataError::Storage(e.to_string())),
            Err(RaftError::Fatal(Fatal::Stopped)) => return Err(MetadataError::Shutdown),
            Err(RaftError::Fatal(e)) => return Err(MetadataError::Storage(e.to_string())),
        };
        // openraft answers after applying; make sure the image shows it.
        let index = resp.log_id.index;
        let mut rx = self.inner.tx.subscribe();
        rx.wait_for(|img| img.last_applied >= index)
            .await
            .map_err(|_| MetadataError::Shutdown)?;
        Ok(())
    }

    /// Whether opening this quorum created the cluster's metadata log (once
    /// per cluster, on the lowest voter), so that the bootstrap records
    /// `kafka-storage format` writes are due.
    pub fn newly_formatted(&self) -> bool {
        self.inner.formatted.load(Ordering::SeqCst)
    }

    /// Installs the handler that serves controller requests forwarded to
    /// this node (once; later calls are ignored).
    pub fn set_forward_handler(&self, h: network::ForwardHandler) {
        let _ = self.inner.forward.set(h);
    }

    /// Installs the handler of Kafka-protocol connections arriving on the
    /// controller listener (once; later calls are ignored).
    pub fn set_kafka_handler(&self, h: network::KafkaHandler) {
        let _ = self.inner.kafka.set(h);
    }

    /// The current quorum leader (the active controller), if known.
    pub fn leader(&self) -> Option<i32> {
        if self.inner.resigned.load(Ordering::Acquire) {
            return None;
        }
        self.inner
            .raft
            .metrics()
            .borrow()
            .current_leader
            .and_then(to_kafka_id)
    }

    /// The quorum as this node sees it (Kafka's DescribeQuorum); the
    /// voters' progress is known only on the leader.
    pub fn status(&self) -> QuorumStatus {
        let m = self.inner.raft.metrics();
        let b = m.borrow();
        let membership = b.membership_config.membership();
        let replication = b.replication.clone().unwrap_or_default();
        let describe = |id: u64| {
            let kid = to_kafka_id(id)?;
            let node = membership.get_node(&id).cloned().unwrap_or_default();
            let end = if Some(id) == b.current_leader {
                b.last_log_index.map(|i| i as i64 + 1)
            } else {
                replication
                    .get(&id)
                    .and_then(|l| l.as_ref())
                    .map(|l| l.index as i64 + 1)
            };
            Some(VoterStatus {
                node_id: kid,
                addr: node.addr,
                directory_id: node.directory_id,
                endpoints: node.endpoints,
                log_end: end.unwrap_or(-1),
            })
        };
        let resigned = self.inner.resigned.load(Ordering::Acquire);
        QuorumStatus {
            leader: b.current_leader.filter(|_| !resigned).and_then(to_kafka_id),
            term: b.current_term,
            high_watermark: b.last_applied.map(|l| l.index as i64 + 1).unwrap_or(0),
            voters: membership.voter_ids().filter_map(describe).collect(),
            observers: membership.learner_ids().filter_map(describe).collect(),
        }
    }

    /// Waits until the leader may have changed (or `max` passes).
    pub async fn leader_changed(&self, max: Duration) {
        let mut m = self.inner.raft.metrics();
        let before = m.borrow_and_update().current_leader;
        let _ = tokio::time::timeout(max, m.wait_for(|x| x.current_leader != before)).await;
    }

    /// Sends a controller request to voter `to` over the controller
    /// listener. `Ok(None)`: that node has no controller handler.
    pub async fn forward(
        &self,
        to: i32,
        payload: serde_json::Value,
        timeout: Duration,
    ) -> Result<Option<serde_json::Value>, MetadataError> {
        let rid = to_raft_id(to)
            .ok_or_else(|| MetadataError::InvalidConfig(format!("node id {to} is negative")))?;
        let addr = {
            let m = self.inner.raft.metrics();
            let b = m.borrow();
            b.membership_config
                .membership()
                .get_node(&rid)
                .map(|n| n.addr.clone())
        };
        let Some(addr) = addr else {
            return Err(MetadataError::NotController);
        };
        network::forward(&addr, &self.inner.cluster_id, payload, timeout)
            .await
            .map_err(|e| MetadataError::Network(format!("controller {to} at {addr}: {e}")))
    }

    /// Waits until this node, as leader, has applied everything committed
    /// before now (so the controller validates against a current image).
    pub async fn ensure_caught_up(&self) -> Result<(), MetadataError> {
        if self.inner.resigned.load(Ordering::Acquire) {
            return Err(MetadataError::NotController);
        }
        match self.inner.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(_)) => Err(MetadataError::NotController),
            Err(RaftError::Fatal(e)) => Err(MetadataError::Storage(e.to_string())),
        }
    }

    /// A receiver that holds `Some(reason)` once the raft core stopped on a
    /// fatal error (never on an orderly [`Self::shutdown`]).
    pub fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.inner.fatal.subscribe()
    }

    /// The latest applied image.
    pub fn image(&self) -> Arc<ClusterImage> {
        self.inner.tx.borrow().clone()
    }

    /// A receiver notified on every applied change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterImage>> {
        self.inner.tx.subscribe()
    }

    /// Stops the quorum, flushing state.
    pub async fn shutdown(&self) -> Result<(), MetadataError> {
        if self.inner.shut_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
            // Wait for the abort, so the controller port is free on return.
            let _ = t.await;
        }
        self.inner
            .raft
            .shutdown()
            .await
            .map_err(|e| MetadataError::Storage(format!("raft shutdown failed: {e}")))?;
        set_controller(&self.inner.tx, None);
        tracing::info!("metadata quorum shut down");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use uuid::Uuid;

    use super::*;
    use crate::metadata::PartitionAssignment;

    fn topic(name: &str) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.to_string(),
            topic_id: Uuid::new_v4(),
            partitions: vec![PartitionAssignment {
                partition: 0,
                replicas: vec![1],
            }],
            configs: BTreeMap::new(),
        }
    }

    fn single(port_hint: &str) -> Vec<(i32, String)> {
        vec![(1, port_hint.to_string())]
    }

    async fn wait_for(q: &MetadataQuorum, what: &str, f: impl Fn(&ClusterImage) -> bool) {
        let mut rx = q.subscribe();
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|img| f(img)))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("quorum alive");
    }

    fn big_config(bytes: usize) -> MetadataRecord {
        MetadataRecord::AlterBrokerConfigs {
            node_id: None,
            changes: BTreeMap::from([(
                "leader.replication.throttled.replicas".to_string(),
                Some("0:1,".repeat(bytes / 4)),
            )]),
        }
    }

    #[tokio::test]
    async fn a_proposal_too_large_for_one_entry_is_refused_and_the_quorum_lives_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = MetadataQuorum::open(dir.path(), 1, single("127.0.0.1:0"))
            .await
            .expect("open");
        let before = q.image().last_applied;
        match q.propose(vec![big_config(MAX_PROPOSAL_BYTES + 1024)]).await {
            Err(MetadataError::TooLarge { size, limit }) => {
                assert!(size > limit && limit == MAX_PROPOSAL_BYTES)
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(q.image().last_applied, before, "nothing was committed");
        q.propose(vec![topic("after")])
            .await
            .expect("still serving");
        assert!(q.image().topics.contains_key("after"));
        assert!(q.fatal().borrow().is_none());
        q.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn a_raft_core_that_stops_on_a_storage_error_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = MetadataQuorum::open(dir.path(), 1, single("127.0.0.1:0"))
            .await
            .expect("open");
        // Bypass propose()'s size check: an entry over the log's frame limit
        // makes the log store fail, which stops openraft's core for good.
        let huge = RecordBatch(vec![big_config(frame::MAX_PAYLOAD + 1024)]);
        assert!(q.inner.raft.client_write(huge).await.is_err());
        let mut fatal = q.fatal();
        tokio::time::timeout(Duration::from_secs(10), fatal.wait_for(Option::is_some))
            .await
            .expect("fatal reported within 10 s")
            .expect("sender alive");
        match q.propose(vec![topic("after")]).await {
            Err(MetadataError::Storage(m)) => assert!(m.contains("stopped"), "{m}"),
            other => panic!("expected a storage error, got {other:?}"),
        }
        assert_eq!(q.image().controller_id, None, "no controller is advertised");
    }

    #[tokio::test]
    async fn single_voter_leads_and_applies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = MetadataQuorum::open(dir.path(), 1, single("127.0.0.1:0"))
            .await
            .expect("open");
        assert_eq!(q.image().controller_id, Some(1));
        q.propose(vec![topic("a"), topic("b")])
            .await
            .expect("propose");
        let img = q.image();
        assert!(img.topics.contains_key("a") && img.topics.contains_key("b"));
        let applied = img.last_applied;
        assert!(applied > 0);
        q.propose(vec![topic("c")]).await.expect("propose");
        assert_eq!(
            q.image().last_applied,
            applied + 1,
            "one batch is one entry"
        );
        q.shutdown().await.expect("shutdown");
        assert!(matches!(
            q.propose(vec![topic("d")]).await,
            Err(MetadataError::Shutdown)
        ));
    }

    #[tokio::test]
    async fn bind_failure_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr").to_string();
        let res = MetadataQuorum::open(dir.path(), 1, single(&addr)).await;
        assert!(matches!(res, Err(MetadataError::Network(_))));
    }

    #[tokio::test]
    async fn state_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = MetadataQuorum::open(dir.path(), 1, single("127.0.0.1:0"))
            .await
            .expect("open");
        for i in 0..5 {
            q.propose(vec![topic(&format!("t{i}"))])
                .await
                .expect("propose");
        }
        let before = q.image();
        q.shutdown().await.expect("shutdown");
        drop(q);

        let q = MetadataQuorum::open(dir.path(), 1, single("127.0.0.1:0"))
            .await
            .expect("reopen");
        // Committed entries are re-applied while opening (the committed log id
        // is saved), so the image is complete on return.
        let after = q.image();
        assert!(after.last_applied >= before.last_applied);
        assert_eq!(after.topics, before.topics);
        q.propose(vec![topic("more")])
            .await
            .expect("propose after reopen");
        assert!(q.image().last_applied > before.last_applied);
        q.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn torn_tail_is_recovered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = MetadataQuorum::open(dir.path(), 1, single("127.0.0.1:0"))
            .await
            .expect("open");
        for i in 0..3 {
            q.propose(vec![topic(&format!("t{i}"))])
                .await
                .expect("propose");
        }
        let before = q.image();
        q.shutdown().await.expect("shutdown");
        drop(q);

        // A crash mid-append: half a frame, then garbage.
        let log = dir.path().join("raft").join("log");
        let good_len = std::fs::metadata(&log).expect("log").len();
        let frame = frame::encode(br#"{"Entry":{"log_id":"not really"}}"#).expect("frame");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("open log");
        f.write_all(&frame[..frame.len() / 2]).expect("write");
        drop(f);

        let q = MetadataQuorum::open(dir.path(), 1, single("127.0.0.1:0"))
            .await
            .expect("reopen");
        assert!(std::fs::metadata(&log).expect("log").len() >= good_len);
        wait_for(&q, "recovered image", |img| {
            img.last_applied >= before.last_applied
        })
        .await;
        assert_eq!(q.image().topics, before.topics);
        q.propose(vec![topic("after")]).await.expect("propose");
        let after = q.image();
        q.shutdown().await.expect("shutdown");
        drop(q);

        // The repaired file is consistent for the next start too.
        let q = MetadataQuorum::open(dir.path(), 1, single("127.0.0.1:0"))
            .await
            .expect("reopen 2");
        wait_for(&q, "image", |img| img.last_applied >= after.last_applied).await;
        assert_eq!(q.image().topics, after.topics);
        q.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn snapshot_and_purge_then_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = QuorumOptions {
            snapshot_every: 5,
            logs_kept_after_snapshot: 0,
            ..Default::default()
        };
        let q = MetadataQuorum::open_with(dir.path(), 1, single("127.0.0.1:0"), opts.clone())
            .await
            .expect("open");
        for i in 0..23 {
            q.propose(vec![topic(&format!("t{i}"))])
                .await
                .expect("propose");
        }
        // openraft purges after a snapshot is built, which may be after the
        // last write: on a busy machine keep writing until it has.
        let metrics = q.inner.raft.metrics();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut pad = 0;
        while metrics.borrow().purged.is_none_or(|p| p.index < 15)
            || metrics.borrow().snapshot.is_none()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "snapshot and purge in time"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            q.propose(vec![topic(&format!("pad{pad}"))])
                .await
                .expect("propose");
            pad += 1;
        }
        drop(metrics);
        let before = q.image();
        q.shutdown().await.expect("shutdown");
        drop(q);
        assert!(dir.path().join("raft").join("snapshot").exists());
        {
            use openraft::storage::RaftLogStorage;
            let mut log = LogStore::open(&dir.path().join("raft")).expect("log store");
            let st = log.get_log_state().await.expect("log state");
            let purged = st.last_purged_log_id.expect("purged").index;
            let last = st.last_log_id.expect("last").index;
            assert!(purged >= 15, "purged up to {purged}");
            assert!(last - purged < 10, "log holds {} entries", last - purged);
        }

        let q = MetadataQuorum::open_with(dir.path(), 1, single("127.0.0.1:0"), opts)
            .await
            .expect("reopen");
        let after = q.image();
        assert!(after.last_applied >= before.last_applied);
        assert_eq!(after.topics, before.topics);
        assert_eq!(after.topic_names, before.topic_names);
        q.propose(vec![topic("post")]).await.expect("propose");
        assert!(q.image().topics.contains_key("post"));
        q.shutdown().await.expect("shutdown");
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    }

    /// A data directory each for voters 1, 2 and 3 on free loopback ports.
    fn three_voters_on_loopback() -> (Vec<tempfile::TempDir>, Vec<(i32, String)>) {
        let dirs = (0..3)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let voters = (1..=3)
            .map(|id| (id, format!("127.0.0.1:{}", free_port())))
            .collect();
        (dirs, voters)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unregistered_observer_leaves_the_membership() {
        let dirs: Vec<tempfile::TempDir> = (0..2)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let addr = format!("127.0.0.1:{}", free_port());
        let voter = MetadataQuorum::open(dirs[0].path(), 1, vec![(1, addr.clone())])
            .await
            .expect("voter");
        let observer = MetadataQuorum::open_observer(
            dirs[1].path(),
            7,
            vec![addr],
            "127.0.0.1".into(),
            "127.0.0.1".into(),
            QuorumOptions::default(),
        )
        .await
        .expect("observer");
        wait_until("the observer joined", || {
            voter.status().observers.iter().any(|o| o.node_id == 7)
        })
        .await;
        // A voter is no observer: nothing to remove.
        assert!(!voter.remove_observer(1).await.expect("not an observer"));
        observer.shutdown().await.expect("shutdown");
        assert!(voter.remove_observer(7).await.expect("removed"));
        assert!(voter.status().observers.iter().all(|o| o.node_id != 7));
        assert_eq!(voter_ids(&voter), vec![1]);
        voter.shutdown().await.expect("shutdown");
    }

    /// Opens the first `n` of `voters` (in `dirs`) with `opts`.
    async fn open_voters(
        dirs: &[tempfile::TempDir],
        voters: &[(i32, String)],
        n: usize,
        opts: &QuorumOptions,
    ) -> Vec<MetadataQuorum> {
        let mut nodes = Vec::new();
        for (dir, (id, _)) in dirs.iter().zip(voters).take(n) {
            let q = MetadataQuorum::open_with(dir.path(), *id, voters.to_vec(), opts.clone())
                .await
                .expect("open voter");
            nodes.push(q);
        }
        nodes
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_voters_replicate() {
        let (dirs, voters) = three_voters_on_loopback();
        let nodes = open_voters(&dirs, &voters, 3, &QuorumOptions::default()).await;
        // Everyone agrees on a controller.
        for q in &nodes {
            wait_for(q, "a controller", |img| img.controller_id.is_some()).await;
        }
        let leader_id = nodes[0].image().controller_id.expect("leader");
        for q in &nodes {
            wait_for(q, "the same controller", |img| {
                img.controller_id == Some(leader_id)
            })
            .await;
        }
        let leader_pos = voters
            .iter()
            .position(|(id, _)| *id == leader_id)
            .expect("leader is a voter");
        let leader = &nodes[leader_pos];
        leader
            .propose(vec![topic("replicated")])
            .await
            .expect("propose on leader");
        let index = leader.image().last_applied;
        for q in &nodes {
            wait_for(q, "replicated topic", |img| {
                img.topics.contains_key("replicated") && img.last_applied >= index
            })
            .await;
        }
        let follower = &nodes[(leader_pos + 1) % nodes.len()];
        assert!(matches!(
            follower.propose(vec![topic("nope")]).await,
            Err(MetadataError::NotController)
        ));
        for q in &nodes {
            q.shutdown().await.expect("shutdown");
        }
    }

    #[test]
    fn a_restarted_voter_campaigns_only_when_a_majority_has_no_live_leader() {
        let live = || Ok(Some(10));
        let stale = || Ok(Some(60_000));
        let down = || Err(std::io::Error::other("refused"));
        // Three voters, the leader and another answer: stay quiet.
        assert!(!may_campaign(&[Ok(Some(0)), live()], 1200));
        // A live leader and one voter unreachable: the leader and this
        // voter make a majority once it reaches this one; stay quiet.
        assert!(!may_campaign(&[live(), down()], 1200));
        assert!(!may_campaign(&[down(), down()], 1200));
        // Neither has heard from a leader lately (a cold start): campaign.
        assert!(may_campaign(&[stale(), Ok(None)], 1200));
        assert!(may_campaign(&[Ok(None), Ok(None)], 1200));
        // Five voters: three grants of five are a majority, two are not.
        assert!(may_campaign(&[stale(), Ok(None), down(), live()], 1200));
        assert!(!may_campaign(&[live(), live(), down(), stale()], 1200));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_cut_off_from_its_voters_stops_acting_as_controller() {
        let (dirs, voters) = three_voters_on_loopback();
        let opts = QuorumOptions {
            check_quorum: Duration::from_millis(800),
            ..QuorumOptions::default()
        };
        let mut nodes = open_voters(&dirs, &voters, 3, &opts).await;
        for q in &nodes {
            wait_for(q, "a controller", |img| img.controller_id.is_some()).await;
        }
        let leader_id = nodes[0].image().controller_id.expect("leader");
        let pos = voters
            .iter()
            .position(|(id, _)| *id == leader_id)
            .expect("leader is a voter");
        let leader = nodes.remove(pos);
        // Still the leader well past the timeout while a majority answers.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(leader.leader(), Some(leader_id));
        for q in &nodes {
            q.shutdown().await.expect("shutdown");
        }
        wait_until("the cut-off leader to stop acting as controller", || {
            leader.leader().is_none()
        })
        .await;
        assert_eq!(leader.image().controller_id, None);
        assert_eq!(leader.status().leader, None);
        assert!(matches!(
            leader.propose(vec![topic("alone")]).await,
            Err(MetadataError::NotController)
        ));
        assert!(matches!(
            leader.ensure_caught_up().await,
            Err(MetadataError::NotController)
        ));
        leader.shutdown().await.expect("shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lagging_voter_catches_up_by_snapshot() {
        let (dirs, voters) = three_voters_on_loopback();
        let opts = QuorumOptions {
            snapshot_every: 4,
            logs_kept_after_snapshot: 0,
            ..Default::default()
        };
        let mut nodes = Vec::new();
        // Only voters 1 and 2 run at first: still a majority.
        for (i, (id, _)) in voters.iter().enumerate().take(2) {
            let q = MetadataQuorum::open_with(dirs[i].path(), *id, voters.clone(), opts.clone())
                .await
                .expect("open voter");
            nodes.push(q);
        }
        wait_for(&nodes[0], "a controller", |img| img.controller_id.is_some()).await;
        let leader_id = nodes[0].image().controller_id.expect("leader");
        let leader = nodes
            .iter()
            .find(|q| q.inner.raft.metrics().borrow().id == u64::try_from(leader_id).unwrap_or(0))
            .expect("leader runs")
            .clone();
        for i in 0..12 {
            leader
                .propose(vec![topic(&format!("t{i}"))])
                .await
                .expect("propose");
        }
        let mut metrics = leader.inner.raft.metrics();
        tokio::time::timeout(
            Duration::from_secs(10),
            metrics.wait_for(|m| m.purged.is_some_and(|p| p.index >= 8)),
        )
        .await
        .expect("purged in time")
        .expect("metrics");
        drop(metrics);
        let want = leader.image();

        let late = MetadataQuorum::open_with(dirs[2].path(), 3, voters.clone(), opts)
            .await
            .expect("open late voter");
        wait_for(&late, "snapshot installed", |img| {
            img.last_applied >= want.last_applied
        })
        .await;
        assert_eq!(late.image().topics, want.topics);
        assert!(late.inner.raft.metrics().borrow().snapshot.is_some());
        assert!(dirs[2].path().join("raft").join("snapshot").exists());
        late.shutdown().await.expect("shutdown");
        for q in &nodes {
            q.shutdown().await.expect("shutdown");
        }
    }

    fn dynamic_node(addr: &str) -> QuorumNode {
        let (host, port) = addr.rsplit_once(':').expect("host:port");
        QuorumNode {
            addr: addr.to_string(),
            directory_id: Some(crate::log::new_kafka_uuid()),
            endpoints: vec![(
                "CONTROLLER".to_string(),
                host.to_string(),
                port.parse().expect("port"),
            )],
        }
    }

    async fn wait_until(what: &str, f: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn voter_ids(q: &MetadataQuorum) -> Vec<i32> {
        q.status().voters.iter().map(|v| v.node_id).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dynamic_quorum_grows_from_a_standalone_voter_and_keeps_its_voters() {
        let (dirs, voters) = three_voters_on_loopback();
        let nodes: Vec<QuorumNode> = voters.iter().map(|(_, addr)| dynamic_node(addr)).collect();
        let addrs: Vec<String> = voters.iter().map(|(_, a)| a.clone()).collect();
        let contact = |i: usize| -> Vec<String> {
            addrs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, a)| a.clone())
                .collect()
        };
        let open = |i: usize, standalone: bool| {
            MetadataQuorum::open_dynamic(
                dirs[i].path(),
                i32::try_from(i + 1).unwrap_or(0),
                nodes[i].clone(),
                contact(i),
                standalone,
                QuorumOptions::default(),
            )
        };
        let q1 = open(0, true).await.expect("open standalone");
        assert_eq!(q1.leader(), Some(1));
        assert!(q1.is_dynamic());
        assert!(q1.newly_formatted());
        q1.propose(vec![topic("before")]).await.expect("propose");
        let dir = |i: usize| nodes[i].directory_id.unwrap_or_default();
        // The last voter cannot go.
        assert!(matches!(
            q1.remove_voter(1, dir(0)).await,
            Err(VoterChangeError::NotFound(_))
        ));
        let q2 = open(1, false).await.expect("open observer 2");
        let q3 = open(2, false).await.expect("open observer 3");
        wait_until("2 and 3 observe", || {
            let s = q1.status();
            s.observers.len() == 2 && s.observers.iter().all(|o| o.directory_id.is_some())
        })
        .await;
        let eps = |i: usize| nodes[i].endpoints.clone();
        // Another directory id: not the observer that follows the log.
        assert!(matches!(
            q1.add_voter(2, crate::log::new_kafka_uuid(), eps(1), "CONTROLLER")
                .await,
            Err(VoterChangeError::TimedOut(_))
        ));
        assert!(matches!(
            q1.add_voter(2, dir(1), eps(1), "OTHER").await,
            Err(VoterChangeError::Invalid(_))
        ));
        assert!(matches!(
            q2.add_voter(2, dir(1), eps(1), "CONTROLLER").await,
            Err(VoterChangeError::NotLeader)
        ));
        q1.add_voter(2, dir(1), eps(1), "CONTROLLER")
            .await
            .expect("add 2");
        assert!(matches!(
            q1.add_voter(2, dir(1), eps(1), "CONTROLLER").await,
            Err(VoterChangeError::Duplicate(_))
        ));
        q1.add_voter(3, dir(2), eps(2), "CONTROLLER")
            .await
            .expect("add 3");
        assert_eq!(voter_ids(&q1), vec![1, 2, 3]);
        for (id, d) in [(3, crate::log::new_kafka_uuid()), (9, dir(2))] {
            assert!(matches!(
                q1.remove_voter(id, d).await,
                Err(VoterChangeError::NotFound(_))
            ));
        }
        // The leader removes itself: 2 and 3 elect a new one.
        q1.remove_voter(1, dir(0)).await.expect("remove 1");
        wait_until("a new leader among 2 and 3", || {
            matches!(q2.leader(), Some(2) | Some(3)) && q2.leader() == q3.leader()
        })
        .await;
        let leader = if q2.leader() == Some(2) { &q2 } else { &q3 };
        leader.propose(vec![topic("after")]).await.expect("serves");
        for q in [&q1, &q2, &q3] {
            q.shutdown().await.expect("shutdown");
        }
        drop((q1, q2, q3));
        // The voter set is in the log: it survives a restart of everyone
        // (and --standalone on a non-empty log changes nothing).
        let q1 = open(0, true).await.expect("reopen 1");
        let q2 = open(1, false).await.expect("reopen 2");
        let q3 = open(2, false).await.expect("reopen 3");
        wait_until("a leader after the restart", || {
            matches!(q2.leader(), Some(2) | Some(3))
        })
        .await;
        assert_eq!(voter_ids(&q2), vec![2, 3]);
        for q in [&q1, &q2, &q3] {
            q.shutdown().await.expect("shutdown");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reformatted_voter_is_refused_as_the_voter_it_replaces() {
        let (dirs, voters) = three_voters_on_loopback();
        let nodes: Vec<QuorumNode> = voters.iter().map(|(_, a)| dynamic_node(a)).collect();
        let q1 = MetadataQuorum::open_dynamic(
            dirs[0].path(),
            1,
            nodes[0].clone(),
            vec![nodes[1].addr.clone()],
            true,
            QuorumOptions::default(),
        )
        .await
        .expect("open 1");
        let contact2 = vec![nodes[0].addr.clone()];
        let q2 = MetadataQuorum::open_dynamic(
            dirs[1].path(),
            2,
            nodes[1].clone(),
            contact2.clone(),
            false,
            QuorumOptions::default(),
        )
        .await
        .expect("open 2");
        wait_until("2 observes", || q1.status().observers.len() == 1).await;
        let d2 = nodes[1].directory_id.unwrap_or_default();
        q1.add_voter(2, d2, nodes[1].endpoints.clone(), "CONTROLLER")
            .await
            .expect("add 2");
        q1.propose(vec![topic("committed")]).await.expect("propose");
        q2.shutdown().await.expect("shutdown 2");
        drop(q2);
        // Node 2's storage is lost and formatted again: a new directory id.
        let wiped = tempfile::tempdir().expect("tempdir");
        let reformatted = QuorumNode {
            directory_id: Some(crate::log::new_kafka_uuid()),
            ..nodes[1].clone()
        };
        let q2 = MetadataQuorum::open_dynamic(
            wiped.path(),
            2,
            reformatted,
            contact2,
            false,
            QuorumOptions::default(),
        )
        .await
        .expect("reopen 2");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            !q2.image().topics.contains_key("committed"),
            "the re-formatted node took entries as voter 2"
        );
        assert_eq!(q2.leader(), None, "it follows no leader");
        assert_eq!(voter_ids(&q1), vec![1, 2]);
        for q in [&q1, &q2] {
            q.shutdown().await.expect("shutdown");
        }
    }

    #[tokio::test]
    async fn a_static_quorum_refuses_voter_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = MetadataQuorum::open(dir.path(), 1, single("127.0.0.1:0"))
            .await
            .expect("open");
        assert!(!q.is_dynamic());
        let eps = vec![("CONTROLLER".to_string(), "127.0.0.1".to_string(), 1)];
        assert!(matches!(
            q.add_voter(2, crate::log::new_kafka_uuid(), eps, "CONTROLLER")
                .await,
            Err(VoterChangeError::Unsupported(_))
        ));
        assert!(matches!(
            q.remove_voter(1, crate::log::new_kafka_uuid()).await,
            Err(VoterChangeError::Unsupported(_))
        ));
        q.shutdown().await.expect("shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_voter_of_another_cluster_is_refused_and_harms_nothing() {
        let (dirs, voters) = three_voters_on_loopback();
        let mut nodes = Vec::new();
        for (i, (id, _)) in voters.iter().enumerate() {
            let opts = QuorumOptions {
                cluster_id: if *id == 3 { "other" } else { "ours" }.to_string(),
                ..Default::default()
            };
            let q = MetadataQuorum::open_with(dirs[i].path(), *id, voters.clone(), opts)
                .await
                .expect("open voter");
            nodes.push(q);
        }
        wait_for(&nodes[0], "a controller", |img| img.controller_id.is_some()).await;
        let leader_id = nodes[0].image().controller_id.expect("leader");
        assert!(leader_id == 1 || leader_id == 2, "leader {leader_id}");
        let leader = &nodes[usize::try_from(leader_id - 1).unwrap_or(0)];
        leader.propose(vec![topic("ours")]).await.expect("propose");
        wait_for(&nodes[1], "replicated", |img| {
            img.topics.contains_key("ours")
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let stray = nodes[2].image();
        assert!(
            stray.topics.is_empty(),
            "the other cluster's node took entries"
        );
        assert_eq!(stray.controller_id, None, "it follows no leader");
        for q in &nodes {
            q.shutdown().await.expect("shutdown");
        }
    }
}
