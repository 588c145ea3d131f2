//! The quorum's transport: a tiny RPC over TCP. Each message is one frame,
//! `[len: u32 BE][JSON]`, and every request gets exactly one response on the
//! same connection. The server listens on this node's controller address;
//! openraft gets one client per peer, each holding one lazily (re)connected
//! stream.

use std::io;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RPCTypes, RaftNetwork, RaftNetworkFactory};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::types::{NodeId, QuorumNode, Raft, TypeConfig};

/// The largest message accepted from the network.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A request for the active controller, opaque to this layer (the
    /// controller's typed protocol, `crate::controller::rpc`).
    Forward(serde_json::Value),
    /// An observer (a broker-only node) asks to follow the metadata log:
    /// the leader adds it as an openraft learner at `addr` (or updates the
    /// address of the learner it already has under that id).
    Join {
        node_id: NodeId,
        addr: String,
        /// Its metadata directory id (KIP-853 `ReplicaKey`).
        #[serde(default)]
        directory_id: Option<uuid::Uuid>,
        /// A controller's listeners (a controller observer that may become
        /// a voter through AddRaftVoter).
        #[serde(default)]
        endpoints: Vec<(String, String, u16)>,
    },
    /// A restarted voter asks whether this node has a live leader (its
    /// pre-vote, see `quorum::quiet_start`).
    LeaderProbe,
}

/// When this node last heard from a raft leader (AppendEntries or
/// InstallSnapshot accepted), in ms since the epoch; 0: never.
pub type HeardSlot = std::sync::Arc<std::sync::atomic::AtomicI64>;

/// Every request names the cluster id of its sender (`meta.properties`); a
/// node answers a request from another cluster with
/// [`RpcResponse::WrongCluster`] and nothing else, as Kafka's raft answers
/// INCONSISTENT_CLUSTER_ID. An empty id (unit tests) is not checked.
#[derive(Serialize, Deserialize)]
struct Envelope {
    cluster: String,
    /// The directory id the sender's membership holds for the receiver
    /// (KIP-853's `ReplicaKey`): a node whose metadata directory is another
    /// one (re-formatted, or a wiped disk) refuses, so it can neither vote
    /// nor count towards a commit as the voter it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_directory: Option<uuid::Uuid>,
    req: RpcRequest,
}

/// The answer to [`RpcRequest::Join`].
#[derive(Debug, Serialize, Deserialize)]
pub enum JoinReply {
    /// The node is a learner at the given address (now or already).
    Added,
    /// This voter does not lead; the leader's address when known.
    NotLeader(Option<String>),
    /// The request cannot succeed as it is (e.g. the id is a voter's).
    Refused(String),
    /// A transient failure (e.g. another membership change in progress).
    Retry(String),
}

/// Serves [`RpcRequest::Forward`] on this node: the active controller's
/// request handler, installed once the controller exists.
pub type ForwardHandler = std::sync::Arc<
    dyn Fn(
            serde_json::Value,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = serde_json::Value> + Send>>
        + Send
        + Sync,
>;

/// Where the forward handler is installed (after the quorum opened).
pub type ForwardSlot = std::sync::Arc<std::sync::OnceLock<ForwardHandler>>;

/// Serves a Kafka-protocol connection that arrived on the controller
/// listener (`kafka-metadata-quorum --bootstrap-controller`).
pub type KafkaHandler = std::sync::Arc<
    dyn Fn(
            TcpStream,
            std::net::SocketAddr,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Where the Kafka handler is installed (once the broker state exists).
pub type KafkaSlot = std::sync::Arc<std::sync::OnceLock<KafkaHandler>>;

/// Whether a new connection speaks the Kafka protocol rather than this
/// transport: both start with a 4-byte length, then this transport's JSON
/// opens with `{` while a Kafka request header opens with its 2-byte API
/// key, whose first byte is 0 for every API. `None`: closed before 5 bytes.
async fn speaks_kafka(stream: &TcpStream) -> io::Result<Option<bool>> {
    let mut head = [0u8; 5];
    for _ in 0..2000 {
        let n = stream.peek(&mut head).await?;
        if n == 0 {
            return Ok(None);
        }
        if n >= 5 {
            return Ok(Some(head[4] != b'{'));
        }
        // Fewer than 5 bytes so far (peek returns at once): wait for more.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "no request header within 10 s",
    ))
}

#[derive(Serialize, Deserialize)]
enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The answer to a forwarded request, or `None` when this node has no
    /// controller handler (yet).
    Forward(Option<serde_json::Value>),
    Join(JoinReply),
    /// The answer to [`RpcRequest::LeaderProbe`]: how many ms ago this node
    /// last heard from a leader (0 when it leads), `None` never.
    LeaderProbe(Option<i64>),
    /// The request came from a node of another cluster: refused.
    WrongCluster(String),
}

