//! The controller quorum: the metadata log replicated by Raft among the controllers
//! (`controller.quorum.voters`), built on openraft and reached by the rest of the broker only
//! through [`MetadataLog`]. The Raft leader is the active controller: it fences brokers that stop
//! heartbeating, elects partition leaders from the ISR and moves leadership off brokers in a
//! controlled shutdown ([`duties`]).
//!
//! Controllers talk over the controller listener with length-prefixed JSON frames ([`Rpc`]):
//! Raft's own messages, proposals forwarded to the leader, and broker heartbeats. The listener
//! is secured as `listener.security.protocol.map` says ([`ControllerSecurity`], one per process):
//! TLS (the client certificate's subject as principal), then on a SASL listener an exchange of
//! [`Rpc::Authenticate`] frames run by the same authenticator as the Kafka listeners; with an
//! authorizer each request needs what Kafka's controller asks (CLUSTER_ACTION for Raft,
//! proposals, heartbeats and image fetches, DESCRIBE to describe the quorum, ALTER to change the
//! voters), so a node without valid credentials cannot join. A dedicated
//! broker (`process.roles=broker`) is an observer: it is no Raft member, follows the committed
//! image by long-polling the active controller, and sends its proposals and heartbeats through
//! any controller (Kafka's observers fetch the metadata log the same way).

pub mod duties;
mod store;

pub use crate::config::{parse_voters, Bootstrap, RaftTiming};

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use anyhow::{anyhow, bail, Result};
use ferrolog_client::Io;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::security::acl::{Operation, Requester, ResourceType, CLUSTER_NAME};
use crate::security::sasl::{self, Authenticator, Step};
use crate::security::{principal, ControllerSecurity};

use crate::metadata::{MetadataImage, MetadataLog, MetadataRecord};

openraft::declare_raft_types!(
    /// ferrolog's Raft types: proposals are lists of metadata records.
    pub TypeConfig:
        D = Proposal,
        R = Outcome,
);

pub type Raft = openraft::Raft<TypeConfig>;

/// The directory (under the log directory) of a controller's Raft log and snapshots.
pub const RAFT_DIR: &str = "__cluster_metadata-raft";

/// Records to commit together.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Proposal {
    pub records: Vec<MetadataRecord>,
}

/// What a committed proposal did: per record whether it was accepted, and the log index it got.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub accepted: Vec<bool>,
    pub index: u64,
}

/// A broker's heartbeat to the active controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub broker: i32,
    pub epoch: i64,
    pub shutting_down: bool,
    /// The metadata the broker has applied (its image's index): it is unfenced only once
    /// this reaches its registration.
    #[serde(default)]
    pub applied: u64,
    /// Its replicas whose log directory went offline (topic id, partition): they leave the
    /// ISR and leadership.
    #[serde(default)]
    pub offline: Vec<(uuid::Uuid, i32)>,
}

/// The last heartbeat the active controller saw from a broker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    pub seen: Instant,
    pub shutting_down: bool,
    pub applied: u64,
    /// Its listener refused a connection after it went silent: the process is gone.
    pub gone: bool,
    /// When the controller last tried its listener.
    pub probed: Option<Instant>,
}

/// The quorum as its leader sees it (DescribeQuorum).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuorumStatus {
    pub leader: i32,
    /// The Raft term: Kafka's leader epoch of `__cluster_metadata`.
    pub term: u64,
    /// The next index after the last committed entry.
    pub high_watermark: i64,
    /// (voter id, the end of its log as the leader knows it, -1 if unknown).
    pub voters: Vec<(u64, i64)>,
    /// (broker id, the end of the metadata it has applied) for the dedicated brokers.
    #[serde(default)]
    pub observers: Vec<(u64, i64)>,
    /// The voters' controller endpoints.
    #[serde(default)]
    pub endpoints: BTreeMap<u64, String>,
}

#[derive(Debug, Serialize, Deserialize)]
enum Rpc {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    Propose(Proposal),
    Heartbeat(Heartbeat),
    DescribeQuorum,
    /// From an observer to any controller: commit through the active controller.
    Forward(Proposal),
    /// From an observer to any controller: pass a heartbeat on to the active controller.
    ForwardHeartbeat(Heartbeat),
    /// From an observer to any controller: the quorum's state.
    ForwardDescribe,
    /// From an observer to the active controller: the committed image once it is past
    /// `after` (waiting up to `wait_ms`).
    FetchImage {
        after: Option<u64>,
        wait_ms: u64,
    },
    /// From a joining controller to any controller: add it as a learner.
    Join {
        id: u64,
        addr: String,
    },
    /// To any controller: change the voters through the active controller.
    ChangeVoters(VoterChange),
    /// On a SASL controller listener, before anything else: one token of the exchange.
    Authenticate {
        mechanism: String,
        token: Vec<u8>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    Snapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Propose(Result<Outcome, String>),
    Heartbeat(Result<(), String>),
    DescribeQuorum(Result<QuorumStatus, String>),
    /// Join or ChangeVoters: done, or why not.
    Done(Result<(), String>),
    /// The image (if newer), the active controller as the answering one knows it, and the
    /// cluster id.
    Image {
        image: Option<MetadataImage>,
        leader: Option<(u64, String)>,
        cluster_id: String,
    },
    /// The server's token, or why authentication failed.
    Authenticate(Result<Vec<u8>, String>),
    /// The request was not authorized (the connection closes).
    Refused(String),
}

const MAX_FRAME: usize = 256 * 1024 * 1024;

/// How long a peer of the controller listener has to complete its SASL authentication.
const AUTHENTICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a broker heartbeat may take to be answered.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// This process's controller listener security (plaintext until [`set_security`]).
static SECURITY: std::sync::OnceLock<Arc<ControllerSecurity>> = std::sync::OnceLock::new();

/// Sets how this process's node reaches and serves the controller listener; the first call
/// wins (a process runs one node).
pub fn set_security(security: Arc<ControllerSecurity>) {
    let _ = SECURITY.set(security);
}

fn security() -> &'static ControllerSecurity {
    SECURITY.get_or_init(Default::default)
}

