//! The node's TOML configuration file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What `bm-node --config FILE` reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id in the cluster (1, 2, 3 …).
    #[serde(default = "one")]
    pub id: u64,
    /// Where the node keeps its database and blobs.
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on (`127.0.0.1:0` picks a free port).
    pub listen_http: SocketAddr,
    /// File holding the cluster admin token; created with a fresh token
    /// (mode 0600) when missing.
    pub admin_token_file: PathBuf,
    /// The URL clients should use for this node's API, when it differs
    /// from the listen address (behind a proxy).
    #[serde(default)]
    pub public_url: Option<String>,
    /// A worker whose agent has not called in for this long is lost: its
    /// job fails with that cause and the worker is destroyed.
    #[serde(default = "default_lease")]
    pub worker_lease_secs: u64,
    /// Raft tuning.
    #[serde(default)]
    pub raft: RaftTuning,
}

fn default_lease() -> u64 {
    120
}

fn one() -> u64 {
    1
}

/// Raft timing and log-compaction knobs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftTuning {
    /// Leader heartbeat, milliseconds.
    pub heartbeat_ms: u64,
    /// Election timeout range, milliseconds.
    pub election_timeout_min_ms: u64,
    /// Election timeout range, milliseconds.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many new log entries.
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot (for lagging followers).
    pub keep_after_snapshot: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        Self {
            heartbeat_ms: 100,
            election_timeout_min_ms: 400,
            election_timeout_max_ms: 800,
            snapshot_every: 20_000,
            keep_after_snapshot: 5_000,
        }
    }
}

impl NodeConfig {
    /// Reads and checks a config file; errors name the file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        let cfg: NodeConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("invalid config {}: {e}", path.display()))?;
        if cfg.id == 0 {
            anyhow::bail!("invalid config {}: id must be 1 or more", path.display());
        }
        Ok(cfg)
    }

    /// A config for a node keeping everything under `dir`.
    pub fn in_dir(dir: &Path, listen_http: SocketAddr) -> Self {
        Self {
            id: 1,
            data_dir: dir.join("data"),
            listen_http,
            admin_token_file: dir.join("admin-token"),
            public_url: None,
            worker_lease_secs: default_lease(),
            raft: RaftTuning::default(),
        }
    }
}
