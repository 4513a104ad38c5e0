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
    /// Idle workers the scheduler keeps ready per target (target name to
    /// count), so that a job starts on a worker whose agent already waits
    /// instead of waiting for one to be made. None by default.
    #[serde(default)]
    pub spare_workers: std::collections::BTreeMap<String, usize>,
    /// Raft tuning.
    #[serde(default)]
    pub raft: RaftTuning,
    /// The peer link (Raft over QUIC with mutual TLS). Without it the node
    /// is a cluster of one.
    #[serde(default)]
    pub peer: Option<PeerConfig>,
    /// Sizes and counts a job may not exceed.
    #[serde(default)]
    pub limits: Limits,
    /// How long finished jobs keep their logs and outputs.
    #[serde(default)]
    pub retention: Retention,
    /// Keep a copy of every log chunk and every output blob here, not only
    /// of those this node is a home of (the repair pass fetches the
    /// others): for the node whose `data_dir` is backed up, so that one
    /// copy restores every log and output (docs/cluster.md). Off by
    /// default: such bytes live on a majority of the voters. Read under its
    /// first name, `keep_all_log_chunks`, too.
    #[serde(default, alias = "keep_all_log_chunks")]
    pub keep_all_bytes: bool,
    /// Deliberate bugs for proving that the chaos suite's checker catches
    /// them. Never set these on a real cluster.
    #[serde(default, skip_serializing_if = "TestOnly::is_off")]
    pub test_only: TestOnly,
}

/// Per-job limits, each refused or cut with a message naming it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest output file, bytes.
    pub max_output_bytes: u64,
    /// Most log bytes (stdout, stderr and control lines the agent sends)
    /// kept per job; the rest is dropped with a note in the log.
    pub max_log_bytes: u64,
    /// Most output files per job.
    pub max_outputs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_output_bytes: 1 << 30, max_log_bytes: 1 << 30, max_outputs: 10_000 }
    }
}

/// Retention of finished jobs' logs and outputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Purge a finished job's log and outputs this long after it ended;
    /// none keeps them forever. The job record stays, marked purged;
    /// published files stay published.
    #[serde(default)]
    pub purge_after_secs: Option<u64>,
    /// How often the leader looks for jobs to purge, and each node for
    /// blob files no job or published file refers to any more.
    pub check_every_secs: u64,
    /// An unreferenced blob is deleted only once it is this old (an upload
    /// is stored before its reference is committed).
    pub gc_grace_secs: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self { purge_after_secs: None, check_every_secs: 300, gc_grace_secs: 3600 }
    }
}

/// Deliberate bugs, off by default (see [`NodeConfig::test_only`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestOnly {
    /// Job submissions are acknowledged at once and committed in the
    /// background: an acknowledged job can be lost.
    #[serde(default)]
    pub ack_before_commit: bool,
}

impl TestOnly {
    fn is_off(&self) -> bool {
        *self == TestOnly::default()
    }
}

/// How a node reaches and is reached by the other nodes of its cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// UDP address the QUIC peer endpoint listens on.
    pub listen: SocketAddr,
    /// The address other nodes use to reach this one, when it differs
    /// from `listen` (NAT, a relay); kept in the cluster membership.
    #[serde(default)]
    pub advertise: Option<String>,
    /// The cluster CA and this node's certificate and key (PEM files).
    pub tls: bm_raft::tls::TlsFiles,
    /// The voters a brand-new cluster starts with. Every node of the first
    /// set lists the same members; a node added later lists none and waits
    /// to be added with `bm cluster add`.
    #[serde(default)]
    pub initial_members: Vec<Member>,
}

/// A member of the cluster as the configuration names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Its node id.
    pub id: u64,
    /// Its peer (QUIC) address.
    pub peer: String,
    /// Its HTTP API base URL.
    pub api: String,
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
    /// Build a snapshot after this many new log entries (node `id` waits
    /// `id mod 5` tenths longer: see [`RaftTuning::snapshot_every_for`]).
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot (for lagging followers).
    pub keep_after_snapshot: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        Self {
            heartbeat_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_every: 20_000,
            keep_after_snapshot: 5_000,
        }
    }
}

impl RaftTuning {
    /// The default timing with a snapshot every 200 entries (20 kept
    /// behind it): tests and chaos runs reach snapshot installs, log purges
    /// and catch-up by snapshot within seconds instead of hours of load.
    pub fn frequent_snapshots() -> Self {
        Self { snapshot_every: 200, keep_after_snapshot: 20, ..Self::default() }
    }

    /// The snapshot interval of node `id`: `snapshot_every` plus `id mod 5`
    /// tenths of it. Every member applies the same log, so with one
    /// interval they all built a snapshot at the same moment, and the
    /// whole cluster stalled while three nodes encoded and synced the whole
    /// state on the same cores and disk (docs/benchmarks.md). Different
    /// intervals let them take turns.
    pub fn snapshot_every_for(&self, id: u64) -> u64 {
        self.snapshot_every + self.snapshot_every * (id % 5) / 10
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
        let mut cfg = cfg;
        cfg.resolve_relative_to(path.parent().unwrap_or(Path::new(".")));
        if let Some(p) = &cfg.peer {
            if !p.initial_members.is_empty() && !p.initial_members.iter().any(|m| m.id == cfg.id) {
                anyhow::bail!(
                    "invalid config {}: peer.initial_members does not list this node (id {})",
                    path.display(),
                    cfg.id
                );
            }
        }
        Ok(cfg)
    }

    /// Relative paths in a config file are relative to the file's folder,
    /// so a node's folder can be moved as a whole.
    fn resolve_relative_to(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.admin_token_file);
        if let Some(peer) = &mut self.peer {
            fix(&mut peer.tls.ca);
            fix(&mut peer.tls.cert);
            fix(&mut peer.tls.key);
        }
    }

    /// The address other nodes reach this node's peer endpoint at.
    pub fn advertised_peer(&self, bound: SocketAddr) -> String {
        self.peer.as_ref().and_then(|p| p.advertise.clone()).unwrap_or_else(|| bound.to_string())
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
            spare_workers: Default::default(),
            raft: RaftTuning::default(),
            peer: None,
            limits: Limits::default(),
            retention: Retention::default(),
            keep_all_bytes: false,
            test_only: TestOnly::default(),
        }
    }
}

#[cfg(test)]
mod snapshot_interval_tests {
    use super::RaftTuning;

    #[test]
    fn members_snapshot_at_different_intervals_never_shorter_than_asked() {
        let t = RaftTuning::default();
        let each: Vec<u64> = (1..=5).map(|id| t.snapshot_every_for(id)).collect();
        assert_eq!(each, [22_000, 24_000, 26_000, 28_000, 20_000]);
        let small = RaftTuning::frequent_snapshots();
        assert!((1..=5).all(|id| small.snapshot_every_for(id) >= 200 && small.snapshot_every_for(id) <= 280));
    }
}