/// A connection to a controller, secured as the controller listener asks and authenticated.
async fn open(addr: &str) -> std::io::Result<Box<dyn Io>> {
    let client = &security().client;
    let mut stream = ferrolog_client::open(addr, client.tls.as_ref())
        .await
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    if let Some(credentials) = &client.sasl {
        let denied = |why: String| {
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("SASL authentication with controller {addr} failed: {why}"),
            )
        };
        let mechanism = credentials.mechanism.name().to_string();
        let (mut exchange, mut token) = ferrolog_client::sasl::ClientExchange::start(credentials)
            .map_err(|e| denied(format!("{e:#}")))?;
        loop {
            let rpc = Rpc::Authenticate {
                mechanism: mechanism.clone(),
                token,
            };
            write_frame(&mut stream, &rpc).await?;
            let reply = match read_frame(&mut stream).await? {
                Reply::Authenticate(Ok(reply)) => reply,
                Reply::Authenticate(Err(why)) => return Err(denied(why)),
                _ => return Err(denied("unexpected reply".into())),
            };
            match exchange
                .next(&reply)
                .map_err(|e| denied(format!("{e:#}")))?
            {
                Some(next) => token = next,
                None => break,
            }
        }
    }
    Ok(stream)
}

async fn write_frame<T: Serialize, S: AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    value: &T,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await
}

async fn read_frame<T: for<'de> Deserialize<'de>, S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
) -> std::io::Result<T> {
    read_frame_limited(stream, MAX_FRAME).await
}

/// A frame of at most `limit` bytes (before authentication: a SASL token's worth).
async fn read_frame_limited<T: for<'de> Deserialize<'de>, S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    limit: usize,
) -> std::io::Result<T> {
    let len = stream.read_u32().await? as usize;
    if len > limit {
        return Err(std::io::Error::other(format!(
            "controller frame of {len} bytes"
        )));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

/// One request-response exchange with a controller, on a cached connection.
struct Peer {
    addr: String,
    conn: Option<Box<dyn Io>>,
    /// An exchange began and has not finished: if its caller dropped it (openraft cancels
    /// RPCs), its reply may still be on the way, so the connection cannot be reused.
    in_flight: bool,
}

impl Peer {
    fn new(addr: String) -> Peer {
        Peer {
            addr,
            conn: None,
            in_flight: false,
        }
    }

    async fn call(&mut self, rpc: &Rpc, timeout: Duration) -> std::io::Result<Reply> {
        if self.in_flight {
            self.conn = None;
        }
        self.in_flight = true;
        let exchange = async {
            if self.conn.is_none() {
                self.conn = Some(open(&self.addr).await?);
            }
            let conn = self.conn.as_mut().expect("connected");
            write_frame(conn, rpc).await?;
            read_frame(conn).await
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("controller {} did not answer", self.addr),
            )),
        };
        if result.is_err() {
            self.conn = None;
        }
        self.in_flight = false;
        result
    }
}

/// openraft's view of the network: one [`Peer`] per target controller.
pub struct Network;

pub struct NetworkClient {
    target: u64,
    peer: Peer,
    /// Failed exchanges with the target, logged as episodes (openraft's own per-retry lines
    /// are filtered out).
    failing: crate::log_rate::Repeating,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = NetworkClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> NetworkClient {
        NetworkClient {
            target,
            peer: Peer::new(node.addr.clone()),
            failing: crate::log_rate::Repeating::new(format!(
                "Raft exchange with controller {target} ({})",
                node.addr
            )),
        }
    }
}

fn unreachable<E: std::error::Error>(e: std::io::Error) -> RPCError<u64, BasicNode, E> {
    RPCError::Network(NetworkError::new(&e))
}

impl NetworkClient {
    async fn exchange<E: std::error::Error>(
        &mut self,
        rpc: Rpc,
        option: &RPCOption,
    ) -> Result<Reply, RPCError<u64, BasicNode, E>> {
        let result = self
            .peer
            .call(&rpc, option.hard_ttl().max(Duration::from_millis(500)))
            .await;
        match &result {
            Ok(_) => self.failing.succeeded(),
            Err(e) => self.failing.failed(&e.to_string()),
        }
        result.map_err(unreachable)
    }
}

fn unexpected<E: std::error::Error>() -> RPCError<u64, BasicNode, E> {
    unreachable(std::io::Error::other("unexpected controller reply"))
}