/// Whether a request from cluster `theirs` may be served by a node of
/// cluster `mine`; `Err` holds the refusal.
fn check_directory(mine: Option<uuid::Uuid>, expected: Option<uuid::Uuid>) -> Result<(), String> {
    match (mine, expected) {
        (Some(m), Some(e)) if m != e => Err(format!(
            "a quorum member expects this node's metadata directory to be {}, but it is {} (re-formatted storage?); refused: remove the old voter and add this one (kafka-metadata-quorum remove-controller / add-controller)",
            crate::log::topic_id_string(&e),
            crate::log::topic_id_string(&m)
        )),
        _ => Ok(()),
    }
}

fn check_cluster(mine: &str, theirs: &str) -> Result<(), String> {
    if mine.is_empty() || theirs.is_empty() || mine == theirs {
        return Ok(());
    }
    Err(format!(
        "INCONSISTENT_CLUSTER_ID: a node of cluster {theirs} contacted a node of cluster {mine}; refused (check meta.properties and the voters)"
    ))
}

async fn write_msg<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T) -> io::Result<()> {
    let json = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if json.len() > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "message too large",
        ));
    }
    let len = u32::try_from(json.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    let mut buf = Vec::with_capacity(4 + json.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&json);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one message; `Ok(None)` on a clean end of stream before a message.
async fn read_msg<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::try_from(u32::from_be_bytes(len)).map_err(io::Error::other)?;
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message too large",
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    serde_json::from_slice(&buf)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Binds the controller listener.
pub async fn bind(addr: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves raft RPCs from `listener` until the returned task is aborted
/// (aborting it also stops every connection it accepted).
pub fn serve(
    listener: TcpListener,
    raft: Raft,
    forward: ForwardSlot,
    kafka: KafkaSlot,
    (cluster, directory): (String, Option<uuid::Uuid>),
    image: tokio::sync::watch::Receiver<std::sync::Arc<crate::metadata::ClusterImage>>,
    heard: HeardSlot,
) -> JoinHandle<()> {
    let cluster: std::sync::Arc<str> = cluster.into();
    let last_refusal = std::sync::Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            while conns.try_join_next().is_some() {}
            match listener.accept().await {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "controller connection accepted");
                    let raft = raft.clone();
                    let forward = forward.clone();
                    let (cluster, last_refusal) = (cluster.clone(), last_refusal.clone());
                    let image = image.clone();
                    let kafka = kafka.clone();
                    let heard = heard.clone();
                    conns.spawn(async move {
                        match speaks_kafka(&stream).await {
                            Ok(Some(true)) => {
                                match kafka.get() {
                                    Some(h) => h(stream, peer).await,
                                    None => tracing::debug!(%peer, "a Kafka request on the controller listener before the node serves them; closed"),
                                }
                                return;
                            }
                            Ok(Some(false)) => {}
                            Ok(None) => return,
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "controller connection closed");
                                return;
                            }
                        }
                        let served = serve_conn(
                            stream,
                            raft,
                            forward,
                            (&cluster, directory),
                            &last_refusal,
                            image,
                            &heard,
                        );
                        if let Err(e) = served.await {
                            tracing::debug!(%peer, error = %e, "controller connection closed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "controller accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

async fn serve_conn(
    mut stream: TcpStream,
    raft: Raft,
    forward: ForwardSlot,
    (cluster, directory): (&str, Option<uuid::Uuid>),
    last_refusal: &std::sync::Mutex<Option<std::time::Instant>>,
    image: tokio::sync::watch::Receiver<std::sync::Arc<crate::metadata::ClusterImage>>,
    heard: &HeardSlot,
) -> io::Result<()> {
    use std::sync::atomic::Ordering;
    stream.set_nodelay(true)?;
    let from_leader = |ok: bool| {
        if ok {
            heard.store(crate::clock::now_ms(), Ordering::Release);
        }
    };
    while let Some(env) = read_msg::<_, Envelope>(&mut stream).await? {
        let checked = check_cluster(cluster, &env.cluster)
            .and_then(|()| check_directory(directory, env.to_directory));
        if let Err(why) = checked {
            let log_it = {
                let mut last = last_refusal.lock().unwrap_or_else(|e| e.into_inner());
                let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
                if due {
                    *last = Some(std::time::Instant::now());
                }
                due
            };
            if log_it {
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                tracing::error!(%peer, "{why}");
            }
            write_msg(&mut stream, &RpcResponse::WrongCluster(why)).await?;
            continue;
        }
        let resp = match env.req {
            RpcRequest::AppendEntries(r) => {
                let resp = raft.append_entries(r).await;
                from_leader(matches!(
                    resp,
                    Ok(AppendEntriesResponse::Success
                        | AppendEntriesResponse::PartialSuccess(_)
                        | AppendEntriesResponse::Conflict)
                ));
                RpcResponse::AppendEntries(resp)
            }
            RpcRequest::Vote(r) => RpcResponse::Vote(raft.vote(r).await),
            RpcRequest::InstallSnapshot(r) => {
                let resp = raft.install_snapshot(r).await;
                from_leader(resp.is_ok());
                RpcResponse::InstallSnapshot(resp)
            }
            RpcRequest::LeaderProbe => {
                let leads = {
                    let m = raft.metrics();
                    let b = m.borrow();
                    b.state == openraft::ServerState::Leader && b.current_leader == Some(b.id)
                };
                let last = heard.load(Ordering::Acquire);
                RpcResponse::LeaderProbe(if leads {
                    Some(0)
                } else if last > 0 {
                    Some((crate::clock::now_ms() - last).max(0))
                } else {
                    None
                })
            }
            RpcRequest::Forward(v) => match forward.get() {
                Some(h) => RpcResponse::Forward(Some(h(v).await)),
                None => RpcResponse::Forward(None),
            },
            RpcRequest::Join {
                node_id,
                addr,
                directory_id,
                endpoints,
            } => {
                let node = QuorumNode {
                    addr,
                    directory_id,
                    endpoints,
                };
                // A live (unfenced) broker of that id keeps its address: a
                // second process with its node.id must not take its place.
                let live = i32::try_from(node_id)
                    .ok()
                    .is_some_and(|id| image.borrow().brokers.get(&id).is_some_and(|b| !b.fenced));
                RpcResponse::Join(join(&raft, node_id, node, live).await)
            }
        };
        write_msg(&mut stream, &resp).await?;
    }
    Ok(())
}

/// Serves an observer's [`RpcRequest::Join`] on this node.
async fn join(raft: &Raft, id: NodeId, node: QuorumNode, live: bool) -> JoinReply {
    use openraft::error::ClientWriteError;
    use openraft::ChangeMembers;
    let (me, is_voter, known, leader_addr, leads) = {
        let m = raft.metrics();
        let b = m.borrow();
        let mem = b.membership_config.membership();
        let leader_addr = b
            .current_leader
            .and_then(|l| mem.get_node(&l).map(|n| n.addr.clone()));
        (
            b.id,
            mem.voter_ids().any(|v| v == id),
            mem.get_node(&id).cloned(),
            leader_addr,
            b.current_leader == Some(b.id),
        )
    };
    if id == me || is_voter {
        return JoinReply::Refused(format!(
            "node id {id} is a voter of the metadata quorum; a broker-only node must have a node.id of its own"
        ));
    }
    if !leads {
        return JoinReply::NotLeader(leader_addr);
    }
    if known.as_ref() == Some(&node) {
        return JoinReply::Added;
    }
    let addr = node.addr.clone();
    let known = known.map(|n| n.addr);
    if let (Some(old), true) = (&known, live) {
        tracing::warn!(node_id = id, live = %old, new = %addr, "an observer asks to take the place of a live broker with the same node.id (a duplicate node.id, or a restart within its session); refused until that broker is fenced");
        return JoinReply::Retry(format!(
            "node.id {id} belongs to a live broker at {old} (a duplicate node.id, or this node's previous process within its session); retrying until it is fenced"
        ));
    }
    if let Some(old) = &known {
        tracing::info!(node_id = id, from = %old, to = %addr, "metadata observer moved; updating its address");
    } else {
        tracing::info!(node_id = id, %addr, "adding a metadata observer (learner)");
    }
    let change = ChangeMembers::SetNodes(std::collections::BTreeMap::from([(id, node)]));
    match raft.change_membership(change, true).await {
        Ok(_) => JoinReply::Added,
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            JoinReply::NotLeader(f.leader_node.map(|n| n.addr))
        }
        Err(e) => JoinReply::Retry(e.to_string()),
    }
}

/// Asks the voter at `addr` to make `node_id` (at `own_addr`) an observer.
pub async fn request_join(
    addr: &str,
    cluster: &str,
    node_id: NodeId,
    own: &QuorumNode,
    timeout: Duration,
) -> io::Result<JoinReply> {
    let req = RpcRequest::Join {
        node_id,
        addr: own.addr.clone(),
        directory_id: own.directory_id,
        endpoints: own.endpoints.clone(),
    };
    match call(addr, cluster, req, timeout).await? {
        RpcResponse::Join(r) => Ok(r),
        RpcResponse::WrongCluster(why) => Ok(JoinReply::Refused(why)),
        _ => Err(unexpected_response()),
    }
}

/// One request to the controller-side RPC listener at `addr` on a fresh
/// connection, within `timeout`: its answer.
async fn call(
    addr: &str,
    cluster: &str,
    req: RpcRequest,
    timeout: Duration,
) -> io::Result<RpcResponse> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let env = Envelope {
            cluster: cluster.to_string(),
            to_directory: None,
            req,
        };
        write_msg(&mut s, &env).await?;
        read_msg::<_, RpcResponse>(&mut s).await?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "controller closed the connection",
            )
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "controller request timed out"))?
}

