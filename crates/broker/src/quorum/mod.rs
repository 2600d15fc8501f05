//! The controller quorum: the metadata log replicated by Raft among the controllers
//! (`controller.quorum.voters`), built on openraft and reached by the rest of the broker only
//! through [`MetadataLog`]. The Raft leader is the active controller: it fences brokers that stop
//! heartbeating, elects partition leaders from the ISR and moves leadership off brokers in a
//! controlled shutdown ([`duties`]).
//!
//! Controllers talk over the controller listener with length-prefixed JSON frames ([`Rpc`]):
//! Raft's own messages, proposals forwarded to the leader, and broker heartbeats.

pub mod duties;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::metadata::{MetadataImage, MetadataLog, MetadataRecord};

openraft::declare_raft_types!(
    /// ferrolog's Raft types: proposals are lists of metadata records.
    pub TypeConfig:
        D = Proposal,
        R = Outcome,
);

pub type Raft = openraft::Raft<TypeConfig>;

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
}

#[derive(Debug, Serialize, Deserialize)]
enum Rpc {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    Propose(Proposal),
    Heartbeat(Heartbeat),
    DescribeQuorum,
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    Snapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Propose(Result<Outcome, String>),
    Heartbeat(Result<(), String>),
    DescribeQuorum(Result<QuorumStatus, String>),
}

const MAX_FRAME: usize = 256 * 1024 * 1024;

async fn write_frame<T: Serialize>(stream: &mut TcpStream, value: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await
}