impl RaftNetwork<TypeConfig> for NetworkClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self.exchange(Rpc::Append(rpc), &option).await? {
            Reply::Append(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        match self.exchange(Rpc::Snapshot(rpc), &option).await? {
            Reply::Snapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self.exchange(Rpc::Vote(rpc), &option).await? {
            Reply::Vote(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }
}

/// A change of the voters (AddRaftVoter / RemoveRaftVoter).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum VoterChange {
    Add { id: u64, addr: String },
    Remove { id: u64 },
}

/// The cluster id a controller (or single node) starts with: configured or derived from the
/// voters, else the one its log directory holds, else (joining a dynamic quorum) the one the
/// other controllers report; `None` lets a new directory get a new id.
pub fn cluster_id_for(config: &crate::config::BrokerConfig) -> Result<Option<String>> {
    if let Some(id) = &config.cluster_id {
        return Ok(Some(id.clone()));
    }
    if let Some(id) = crate::log_manager::stored_cluster_id(&config.log_dir) {
        return Ok(Some(id));
    }
    match &config.quorum_bootstrap {
        Some(Bootstrap::Join(controllers)) => {
            // not this controller itself: it does not answer before it has started
            let own = config.controller_address();
            let others: Vec<String> = controllers
                .iter()
                .filter(|c| Some(*c) != own.as_ref())
                .cloned()
                .collect();
            if others.is_empty() {
                bail!("controller.quorum.bootstrap.servers names only this controller: start a new quorum with --standalone");
            }
            Ok(Some(RaftQuorum::probe_cluster_id(&others)?))
        }
        _ => Ok(None),
    }
}

/// This node's member of the controller quorum. Raft, the controller listener and the active
/// controller's duties run on their own runtime, so a broker busy or blocked on metadata
/// commits can never starve the quorum that completes them.
pub struct RaftQuorum {
    runtime: &'static tokio::runtime::Runtime,
    pub node_id: u64,
    /// This node's Raft member; `None` on an observer (a dedicated broker).
    raft: Option<Raft>,
    voters: BTreeMap<u64, String>,
    /// Where an observer reaches the controllers.
    controllers: Vec<String>,
    /// The active controller as an observer last heard of it.
    active: Mutex<Option<(u64, String)>>,
    pub cluster_id: String,
    image: watch::Receiver<Arc<MetadataImage>>,
    /// Broker heartbeats seen while this node is the active controller.
    pub(crate) heartbeats: Mutex<HashMap<i32, Session>>,
    /// Each broker's offline replicas, as its last heartbeat reported them.
    pub(crate) offline_replicas: Mutex<HashMap<i32, Vec<(uuid::Uuid, i32)>>>,
    /// One connection per controller, each behind its own lock: a controller that does not
    /// answer holds up only the calls to it.
    peers: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<Peer>>>>,
}

/// The process's controller runtime, built on first use. It lives as long as the process: a
/// runtime may not be dropped inside another.
fn controller_runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: Mutex<Option<&'static tokio::runtime::Runtime>> = Mutex::new(None);
    let mut runtime = crate::locks::lock(&RUNTIME);
    if let Some(r) = *runtime {
        return Ok(r);
    }
    let built: &'static _ = Box::leak(Box::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("controller")
            .enable_all()
            .build()?,
    ));
    *runtime = Some(built);
    Ok(built)
}

/// Runs `task` to its end on the controller runtime, from synchronous code that may itself be
/// on a runtime (so on a thread of its own; `what` names it if it panics).
fn block_on_controller<T: Send>(
    what: &str,
    task: impl std::future::Future<Output = Result<T>> + Send,
) -> Result<T> {
    let runtime = controller_runtime()?;
    std::thread::scope(|s| {
        s.spawn(|| runtime.block_on(task))
            .join()
            .map_err(|_| anyhow!("{what} panicked"))?
    })
}

impl RaftQuorum {
    /// Opens the Raft log and state machine under `dir` and starts Raft. A brand-new quorum
    /// (no vote, no log on any voter) is initialised with the configured voters.
    pub fn start(
        node_id: u64,
        bootstrap: Bootstrap,
        addr: String,
        dir: &std::path::Path,
        cluster_id: String,
        timing: RaftTiming,
    ) -> Result<Arc<RaftQuorum>> {
        let runtime = controller_runtime()?;
        let quorum = block_on_controller(
            "starting the controller",
            Self::start_on(runtime, node_id, bootstrap, dir, cluster_id, timing),
        )?;
        runtime.spawn(quorum.clone().join(addr));
        Ok(quorum)
    }