/// Asks the voter at `addr` how long ago it last heard from a leader
/// ([`RpcRequest::LeaderProbe`]). An error (a node of an older version that
/// does not know the probe, or one not up) tells nothing.
pub async fn probe_leader(addr: &str, cluster: &str, timeout: Duration) -> io::Result<Option<i64>> {
    match call(addr, cluster, RpcRequest::LeaderProbe, timeout).await? {
        RpcResponse::LeaderProbe(ago) => Ok(ago),
        RpcResponse::WrongCluster(why) => Err(io::Error::other(why)),
        _ => Err(unexpected_response()),
    }
}

fn unexpected_response() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "unexpected response type")
}

/// Creates per-peer clients for openraft.
pub struct NetworkFactory {
    /// This node's id; a client to it is never built.
    pub node_id: NodeId,
    /// This node's cluster id, sent with every request.
    pub cluster: String,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &QuorumNode) -> PeerClient {
        if target == self.node_id {
            tracing::error!(
                target,
                "refusing to build a raft network client to this node itself"
            );
        }
        PeerClient {
            node_id: self.node_id,
            target,
            addr: (target != self.node_id).then(|| node.addr.clone()),
            to_directory: node.directory_id,
            cluster: self.cluster.clone(),
            conn: None,
        }
    }
}

