//! A running node: Raft, the applied state, and the write and read paths
//! every part of the server goes through.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bm_api::{ApiError, ErrorCode};
use bm_raft::{AppliedWatch, NoNetwork, NodeInfo, PeerEndpoint, Raft, SmStore, Storage};
use openraft::error::RaftError;
use std::sync::OnceLock;

use crate::auth;
use crate::blobs::Blobs;
use crate::cluster::forward::{self, Leader};
use crate::cluster::proto::PeerCall;
use crate::config::NodeConfig;
use crate::proposer::{Proposer, WritePause};
use crate::sm::{Command, Replicated, Reply, State};

/// Items per hold of the state's lock in [`Node::read_paged`]: about a
/// millisecond of copying.
pub const READ_PAGE: usize = 1024;

/// Shared handle on a node's parts; cheap to clone into handlers and tasks.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    raft: Raft,
    sm: SmStore<Replicated>,
    admin_hash: String,
    blobs: Blobs,
    chunks: crate::chunks::Chunks,
    missed: Arc<crate::cluster::missed::Missed>,
    proposer: Proposer,
    heartbeats: crate::heartbeats::Heartbeats,
    config: NodeConfig,
    peer: Option<PeerEndpoint>,
    pause: WritePause,
    quiet_until: std::sync::Mutex<Option<std::time::Instant>>,
    log: bm_raft::LogStore,
    /// The cluster CA certificate (PEM), for agents; none without a peer link.
    ca_pem: Option<String>,
    /// Agents connected over QUIC right now.
    agents: std::sync::atomic::AtomicUsize,
    /// Output uploads under way here.
    uploads: Arc<crate::uploads::InFlight>,
}

impl Node {
    /// Opens storage and starts Raft. A node without a peer link is a
    /// cluster of one: it initialises itself the first time and waits to
    /// lead. A node with one serves its peers over QUIC, initialises the
    /// cluster from `initial_members` the first time (every initial member
    /// does, with the same list), and does not wait for an election.
    pub async fn open(config: NodeConfig, api_url: String) -> anyhow::Result<Self> {
        let admin = auth::load_or_create_admin_token(&config.admin_token_file)?;
        let storage = Storage::<Replicated>::open(&config.data_dir.join("raft"), Some(config.id))?;
        let sm = storage.sm.clone();
        let log = storage.log.clone();
        let t = &config.raft;
        let raft_config = openraft::Config {
            cluster_name: "bm".into(),
            heartbeat_interval: t.heartbeat_ms,
            election_timeout_min: t.election_timeout_min_ms,
            election_timeout_max: t.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(t.snapshot_every_for(config.id)),
            max_in_snapshot_log_to_keep: t.keep_after_snapshot,
            // A snapshot goes in 1 MiB pieces, each of which may take a
            // while to write on a busy follower (openraft's 200 ms default
            // makes a loaded node start over forever).
            snapshot_max_chunk_size: 1 << 20,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        };
        let raft_config = Arc::new(raft_config.validate()?);
        let this = Arc::new(OnceLock::<Node>::new());
        let mut ca_pem = None;
        let (raft, peer) = match &config.peer {
            None => {
                let raft = Raft::new(config.id, raft_config, NoNetwork, storage.log, storage.sm).await?;
                if !raft.is_initialized().await? {
                    let me = NodeInfo { peer_addr: String::new(), api_addr: api_url };
                    raft.initialize(BTreeMap::from([(config.id, me)])).await?;
                }
                raft.wait(Some(Duration::from_secs(30)))
                    .state(openraft::ServerState::Leader, "become leader")
                    .await
                    .map_err(|e| anyhow::anyhow!("node {} did not become leader: {e}", config.id))?;
                (raft, None)
            }
            Some(p) => {
                let tls = bm_raft::tls::PeerTls::load(&p.tls)?;
                ca_pem = Some(tls.ca_pem().to_string());
                let ep = PeerEndpoint::bind(p.listen, &tls, Default::default())
                    .map_err(|e| anyhow::anyhow!("cannot open the peer endpoint on {}: {e:#}", p.listen))?;
                let net = ep.network(storage.durable());
                let raft = Raft::new(config.id, raft_config, net, storage.log, storage.sm).await?;
                ep.serve(raft.clone(), crate::cluster::handler::app_handler(this.clone()));
                ep.serve_agents(crate::agent_link::handler(this.clone()));
                if !raft.is_initialized().await? && !p.initial_members.is_empty() {
                    let members: BTreeMap<u64, NodeInfo> = p
                        .initial_members
                        .iter()
                        .map(|m| (m.id, NodeInfo { peer_addr: m.peer.clone(), api_addr: m.api.clone() }))
                        .collect();
                    if let Err(e) = raft.initialize(members).await {
                        tracing::info!(error = %e, "cluster already initialised by another member");
                    }
                }
                tracing::info!(node = config.id, peer = %ep.local_addr(), "peer endpoint serving");
                (raft, Some(ep))
            }
        };
        let blobs = Blobs::new(config.data_dir.join("blobs"));
        let chunks = crate::chunks::Chunks {
            store: crate::chunks::ChunkStore::open(&config.data_dir.join("chunks"))?,
            cache: Default::default(),
        };
        let pause = WritePause::default();
        let proposer = Proposer::start(raft.clone(), config.id, peer.clone(), pause.clone());
        let node = Self {
            inner: Arc::new(Inner {
                id: config.id,
                raft,
                sm,
                admin_hash: auth::hash_token(&admin),
                blobs,
                chunks,
                missed: Default::default(),
                proposer,
                heartbeats: Default::default(),
                config,
                peer,
                pause,
                quiet_until: Default::default(),
                log,
                ca_pem,
                agents: Default::default(),
                uploads: Default::default(),
            }),
        };
        let _ = this.set(node.clone());
        Ok(node)
    }