    /// The cluster id of the quorum the controllers at `controllers` run (asked until one
    /// answers).
    pub fn probe_cluster_id(controllers: &[String]) -> Result<String> {
        block_on_controller("probing the controllers", async {
            let mut attempt = 0usize;
            loop {
                let addr = &controllers[attempt % controllers.len()];
                attempt += 1;
                let rpc = Rpc::FetchImage {
                    after: Some(u64::MAX),
                    wait_ms: 0,
                };
                if let Ok(Reply::Image { cluster_id, .. }) = Peer::new(addr.clone())
                    .call(&rpc, Duration::from_secs(1))
                    .await
                {
                    return Ok(cluster_id);
                }
                if attempt.is_multiple_of(controllers.len()) {
                    tracing::warn!("waiting for a controller ({})", controllers.join(","));
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    }

    /// A controller joining a dynamic quorum: asks to be added as a learner until the
    /// membership names it.
    async fn join(self: Arc<Self>, addr: String) {
        let Some(raft) = &self.raft else {
            return;
        };
        loop {
            let known = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&self.node_id)
                .is_some();
            if known {
                return;
            }
            let rpc = Rpc::Join {
                id: self.node_id,
                addr: addr.clone(),
            };
            match self.call_any(rpc, Duration::from_secs(20)).await {
                Ok(Reply::Done(Ok(()))) => {
                    tracing::info!("joined the controller quorum as an observer")
                }
                Ok(Reply::Done(Err(e))) => tracing::info!("joining the controller quorum: {e}"),
                Ok(other) => tracing::debug!("joining: unexpected {other:?}"),
                Err(e) => tracing::debug!("joining: {e:#}"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Changes the voters (AddRaftVoter / RemoveRaftVoter) through the active controller.
    pub async fn change_voters(self: &Arc<Self>, change: VoterChange) -> Result<()> {
        let quorum = self.clone();
        self.runtime
            .spawn(async move {
                match quorum
                    .call_any(Rpc::ChangeVoters(change), Duration::from_secs(60))
                    .await?
                {
                    Reply::Done(r) => r.map_err(|e| anyhow!(e)),
                    other => bail!("unexpected reply {other:?}"),
                }
            })
            .await?
    }

    /// The active controller's side of Join and ChangeVoters (others pass them on).
    async fn change_membership_here(&self, rpc: Rpc) -> Result<(), String> {
        let Some(raft) = &self.raft else {
            return Err("not a controller".into());
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.leader() {
                Some(l) if l == self.node_id => break,
                Some(l) => {
                    return match self.call(l, rpc).await {
                        Ok(Reply::Done(r)) => r,
                        Ok(other) => Err(format!("unexpected reply {other:?}")),
                        Err(e) => Err(format!("{e:#}")),
                    }
                }
                None if Instant::now() > deadline => {
                    return Err("the controller quorum has no leader".into())
                }
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let membership = raft.metrics().borrow().membership_config.clone();
        let membership = membership.membership();
        let is_voter = |id: u64| membership.voter_ids().any(|v| v == id);
        let result = match rpc {
            Rpc::Join { id, addr } => {
                if membership.get_node(&id).is_some() {
                    return Ok(());
                }
                raft.add_learner(id, BasicNode::new(addr), false)
                    .await
                    .map(|_| ())
            }
            Rpc::ChangeVoters(VoterChange::Add { id, addr }) => {
                if is_voter(id) {
                    return Err(format!("controller {id} is already a voter"));
                }
                if membership.get_node(&id).is_none() {
                    // a controller not observing yet: add it, and wait until it has caught up
                    if let Err(e) = raft.add_learner(id, BasicNode::new(addr), true).await {
                        return Err(format!("{e}"));
                    }
                }
                let ids = std::collections::BTreeSet::from([id]);
                raft.change_membership(openraft::ChangeMembers::AddVoterIds(ids), false)
                    .await
                    .map(|_| ())
            }
            Rpc::ChangeVoters(VoterChange::Remove { id }) => {
                if !is_voter(id) {
                    return Err(format!("controller {id} is not a voter"));
                }
                let ids = std::collections::BTreeSet::from([id]);
                raft.change_membership(openraft::ChangeMembers::RemoveVoters(ids), false)
                    .await
                    .map(|_| ())
            }
            _ => return Err("not a membership change".into()),
        };
        result.map_err(|e| e.to_string())
    }

    /// A controller's address from the Raft membership (or the configured voters).
    fn addr_of(&self, id: u64) -> Option<String> {
        let from_membership = self.raft.as_ref().and_then(|raft| {
            raft.metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&id)
                .map(|n| n.addr.clone())
        });
        from_membership.or_else(|| self.voters.get(&id).cloned())
    }

    /// Joins as an observer (a dedicated broker): waits until a controller answers with the
    /// committed image, then keeps following it. `cluster_id`, if configured, must match.
    pub fn observe(
        node_id: u64,
        controllers: Vec<String>,
        cluster_id: Option<String>,
    ) -> Result<Arc<RaftQuorum>> {
        block_on_controller(
            "starting the observer",
            Self::observe_on(controller_runtime()?, node_id, controllers, cluster_id),
        )
    }

    async fn observe_on(
        runtime: &'static tokio::runtime::Runtime,
        node_id: u64,
        controllers: Vec<String>,
        cluster_id: Option<String>,
    ) -> Result<Arc<RaftQuorum>> {
        let mut attempt = 0usize;
        let mut hint: Option<String> = None;
        let (image, leader, found_id) = loop {
            let addr = match hint.take() {
                Some(addr) => addr,
                None => {
                    attempt += 1;
                    controllers[(attempt - 1) % controllers.len()].clone()
                }
            };
            let rpc = Rpc::FetchImage {
                after: None,
                wait_ms: 0,
            };
            match Peer::new(addr.clone())
                .call(&rpc, Duration::from_secs(5))
                .await
            {
                Ok(Reply::Image {
                    image: Some(image),
                    leader,
                    cluster_id,
                }) => break (image, leader, cluster_id),
                Ok(Reply::Image { leader, .. }) => {
                    tracing::debug!("controller {addr}: not active (active: {leader:?})");
                    hint = leader.map(|(_, a)| a).filter(|a| *a != addr);
                }
                Ok(other) => tracing::warn!("controller {addr}: unexpected reply {other:?}"),
                Err(e) => {
                    if attempt.is_multiple_of(controllers.len()) {
                        tracing::warn!("waiting for a controller ({}): {e}", controllers.join(","));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        if let Some(configured) = cluster_id.filter(|c| *c != found_id) {
            bail!("the controllers belong to cluster {found_id}, not the configured cluster.id {configured}");
        }
        let (tx, rx) = watch::channel(Arc::new(image));
        let quorum = Arc::new(RaftQuorum {
            runtime,
            node_id,
            raft: None,
            voters: BTreeMap::new(),
            controllers,
            active: Mutex::new(leader),
            cluster_id: found_id,
            image: rx,
            heartbeats: Mutex::new(HashMap::new()),
            offline_replicas: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
        });
        runtime.spawn(quorum.clone().follow(tx));
        Ok(quorum)
    }

    /// An observer's metadata follower: long-polls the active controller for newer images.
    async fn follow(self: Arc<Self>, images: watch::Sender<Arc<MetadataImage>>) {
        let mut cursor = 0usize;
        let mut peer: Option<Peer> = None;
        loop {
            let addr = match self.active_addr() {
                Some(addr) => addr,
                None => {
                    cursor += 1;
                    self.controllers[cursor % self.controllers.len()].clone()
                }
            };
            if peer.as_ref().is_none_or(|p| p.addr != addr) {
                peer = Some(Peer::new(addr.clone()));
            }
            let rpc = Rpc::FetchImage {
                after: Some(images.borrow().applied),
                wait_ms: 1000,
            };
            let reply = peer
                .as_mut()
                .expect("peer")
                .call(&rpc, Duration::from_secs(5))
                .await;
            match reply {
                Ok(Reply::Image { image, leader, .. }) => {
                    let moved = leader.as_ref().is_none_or(|(_, a)| *a != addr);
                    *crate::locks::lock(&self.active) = leader;
                    if let Some(image) = image {
                        if image.applied > images.borrow().applied {
                            images.send_replace(Arc::new(image));
                        }
                    } else if moved {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                other => {
                    if let Err(e) = other {
                        tracing::debug!("following the metadata at {addr}: {e}");
                    }
                    *crate::locks::lock(&self.active) = None;
                    peer = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    fn active_addr(&self) -> Option<String> {
        self.active
            .lock()
            .expect("active lock")
            .as_ref()
            .map(|(_, a)| a.clone())
    }

    /// An observer's request to any controller that answers (the active one first).
    async fn call_any(&self, rpc: Rpc, timeout: Duration) -> Result<Reply> {
        let mut addrs: Vec<String> = self.active_addr().into_iter().collect();
        addrs.extend(self.controllers.iter().cloned());
        let mut last = anyhow!("no controller");
        for addr in addrs {
            match Peer::new(addr.clone()).call(&rpc, timeout).await {
                Ok(reply) => return Ok(reply),
                Err(e) => last = anyhow!("controller {addr}: {e}"),
            }
        }
        Err(last)
    }

    async fn start_on(
        runtime: &'static tokio::runtime::Runtime,
        node_id: u64,
        bootstrap: Bootstrap,
        dir: &std::path::Path,
        cluster_id: String,
        timing: RaftTiming,
    ) -> Result<Arc<RaftQuorum>> {
        ferrolog_storage::fs::get().create_dir_all(dir)?;
        let (log_store, fresh) = store::LogStore::open(dir)?;
        let (state_machine, image) = store::StateMachine::open(dir)?;
        let config = openraft::Config {
            cluster_name: "ferrolog".into(),
            heartbeat_interval: timing.heartbeat_ms,
            election_timeout_min: timing.election_min_ms,
            election_timeout_max: timing.election_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(5000),
            max_in_snapshot_log_to_keep: 1000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| anyhow!("raft config: {e}"))?;
        let raft = Raft::new(node_id, Arc::new(config), Network, log_store, state_machine)
            .await
            .map_err(|e| anyhow!("starting raft: {e}"))?;
        let (voters, controllers) = match bootstrap {
            Bootstrap::Voters(voters) => {
                if fresh {
                    let members: BTreeMap<u64, BasicNode> = voters
                        .iter()
                        .map(|(id, addr)| (*id, BasicNode::new(addr)))
                        .collect();
                    if let Err(e) = raft.initialize(members).await {
                        tracing::debug!("quorum already initialised: {e}");
                    }
                }
                let controllers = voters.values().cloned().collect();
                (voters, controllers)
            }
            Bootstrap::Join(controllers) => (BTreeMap::new(), controllers),
        };
        Ok(Arc::new(RaftQuorum {
            runtime,
            node_id,
            raft: Some(raft),
            controllers,
            voters,
            active: Mutex::new(None),
            cluster_id,
            image,
            heartbeats: Mutex::new(HashMap::new()),
            offline_replicas: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
        }))
    }

    /// The active controller, as far as this node knows.
    pub fn leader(&self) -> Option<u64> {
        match &self.raft {
            Some(raft) => raft.metrics().borrow().current_leader,
            None => self
                .active
                .lock()
                .expect("active lock")
                .as_ref()
                .map(|(id, _)| *id),
        }
    }

    /// A controller (a Raft member, voter or learner), not a broker observing the quorum.
    pub fn is_controller(&self) -> bool {
        self.raft.is_some()
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.node_id)
    }

    async fn call(&self, node: u64, rpc: Rpc) -> Result<Reply> {
        self.call_within(node, rpc, Duration::from_secs(10)).await
    }

    async fn call_within(&self, node: u64, rpc: Rpc, timeout: Duration) -> Result<Reply> {
        let addr = self
            .addr_of(node)
            .ok_or_else(|| anyhow!("no controller {node}"))?;
        let peer = {
            let mut peers = crate::locks::lock(&self.peers);
            peers
                .entry(node)
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Peer::new(addr.clone()))))
                .clone()
        };
        let mut peer = peer.lock().await;
        if peer.addr != addr {
            *peer = Peer::new(addr);
        }
        Ok(peer.call(&rpc, timeout).await?)
    }

    /// Commits a proposal through the leader (this node or another), retrying through leader
    /// changes, and waits until this node's image includes it.
    pub async fn propose(
        self: &Arc<Self>,
        proposal: Proposal,
    ) -> Result<(Arc<MetadataImage>, Vec<bool>)> {
        let quorum = self.clone();
        self.runtime
            .spawn(async move { quorum.propose_here(proposal).await })
            .await?
    }

    /// Sends a broker heartbeat to the active controller.
    pub async fn heartbeat(self: &Arc<Self>, heartbeat: Heartbeat) -> Result<()> {
        let quorum = self.clone();
        self.runtime
            .spawn(async move { quorum.heartbeat_here(heartbeat).await })
            .await?
    }

    /// Runs `task` on the controller runtime and waits for it, from synchronous code (a runtime
    /// worker hands its other tasks on while it waits).
    pub fn block_on<F>(&self, task: F) -> Result<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(task.await);
        });
        let wait = || {
            rx.recv()
                .map_err(|_| anyhow!("the controller runtime stopped"))
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    /// The quorum's state, from its leader (this node or another).
    pub async fn describe(self: &Arc<Self>) -> Result<QuorumStatus> {
        let quorum = self.clone();
        self.runtime
            .spawn(async move { quorum.describe_here().await })
            .await?
    }

    async fn describe_here(&self) -> Result<QuorumStatus> {
        if self.raft.is_none() {
            return match self
                .call_any(Rpc::ForwardDescribe, Duration::from_secs(10))
                .await?
            {
                Reply::DescribeQuorum(r) => r.map_err(|e| anyhow!(e)),
                _ => bail!("unexpected reply"),
            };
        }
        {
            {
                match self.leader() {
                    Some(l) if l == self.node_id => self
                        .status_here()
                        .ok_or_else(|| anyhow!("leadership moved")),
                    Some(l) => match self.call(l, Rpc::DescribeQuorum).await? {
                        Reply::DescribeQuorum(r) => r.map_err(|e| anyhow!(e)),
                        _ => bail!("unexpected reply"),
                    },
                    None => bail!("the controller quorum has no leader"),
                }
            }
        }
    }

    /// The leader's view of the quorum (`None` on a follower).
    fn status_here(&self) -> Option<QuorumStatus> {
        let m = self.raft.as_ref()?.metrics().borrow().clone();
        if m.current_leader != Some(self.node_id) {
            return None;
        }
        let replication = m.replication.clone().unwrap_or_default();
        let own_end = m.last_log_index.map_or(0, |i| i as i64 + 1);
        let end_of = |id: u64| {
            if id == self.node_id {
                own_end
            } else {
                replication
                    .get(&id)
                    .and_then(|l| l.map(|l| l.index as i64 + 1))
                    .unwrap_or(-1)
            }
        };
        let membership = m.membership_config.membership();
        let voter_ids: Vec<u64> = membership.voter_ids().collect();
        let voters = voter_ids.iter().map(|id| (*id, end_of(*id))).collect();
        // controllers that observe (learners), then brokers that observe
        let mut observers: Vec<(u64, i64)> = membership
            .learner_ids()
            .map(|id| (id, end_of(id)))
            .collect();
        let endpoints: BTreeMap<u64, String> = membership
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect();
        let brokers = self
            .heartbeats
            .lock()
            .expect("heartbeats lock")
            .iter()
            .filter(|(id, _)| !endpoints.contains_key(&(**id as u64)))
            .map(|(id, s)| {
                let end = if s.applied == u64::MAX {
                    -1
                } else {
                    s.applied as i64 + 1
                };
                (*id as u64, end)
            })
            .collect::<Vec<_>>();
        observers.extend(brokers);
        Some(QuorumStatus {
            leader: self.node_id as i32,
            term: m.current_term,
            high_watermark: m.last_applied.map_or(0, |l| l.index as i64 + 1),
            voters,
            observers,
            endpoints,
        })
    }

    /// Runs a task on the controller runtime.
    pub fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(task);
    }

    async fn propose_here(&self, proposal: Proposal) -> Result<(Arc<MetadataImage>, Vec<bool>)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let outcome = self.commit_here(proposal, deadline).await?;
        let mut image = self.image.clone();
        let image =
            tokio::time::timeout_at(deadline, image.wait_for(|i| i.applied >= outcome.index))
                .await
                .map_err(|_| anyhow!("the metadata log did not catch up"))??
                .clone();
        Ok((image, outcome.accepted))
    }

    /// Commits a proposal through the active controller (retrying through leader changes)
    /// without waiting for this node's image.
    async fn commit_here(&self, proposal: Proposal, deadline: Instant) -> Result<Outcome> {
        let Some(raft) = &self.raft else {
            let left = deadline.saturating_duration_since(Instant::now());
            return match self.call_any(Rpc::Forward(proposal), left).await? {
                Reply::Propose(r) => r.map_err(|e| anyhow!(e)),
                _ => bail!("unexpected reply to a proposal"),
            };
        };
        Ok(loop {
            if Instant::now() > deadline {
                bail!("the controller quorum has no leader");
            }
            match self.leader() {
                Some(leader) if leader == self.node_id => {
                    match raft.client_write(proposal.clone()).await {
                        Ok(r) => {
                            let mut outcome = r.data;
                            outcome.index = r.log_id.index;
                            break outcome;
                        }
                        Err(e) => tracing::debug!("proposal not committed: {e}"),
                    }
                }
                Some(leader) => match self.call(leader, Rpc::Propose(proposal.clone())).await {
                    Ok(Reply::Propose(Ok(outcome))) => break outcome,
                    Ok(other) => tracing::debug!("proposal to {leader}: {other:?}"),
                    Err(e) => tracing::debug!("proposal to {leader}: {e:#}"),
                },
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        })
    }

    async fn heartbeat_here(&self, heartbeat: Heartbeat) -> Result<()> {
        if self.raft.is_none() {
            return match self
                .call_any(Rpc::ForwardHeartbeat(heartbeat), HEARTBEAT_TIMEOUT)
                .await?
            {
                Reply::Heartbeat(r) => r.map_err(|e| anyhow!(e)),
                _ => bail!("unexpected heartbeat reply"),
            };
        }
        match self.leader() {
            Some(leader) if leader == self.node_id => {
                self.record_heartbeat(&heartbeat);
                Ok(())
            }
            // a heartbeat is worth nothing late: a short time-out, so the next one (perhaps to
            // a new active controller) is not held up behind it
            Some(leader) => match self
                .call_within(leader, Rpc::Heartbeat(heartbeat), HEARTBEAT_TIMEOUT)
                .await?
            {
                Reply::Heartbeat(r) => r.map_err(|e| anyhow!(e)),
                _ => bail!("unexpected heartbeat reply"),
            },
            None => bail!("no active controller"),
        }
    }

    fn record_heartbeat(&self, heartbeat: &Heartbeat) {
        self.offline_replicas
            .lock()
            .expect("offline replicas lock")
            .insert(heartbeat.broker, heartbeat.offline.clone());
        crate::locks::lock(&self.heartbeats).insert(
            heartbeat.broker,
            Session {
                seen: Instant::now(),
                shutting_down: heartbeat.shutting_down,
                applied: heartbeat.applied,
                gone: false,
                probed: None,
            },
        );
    }

    /// The committed image for an observer, once newer than `after` (`None` if it did not
    /// change within `wait`, or this node is not the active controller).
    async fn image_for_observer(&self, after: Option<u64>, wait: Duration) -> Reply {
        let leader = self.leader().and_then(|l| self.addr_of(l).map(|a| (l, a)));
        let mut image = None;
        if self.is_leader() {
            let mut images = self.image.clone();
            let newer = |i: &Arc<MetadataImage>| after.is_none_or(|a| i.applied > a);
            if let Ok(Ok(i)) = tokio::time::timeout(wait, images.wait_for(newer)).await {
                image = Some(MetadataImage::clone(&i));
            }
            drop(images);
        }
        Reply::Image {
            image,
            leader,
            cluster_id: self.cluster_id.clone(),
        }
    }

    async fn answer(&self, rpc: Rpc) -> Reply {
        let Some(raft) = &self.raft else {
            return Reply::Propose(Err("an observer does not serve controller requests".into()));
        };
        match rpc {
            // taken by the connection before any request
            Rpc::Authenticate { .. } => Reply::Authenticate(Err("already authenticated".into())),
            Rpc::Append(r) => Reply::Append(raft.append_entries(r).await),
            Rpc::Vote(r) => Reply::Vote(raft.vote(r).await),
            Rpc::Snapshot(r) => Reply::Snapshot(raft.install_snapshot(r).await),
            Rpc::Forward(p) => {
                let deadline = Instant::now() + Duration::from_secs(20);
                Reply::Propose(
                    self.commit_here(p, deadline)
                        .await
                        .map_err(|e| format!("{e:#}")),
                )
            }
            Rpc::ForwardHeartbeat(h) => {
                Reply::Heartbeat(self.heartbeat_here(h).await.map_err(|e| format!("{e:#}")))
            }
            Rpc::ForwardDescribe => {
                Reply::DescribeQuorum(self.describe_here().await.map_err(|e| format!("{e:#}")))
            }
            rpc @ (Rpc::Join { .. } | Rpc::ChangeVoters(_)) => {
                Reply::Done(self.change_membership_here(rpc).await)
            }
            Rpc::FetchImage { after, wait_ms } => {
                self.image_for_observer(after, Duration::from_millis(wait_ms.min(10_000)))
                    .await
            }
            Rpc::Propose(p) => Reply::Propose(if self.is_leader() {
                match raft.client_write(p).await {
                    Ok(r) => {
                        let mut outcome = r.data;
                        outcome.index = r.log_id.index;
                        Ok(outcome)
                    }
                    Err(e) => Err(e.to_string()),
                }
            } else {
                Err("not the active controller".into())
            }),
            Rpc::DescribeQuorum => Reply::DescribeQuorum(
                self.status_here()
                    .ok_or_else(|| "not the active controller".to_string()),
            ),
            Rpc::Heartbeat(h) => Reply::Heartbeat(if self.is_leader() {
                self.record_heartbeat(&h);
                Ok(())
            } else {
                Err("not the active controller".into())
            }),
        }
    }

    /// Runs the active controller's duties (on every controller; they act while it leads).
    pub fn serve_duties(
        self: Arc<Self>,
        config: &crate::config::BrokerConfig,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let session_timeout_ms = i64::from(config.settings.broker_session_timeout_ms);
        let rebalance = config
            .properties
            .get("auto.leader.rebalance.enable")
            .is_none_or(|v| v.eq_ignore_ascii_case("true"))
            .then(|| {
                config
                    .settings
                    .leader_imbalance_check_interval_seconds
                    .saturating_mul(1000)
            });
        let timeout = Duration::from_millis(session_timeout_ms.clamp(100, 3_600_000) as u64);
        let rebalance = rebalance.map(|ms| Duration::from_millis(ms.max(100) as u64));
        let imbalance_pct = i64::from(config.settings.leader_imbalance_per_broker_percentage);
        let heartbeat = Duration::from_millis(
            config
                .settings
                .broker_heartbeat_interval_ms
                .clamp(10, 60_000) as u64,
        );
        let min_isr = config
            .properties
            .get("min.insync.replicas")
            .cloned()
            .unwrap_or_else(|| "1".into());
        duties::run(self, timeout, heartbeat, rebalance, imbalance_pct, min_isr)
    }

    /// Serves the controller listener.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let quorum = self.clone();
            tokio::spawn(async move {
                if let Err(e) = quorum.connection(stream, peer).await {
                    tracing::debug!(%peer, "controller connection closed: {e:#}");
                }
            });
        }
    }

    /// One connection to the controller listener: TLS and SASL as it is secured, then requests
    /// as long as each is authorized.
    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: std::net::SocketAddr,
    ) -> Result<()> {
        let security = security();
        let (mut stream, mut principal): (Box<dyn Io>, String) = match &security.tls {
            None => (Box::new(stream), principal::ANONYMOUS.to_string()),
            Some(tls) => {
                let (stream, principal) = crate::security::tls::accept(tls, stream)
                    .await
                    .map_err(|e| anyhow!("TLS handshake failed: {e}"))?;
                (Box::new(stream), principal)
            }
        };
        if let Some(config) = &security.sasl {
            // a peer that stops half way is dropped, as a TLS handshake is
            principal = tokio::time::timeout(
                AUTHENTICATION_TIMEOUT,
                self.authenticate(&mut stream, config),
            )
            .await
            .map_err(|_| {
                anyhow!("SASL authentication not completed within {AUTHENTICATION_TIMEOUT:?}")
            })??;
        }
        let host = peer.ip().to_canonical().to_string();
        loop {
            let Ok(rpc) = read_frame::<Rpc, _>(&mut stream).await else {
                return Ok(());
            };
            if let Some(why) = self.refused(security, &principal, &host, &rpc) {
                let _ = write_frame(&mut stream, &Reply::Refused(why.clone())).await;
                bail!(why);
            }
            let reply = self.answer(rpc).await;
            write_frame(&mut stream, &reply).await?;
        }
    }

    /// The SASL exchange on a controller connection; the principal it establishes.
    async fn authenticate(
        &self,
        stream: &mut Box<dyn Io>,
        config: &sasl::SaslConfig,
    ) -> Result<String> {
        let mut authenticator = Authenticator::new();
        let mut started = false;
        loop {
            let rpc = read_frame_limited::<Rpc, _>(stream, sasl::MAX_RECEIVE).await?;
            let Rpc::Authenticate { mechanism, token } = rpc else {
                bail!("a controller request before SASL authentication");
            };
            if !started && !authenticator.handshake(config, &mechanism) {
                let why = format!("Unsupported SASL mechanism {mechanism}");
                write_frame(stream, &Reply::Authenticate(Err(why.clone()))).await?;
                bail!(why);
            }
            started = true;
            let image = self.image.borrow().clone();
            let lookup = |user: &str, m: ferrolog_client::sasl::Mechanism| {
                image.scram.get(user)?.get(m.name()).cloned()
            };
            match authenticator.step(config, &token, lookup) {
                Step::Challenge(token) => {
                    write_frame(stream, &Reply::Authenticate(Ok(token))).await?
                }
                Step::Done {
                    principal, token, ..
                } => {
                    write_frame(stream, &Reply::Authenticate(Ok(token))).await?;
                    return Ok(principal);
                }
                Step::Failed(why) => {
                    tokio::time::sleep(Duration::from_millis(config.failure_delay_ms)).await;
                    write_frame(stream, &Reply::Authenticate(Err(why.clone()))).await?;
                    bail!(why);
                }
            }
        }
    }

    /// Why `principal` may not send `rpc`, with an authorizer: Kafka's controller asks
    /// CLUSTER_ACTION of Raft's requests, broker heartbeats and what brokers forward, DESCRIBE
    /// to describe the quorum and ALTER to change the voters.
    fn refused(
        &self,
        security: &ControllerSecurity,
        principal: &str,
        host: &str,
        rpc: &Rpc,
    ) -> Option<String> {
        let (operation, api) = match rpc {
            Rpc::Authenticate { .. } => return Some("already authenticated".into()),
            Rpc::Append(_) => (Operation::ClusterAction, "Fetch"),
            Rpc::Vote(_) => (Operation::ClusterAction, "Vote"),
            Rpc::Snapshot(_) => (Operation::ClusterAction, "FetchSnapshot"),
            Rpc::Propose(_) | Rpc::Forward(_) => (Operation::ClusterAction, "Envelope"),
            Rpc::Heartbeat(_) | Rpc::ForwardHeartbeat(_) => {
                (Operation::ClusterAction, "BrokerHeartbeat")
            }
            Rpc::FetchImage { .. } => (Operation::ClusterAction, "Fetch"),
            Rpc::DescribeQuorum | Rpc::ForwardDescribe => (Operation::Describe, "DescribeQuorum"),
            Rpc::Join { .. } => (Operation::Alter, "AddRaftVoter"),
            Rpc::ChangeVoters(_) => (Operation::Alter, "AddRaftVoter"),
        };
        let authorizer = security.authorizer.as_ref()?;
        let image = self.image.borrow().clone();
        let who = Requester { principal, host };
        let allowed = authorizer.authorize(
            &image.acls,
            who,
            operation,
            ResourceType::Cluster,
            CLUSTER_NAME,
            api,
            true,
        );
        (!allowed).then(|| format!("{principal} may not {operation:?} the cluster ({api})"))
    }
}

impl MetadataLog for Arc<RaftQuorum> {
    fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    fn commit(&self, records: &[MetadataRecord]) -> Result<(Arc<MetadataImage>, Vec<bool>)> {
        if records.is_empty() {
            return Ok((MetadataLog::image(self), Vec::new()));
        }
        let proposal = Proposal {
            records: records.to_vec(),
        };
        let quorum = self.clone();
        self.block_on(async move { quorum.propose_here(proposal).await })?
    }

    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    fn end_offset(&self) -> i64 {
        match &self.raft {
            Some(raft) => raft
                .metrics()
                .borrow()
                .last_log_index
                .map_or(0, |i| i as i64 + 1),
            None => self.image.borrow().applied as i64 + 1,
        }
    }

    fn close(&self) -> Result<()> {
        Ok(())
    }
}