/// A client to one peer.
pub struct PeerClient {
    node_id: NodeId,
    target: NodeId,
    /// The peer's address; `None` for a (refused) client to ourselves.
    addr: Option<String>,
    /// The peer's directory id as the membership holds it.
    to_directory: Option<uuid::Uuid>,
    cluster: String,
    conn: Option<TcpStream>,
}

enum CallError {
    Unreachable(io::Error),
    Network(io::Error),
    Timeout,
}

impl PeerClient {
    async fn roundtrip(&mut self, req: RpcRequest) -> Result<RpcResponse, CallError> {
        let stream = match &mut self.conn {
            Some(s) => s,
            None => {
                let Some(addr) = &self.addr else {
                    return Err(CallError::Unreachable(io::Error::other(
                        "no client to self",
                    )));
                };
                let s = TcpStream::connect(addr.as_str())
                    .await
                    .map_err(CallError::Unreachable)?;
                s.set_nodelay(true).map_err(CallError::Unreachable)?;
                self.conn.insert(s)
            }
        };
        let env = Envelope {
            cluster: self.cluster.clone(),
            to_directory: self.to_directory,
            req,
        };
        write_msg(stream, &env).await.map_err(CallError::Network)?;
        match read_msg::<_, RpcResponse>(stream).await {
            Ok(Some(RpcResponse::WrongCluster(why))) => {
                Err(CallError::Unreachable(io::Error::other(why)))
            }
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(CallError::Network(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed the connection",
            ))),
            Err(e) => Err(CallError::Network(e)),
        }
    }

    async fn call<E: std::error::Error>(
        &mut self,
        action: RPCTypes,
        req: RpcRequest,
        option: &RPCOption,
    ) -> Result<RpcResponse, RPCError<NodeId, QuorumNode, E>> {
        let ttl = option.hard_ttl();
        let res = match tokio::time::timeout(ttl, self.roundtrip(req)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout),
        };
        res.map_err(|e| {
            // The stream may hold half a message now; start afresh next time.
            self.conn = None;
            match e {
                CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
                CallError::Network(e) => RPCError::Network(NetworkError::new(&e)),
                CallError::Timeout => RPCError::Timeout(Timeout {
                    action,
                    id: self.node_id,
                    target: self.target,
                    timeout: ttl,
                }),
            }
        })
    }

    fn unexpected<E: std::error::Error>() -> RPCError<NodeId, QuorumNode, E> {
        RPCError::Network(NetworkError::new(&unexpected_response()))
    }
}

