//! A running node: Raft, the applied state, and the write and read paths
//! every part of the server goes through.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bm_api::{ApiError, ErrorCode};
use bm_raft::{AppliedWatch, NoNetwork, NodeInfo, Raft, SmStore, Storage};
use openraft::error::RaftError;

use crate::auth;
use crate::blobs::Blobs;
use crate::config::NodeConfig;
use crate::proposer::Proposer;
use crate::sm::{Command, Replicated, Reply, State};

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
    proposer: Proposer,
    heartbeats: crate::heartbeats::Heartbeats,
    config: NodeConfig,
}

impl Node {
    /// Opens storage, starts Raft (initialising a one-voter cluster the first
    /// time) and waits until this node leads.
    pub async fn open(config: NodeConfig, api_url: String) -> anyhow::Result<Self> {
        let admin = auth::load_or_create_admin_token(&config.admin_token_file)?;
        let storage = Storage::<Replicated>::open(&config.data_dir.join("raft"))?;
        let sm = storage.sm.clone();
        let t = &config.raft;
        let raft_config = openraft::Config {
            cluster_name: "bm".into(),
            heartbeat_interval: t.heartbeat_ms,
            election_timeout_min: t.election_timeout_min_ms,
            election_timeout_max: t.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(t.snapshot_every),
            max_in_snapshot_log_to_keep: t.keep_after_snapshot,
            ..Default::default()
        };
        let raft_config = Arc::new(raft_config.validate()?);
        let raft = Raft::new(config.id, raft_config, NoNetwork, storage.log, storage.sm).await?;
        if !raft.is_initialized().await? {
            let me = NodeInfo { peer_addr: String::new(), api_addr: api_url };
            raft.initialize(BTreeMap::from([(config.id, me)])).await?;
        }
        raft.wait(Some(Duration::from_secs(30)))
            .state(openraft::ServerState::Leader, "become leader")
            .await
            .map_err(|e| anyhow::anyhow!("node {} did not become leader: {e}", config.id))?;
        let blobs = Blobs::new(config.data_dir.join("blobs"));
        let proposer = Proposer::start(raft.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                id: config.id,
                raft,
                sm,
                admin_hash: auth::hash_token(&admin),
                blobs,
                proposer,
                heartbeats: Default::default(),
                config,
            }),
        })
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

    /// Hash of the admin token.
    pub fn admin_hash(&self) -> &str {
        &self.inner.admin_hash
    }

    /// Reads the local applied state (may trail the leader by a moment).
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        self.inner.sm.read(|m| f(&m.0))
    }

    /// Waits until this node has applied everything committed before the
    /// call, then reads: a linearizable read.
    pub async fn read_linearizable<R>(&self, f: impl FnOnce(&State) -> R) -> Result<R, ApiError> {
        self.inner.raft.ensure_linearizable().await.map_err(|e| match e {
            RaftError::APIError(e) => ApiError::new(ErrorCode::Unavailable, format!("cannot confirm leadership: {e}")),
            RaftError::Fatal(e) => ApiError::new(ErrorCode::Internal, format!("raft stopped: {e}")),
        })?;
        Ok(self.read(f))
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

    /// Commit latencies recorded by the write path (for benchmarks).
    pub fn commit_latencies(&self) -> &crate::proposer::Latencies {
        self.inner.proposer.latencies()
    }

    /// Stops Raft.
    pub async fn shutdown(&self) {
        let _ = self.inner.raft.shutdown().await;
    }
}