    /// The peer link, when this node has one.
    pub fn peer(&self) -> Option<&PeerEndpoint> {
        self.inner.peer.as_ref()
    }

    /// How many agents are connected to this node over QUIC.
    pub fn agents_connected(&self) -> usize {
        self.inner.agents.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Output uploads under way on this node, for the per-job limit.
    pub fn uploads(&self) -> &Arc<crate::uploads::InFlight> {
        &self.inner.uploads
    }

    /// Counts an agent connection for as long as the returned guard lives.
    pub fn agent_connected(&self) -> AgentCount {
        self.inner.agents.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        AgentCount(self.clone())
    }

    /// The cluster CA certificate (PEM), when this node has a peer link.
    pub fn ca_pem(&self) -> Option<&str> {
        self.inner.ca_pem.as_deref()
    }

    /// The peer link, or an error saying this is a cluster of one.
    pub fn peer_or_err(&self) -> Result<&PeerEndpoint, ApiError> {
        self.peer().ok_or_else(|| {
            ApiError::new(ErrorCode::BadRequest, "this node runs without a peer link (a cluster of one)")
        })
    }

    /// Holds new writes on this node until the guard is dropped (during a
    /// leadership transfer).
    pub fn pause_writes(&self) -> crate::proposer::PauseGuard {
        self.inner.pause.pause()
    }

    /// Whether writes are held here.
    pub fn writes_paused(&self) -> bool {
        self.inner.pause.is_paused()
    }

    /// Keeps this node from starting elections until `until` (a leadership
    /// transfer to another node is under way).
    pub fn set_quiet_until(&self, until: std::time::Instant) {
        *self.inner.quiet_until.lock().expect("quiet lock") = Some(until);
    }

    /// Whether a quiet period is in force.
    pub fn is_quiet(&self) -> bool {
        self.inner.quiet_until.lock().expect("quiet lock").is_some_and(|u| std::time::Instant::now() < u)
    }

    /// The id of the last entry in this node's log.
    pub fn last_log_id(&self) -> Option<openraft::LogId<u64>> {
        self.inner.log.last_log_id()
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The Raft handle.
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// The blob store.
    pub fn blobs(&self) -> &Blobs {
        &self.inner.blobs
    }

    /// The log chunk store and its cache.
    pub fn chunks(&self) -> &crate::chunks::Chunks {
        &self.inner.chunks
    }

    /// Peers that missed a copy of a log chunk or a blob lately: bytes
    /// homed there go to every voter meanwhile.
    pub fn missed(&self) -> &Arc<crate::cluster::missed::Missed> {
        &self.inner.missed
    }

    /// Hash of the admin token.
    pub fn admin_hash(&self) -> &str {
        &self.inner.admin_hash
    }

    /// Reads the local applied state (may trail the leader by a moment).
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        self.inner.sm.read(|m| f(&m.0))
    }

    /// Reads a long ordered part of the state (every job, every referenced
    /// blob) [`READ_PAGE`] items per hold of the state's lock, so that
    /// applying waits for one page at most, never for the whole walk.
    /// `page(state, after, n)` gives up to `n` items after the one whose
    /// key is `after` (from the first with `None`); `key` names an item.
    /// Items changed during the walk may be seen before or after the
    /// change, as with any read that precedes a commit.
    pub fn read_paged<K, T>(
        &self,
        key: impl Fn(&T) -> K,
        page: impl Fn(&State, Option<&K>, usize) -> Vec<T>,
    ) -> Vec<T> {
        let (mut all, mut after) = (Vec::new(), None);
        loop {
            let got = self.read(|s| page(s, after.as_ref(), READ_PAGE));
            let more = got.len() == READ_PAGE;
            after = got.last().map(&key);
            all.extend(got);
            if !more {
                return all;
            }
        }
    }

    /// Waits until this node has applied everything committed before the
    /// call, then reads: a linearizable read.
    /// On a follower, the leader confirms it leads and names the index to
    /// wait for (read-index); the read is then served here.
    pub async fn read_linearizable<R>(&self, f: impl FnOnce(&State) -> R) -> Result<R, ApiError> {
        let deadline = tokio::time::Instant::now() + forward::CALL_TIMEOUT;
        // A node that believed it led may find, when it asks its peers,
        // that it lost the lead meanwhile: the read then goes to the new
        // leader once one is known, within the same time limit.
        while !self.read_index_reached().await? {
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::new(ErrorCode::Unavailable, "no leader could confirm a read; retry"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(self.read(f))
    }

    /// Waits until this node has applied what the leader committed (asking
    /// the leader, or confirming with a quorum that this node leads).
    /// False when this node found it no longer leads.
    async fn read_index_reached(&self) -> Result<bool, ApiError> {
        let raft = &self.inner.raft;
        let remote = match (&self.inner.peer, forward::leader(raft, self.id())) {
            (Some(ep), Leader::Other { .. } | Leader::Unknown) => {
                forward::to_leader(raft, ep, self.id(), &PeerCall::ReadIndex, forward::CALL_TIMEOUT).await?
            }
            _ => None,
        };
        match remote {
            Some(bytes) => {
                let idx: Option<u64> = bm_raft::codec::decode("read index", &bytes)
                    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
                raft.wait(Some(forward::CALL_TIMEOUT))
                    .applied_index_at_least(idx, "read index applied")
                    .await
                    .map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("this node is not catching up: {e}")))?;
                Ok(true)
            }
            None => {
                let confirm = tokio::time::timeout(forward::CALL_TIMEOUT, raft.ensure_linearizable());
                let confirmed = confirm.await.map_err(|_| {
                    ApiError::new(ErrorCode::Unavailable, "no quorum confirmed this node still leads; retry")
                })?;
                match confirmed {
                    Ok(_) => Ok(true),
                    Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(_))) => Ok(false),
                    Err(RaftError::APIError(e)) => {
                        Err(ApiError::new(ErrorCode::Unavailable, format!("cannot confirm leadership: {e}")))
                    }
                    Err(RaftError::Fatal(e)) => Err(ApiError::new(ErrorCode::Internal, format!("raft stopped: {e}"))),
                }
            }
        }
    }

    /// Reads the local state like [`Node::read`], but when `f` finds
    /// nothing (`NotFound`) catches up with the leader first
    /// ([`Node::read_linearizable`]) and asks again: a job (or value, or
    /// output) acknowledged through another node before this request is
    /// never reported missing because this node has not applied it yet.
    /// Reads that find what they look for stay local and quick.
    pub async fn read_found<R>(&self, f: impl Fn(&State) -> Result<R, ApiError>) -> Result<R, ApiError> {
        match self.read(&f) {
            Err(e) if e.code == ErrorCode::NotFound => self.read_linearizable(&f).await?,
            found => found,
        }
    }

    /// Notified whenever a log entry is applied.
    pub fn watch(&self) -> AppliedWatch {
        self.inner.sm.watch()
    }

    /// Whether this node is the leader now.
    pub fn is_leader(&self) -> bool {
        self.inner.raft.metrics().borrow().current_leader == Some(self.inner.id)
    }

    /// Commits a command on a quorum and returns what applying it gave.
    /// Nothing is acknowledged before it is committed.
    pub async fn propose(&self, cmd: Command) -> Result<Reply, ApiError> {
        self.inner.proposer.propose(cmd).await?.map_err(ApiError::from)
    }

    /// When each worker's agent last called this node.
    pub fn heartbeats(&self) -> &crate::heartbeats::Heartbeats {
        &self.inner.heartbeats
    }

    /// Commit latencies recorded by the write path (benchmarks and `GET /v1/cluster/latency`).
    pub fn commit_latencies(&self) -> &crate::proposer::Latencies {
        self.inner.proposer.latencies()
    }

    /// Stops Raft and closes the peer link.
    pub async fn shutdown(&self) {
        let _ = self.inner.raft.shutdown().await;
        if let Some(ep) = &self.inner.peer {
            ep.close();
        }
    }
}

/// One connected agent, counted in [`Node::agents_connected`] until dropped.
pub struct AgentCount(Node);

impl Drop for AgentCount {
    fn drop(&mut self) {
        self.0.inner.agents.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