fn remote<E: std::error::Error>(target: NodeId, e: E) -> RPCError<NodeId, QuorumNode, E> {
    RPCError::RemoteError(RemoteError::new(target, e))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, QuorumNode, RaftError<NodeId>>>
    {
        match self
            .call(
                RPCTypes::AppendEntries,
                RpcRequest::AppendEntries(rpc),
                &option,
            )
            .await?
        {
            RpcResponse::AppendEntries(r) => r.map_err(|e| remote(self.target, e)),
            _ => Err(Self::unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, QuorumNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .call(
                RPCTypes::InstallSnapshot,
                RpcRequest::InstallSnapshot(rpc),
                &option,
            )
            .await?
        {
            RpcResponse::InstallSnapshot(r) => r.map_err(|e| remote(self.target, e)),
            _ => Err(Self::unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, QuorumNode, RaftError<NodeId>>> {
        match self
            .call(RPCTypes::Vote, RpcRequest::Vote(rpc), &option)
            .await?
        {
            RpcResponse::Vote(r) => r.map_err(|e| remote(self.target, e)),
            _ => Err(Self::unexpected()),
        }
    }
}

/// Sends one forwarded request to the node at `addr` on a fresh connection
/// and returns its answer (`None`: that node has no controller handler).
pub async fn forward(
    addr: &str,
    cluster: &str,
    payload: serde_json::Value,
    timeout: Duration,
) -> io::Result<Option<serde_json::Value>> {
    match call(addr, cluster, RpcRequest::Forward(payload), timeout).await? {
        RpcResponse::Forward(v) => Ok(v),
        RpcResponse::WrongCluster(why) => Err(io::Error::other(why)),
        _ => Err(unexpected_response()),
    }
}