async fn read_frame<T: for<'de> Deserialize<'de>>(stream: &mut TcpStream) -> std::io::Result<T> {
    let len = stream.read_u32().await? as usize;
    if len > MAX_FRAME {
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
    conn: Option<TcpStream>,
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
                let stream = TcpStream::connect(&self.addr).await?;
                stream.set_nodelay(true)?;
                self.conn = Some(stream);
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
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = NetworkClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> NetworkClient {
        NetworkClient {
            target,
            peer: Peer::new(node.addr.clone()),
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
        self.peer
            .call(&rpc, option.hard_ttl().max(Duration::from_millis(500)))
            .await
            .map_err(unreachable)
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

/// Parses `controller.quorum.voters` (`id@host:port,...`).
pub fn parse_voters(voters: &str) -> Result<BTreeMap<u64, String>> {
    let mut map = BTreeMap::new();
    for voter in voters.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let (id, addr) = voter
            .split_once('@')
            .ok_or_else(|| anyhow!("Invalid value {voters} for configuration controller.quorum.voters: expected id@host:port"))?;
        let id: u64 = id
            .parse()
            .with_context(|| format!("controller.quorum.voters: node id {id}"))?;
        if !addr.contains(':') {
            bail!("Invalid value {voters} for configuration controller.quorum.voters: {addr} has no port");
        }
        map.insert(id, addr.to_string());
    }
    if map.is_empty() {
        bail!("controller.quorum.voters is empty");
    }
    Ok(map)
}

/// This node's member of the controller quorum. Raft, the controller listener and the active
/// controller's duties run on their own runtime, so a broker busy or blocked on metadata
/// commits can never starve the quorum that completes them.
pub struct RaftQuorum {
    runtime: &'static tokio::runtime::Runtime,
    pub node_id: u64,
    pub raft: Raft,
    voters: BTreeMap<u64, String>,
    image: watch::Receiver<Arc<MetadataImage>>,
    /// Broker heartbeats seen while this node is the active controller.
    pub(crate) heartbeats: Mutex<HashMap<i32, (Instant, bool)>>,
    peers: tokio::sync::Mutex<HashMap<u64, Peer>>,
}

impl RaftQuorum {
    /// Opens the Raft log and state machine under `dir` and starts Raft. A brand-new quorum
    /// (no vote, no log on any voter) is initialised with the configured voters.
    pub fn start(
        node_id: u64,
        voters: BTreeMap<u64, String>,
        dir: &std::path::Path,
    ) -> Result<Arc<RaftQuorum>> {
        // lives as long as the process: a runtime may not be dropped inside another
        let runtime: &'static tokio::runtime::Runtime = Box::leak(Box::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("controller")
                .enable_all()
                .build()?,
        ));
        let dir = dir.to_path_buf();
        std::thread::scope(|s| {
            s.spawn(|| runtime.block_on(Self::start_on(runtime, node_id, voters, &dir)))
                .join()
                .map_err(|_| anyhow!("starting the controller panicked"))?
        })
    }

    async fn start_on(
        runtime: &'static tokio::runtime::Runtime,
        node_id: u64,
        voters: BTreeMap<u64, String>,
        dir: &std::path::Path,
    ) -> Result<Arc<RaftQuorum>> {
        std::fs::create_dir_all(dir)?;
        let (log_store, fresh) = store::LogStore::open(dir)?;
        let (state_machine, image) = store::StateMachine::open(dir)?;
        let config = openraft::Config {
            cluster_name: "ferrolog".into(),
            heartbeat_interval: 100,
            election_timeout_min: 400,
            election_timeout_max: 800,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(5000),
            max_in_snapshot_log_to_keep: 1000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| anyhow!("raft config: {e}"))?;
        let raft = Raft::new(node_id, Arc::new(config), Network, log_store, state_machine)
            .await
            .map_err(|e| anyhow!("starting raft: {e}"))?;
        if fresh {
            let members: BTreeMap<u64, BasicNode> = voters
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            if let Err(e) = raft.initialize(members).await {
                tracing::debug!("quorum already initialised: {e}");
            }
        }
        Ok(Arc::new(RaftQuorum {
            runtime,
            node_id,
            raft,
            voters,
            image,
            heartbeats: Mutex::new(HashMap::new()),
            peers: tokio::sync::Mutex::new(HashMap::new()),
        }))
    }

    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.node_id)
    }

    pub fn voters(&self) -> &BTreeMap<u64, String> {
        &self.voters
    }

    async fn call(&self, node: u64, rpc: Rpc) -> Result<Reply> {
        let addr = self
            .voters
            .get(&node)
            .ok_or_else(|| anyhow!("no controller {node}"))?
            .clone();
        let mut peers = self.peers.lock().await;
        let peer = peers.entry(node).or_insert_with(|| Peer::new(addr));
        Ok(peer.call(&rpc, Duration::from_secs(10)).await?)
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
            .spawn(async move {
                match quorum.leader() {
                    Some(l) if l == quorum.node_id => quorum
                        .status_here()
                        .ok_or_else(|| anyhow!("leadership moved")),
                    Some(l) => match quorum.call(l, Rpc::DescribeQuorum).await? {
                        Reply::DescribeQuorum(r) => r.map_err(|e| anyhow!(e)),
                        _ => bail!("unexpected reply"),
                    },
                    None => bail!("the controller quorum has no leader"),
                }
            })
            .await?
    }

    /// The leader's view of the quorum (`None` on a follower).
    fn status_here(&self) -> Option<QuorumStatus> {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader != Some(self.node_id) {
            return None;
        }
        let replication = m.replication.clone().unwrap_or_default();
        let own_end = m.last_log_index.map_or(0, |i| i as i64 + 1);
        let voters = self
            .voters
            .keys()
            .map(|id| {
                let end = if *id == self.node_id {
                    own_end
                } else {
                    replication
                        .get(id)
                        .and_then(|l| l.map(|l| l.index as i64 + 1))
                        .unwrap_or(-1)
                };
                (*id, end)
            })
            .collect();
        Some(QuorumStatus {
            leader: self.node_id as i32,
            term: m.current_term,
            high_watermark: m.last_applied.map_or(0, |l| l.index as i64 + 1),
            voters,
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
        let outcome = loop {
            if Instant::now() > deadline {
                bail!("the controller quorum has no leader");
            }
            match self.leader() {
                Some(leader) if leader == self.node_id => {
                    match self.raft.client_write(proposal.clone()).await {
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
        };
        let mut image = self.image.clone();
        let image = tokio::time::timeout_at(
            deadline.into(),
            image.wait_for(|i| i.applied >= outcome.index),
        )
        .await
        .map_err(|_| anyhow!("the metadata log did not catch up"))??
        .clone();
        Ok((image, outcome.accepted))
    }

    async fn heartbeat_here(&self, heartbeat: Heartbeat) -> Result<()> {
        match self.leader() {
            Some(leader) if leader == self.node_id => {
                self.record_heartbeat(&heartbeat);
                Ok(())
            }
            Some(leader) => match self.call(leader, Rpc::Heartbeat(heartbeat)).await? {
                Reply::Heartbeat(r) => r.map_err(|e| anyhow!(e)),
                _ => bail!("unexpected heartbeat reply"),
            },
            None => bail!("no active controller"),
        }
    }

    fn record_heartbeat(&self, heartbeat: &Heartbeat) {
        self.heartbeats
            .lock()
            .expect("heartbeats lock")
            .insert(heartbeat.broker, (Instant::now(), heartbeat.shutting_down));
    }

    async fn answer(&self, rpc: Rpc) -> Reply {
        match rpc {
            Rpc::Append(r) => Reply::Append(self.raft.append_entries(r).await),
            Rpc::Vote(r) => Reply::Vote(self.raft.vote(r).await),
            Rpc::Snapshot(r) => Reply::Snapshot(self.raft.install_snapshot(r).await),
            Rpc::Propose(p) => Reply::Propose(if self.is_leader() {
                match self.raft.client_write(p).await {
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
    pub async fn serve_duties(self: Arc<Self>, session_timeout_ms: i64, rebalance_ms: Option<i64>) {
        let timeout = Duration::from_millis(session_timeout_ms.clamp(100, 3_600_000) as u64);
        let rebalance = rebalance_ms.map(|ms| Duration::from_millis(ms.max(100) as u64));
        duties::run(self, timeout, rebalance).await
    }

    /// Serves the controller listener.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let quorum = self.clone();
            tokio::spawn(async move {
                while let Ok(rpc) = read_frame::<Rpc>(&mut stream).await {
                    let reply = quorum.answer(rpc).await;
                    if write_frame(&mut stream, &reply).await.is_err() {
                        break;
                    }
                }
            });
        }
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
        self.raft
            .metrics()
            .borrow()
            .last_log_index
            .map_or(0, |i| i as i64 + 1)
    }

    fn close(&self) -> Result<()> {
        Ok(())
    }
}
