//! What the benches share: a cluster of real `bm node` processes on
//! loopback written like `bm cluster init`, and the small helpers for
//! ports, knobs, quantiles and the machine line every bench prints.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use bm_api::Client;
use bm_node::cluster::files::{self, PlannedNode};
use bm_node::config::RaftTuning;

use crate::common::Proc;

/// A free TCP port on loopback for a node's HTTP API.
pub fn free_tcp() -> SocketAddr {
    bm_node::cluster::ports::free_tcp([127, 0, 0, 1].into()).unwrap()
}

/// A free UDP port on loopback for a node's QUIC endpoint.
pub fn free_udp() -> SocketAddr {
    bm_node::cluster::ports::free_udp([127, 0, 0, 1].into()).unwrap()
}

/// A numeric knob from the environment, so a quick look needs no edit.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `p` quantile of sorted durations (nearest rank; zero when empty).
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The load average, for saying how busy the machine was.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Cores, rustc and load, for the header of a bench's output.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "rustc unknown".into());
    format!("{cores} cores (nproc), {rustc}, load average {}", loadavg())
}

/// A running cluster of `bm node` processes in a temporary folder (kept,
/// with the node logs `node-ID.log`, when `BM_BENCH_KEEP` is set).
pub struct Nodes {
    dir: Option<tempfile::TempDir>,
    /// The folder of configs, data and logs.
    pub path: PathBuf,
    /// Addresses of every node.
    pub planned: BTreeMap<u64, PlannedNode>,
    /// The node processes running now.
    pub procs: BTreeMap<u64, Proc>,
    /// The admin token.
    pub token: String,
}

impl Nodes {
    /// Writes an `n`-node cluster with `tuning`, starts every node, and
    /// waits until they agree on a leader and have applied alike.
    pub async fn start(prefix: &str, n: u64, tuning: RaftTuning) -> anyhow::Result<Self> {
        let mut dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let path = dir.path().to_path_buf();
        if std::env::var_os("BM_BENCH_KEEP").is_some() {
            // Kept even when a phase fails, for the node logs.
            dir.disable_cleanup(true);
            println!("cluster folder (kept): {}", path.display());
        }
        let planned: BTreeMap<u64, PlannedNode> = (1..=n)
            .map(|id| (id, PlannedNode { id, http: free_tcp(), peer: free_udp(), advertise_peer: None, api_url: None }))
            .collect();
        let list: Vec<PlannedNode> = planned.values().cloned().collect();
        files::init_cluster(&path.join("c"), &list, tuning)?;
        let token = std::fs::read_to_string(path.join("c/admin-token"))?.trim().to_string();
        let mut nodes = Self { dir: Some(dir), path, planned, procs: BTreeMap::new(), token };
        for id in 1..=n {
            nodes.spawn(id)?;
        }
        nodes.wait_leader(Duration::from_secs(30)).await?;
        nodes.settle(Duration::from_secs(60)).await?;
        Ok(nodes)
    }

    /// Starts (or restarts) node `id`; its log goes to `node-ID.log`.
    pub fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.path.join(format!("node-{id}.log")))?;
        let child = Command::new(env!("CARGO_BIN_EXE_bm"))
            .args(["node", "--config"])
            .arg(self.path.join(format!("c/node-{id}/node.toml")))
            // `BM_NODE_LOG` overrides the nodes' log filter (for a debug look).
            .env("RUST_LOG", std::env::var("BM_NODE_LOG").unwrap_or_else(|_| "info,openraft=warn,warn".into()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start bm node")?;
        self.procs.insert(id, Proc(child));
        Ok(())
    }

    /// `kill -9` node `id` (and reap it).
    pub fn kill(&mut self, id: u64) {
        drop(self.procs.remove(&id));
    }

    /// Node `id`'s API URL.
    pub fn url(&self, id: u64) -> String {
        format!("http://{}", self.planned[&id].http)
    }

    /// An admin client over every node, in id order.
    pub fn client(&self) -> Client {
        Client::new(self.planned.keys().map(|id| self.url(*id)).collect(), Some(self.token.clone()))
    }

    /// An admin client of node `id` only.
    pub fn client_of(&self, id: u64) -> Client {
        Client::new(vec![self.url(id)], Some(self.token.clone()))
    }

    /// Every node's commit-latency counts so far, added together (a node
    /// that does not answer adds nothing).
    pub async fn commit_latencies(&self) -> bm_api::latency::LatencyHistogram {
        let mut all = bm_api::latency::LatencyHistogram::default();
        for id in self.procs.keys() {
            if let Ok(h) = self.client_of(*id).cluster_latency().await {
                all.merge(&h);
            }
        }
        all
    }

    /// The cluster as node `id` sees it.
    pub async fn status_of(&self, id: u64) -> Option<bm_api::cluster::ClusterStatus> {
        self.client_of(id).cluster_status().await.ok()
    }

    /// Node `id`'s own status, as it reports it.
    pub async fn node_status(&self, id: u64) -> Option<bm_api::cluster::NodeStatus> {
        let s = self.status_of(id).await?;
        s.members.into_iter().find(|m| m.id == id).and_then(|m| m.status)
    }

    /// Waits until a running node names a running leader that agrees.
    pub async fn wait_leader(&self, within: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + within;
        loop {
            for id in self.procs.keys() {
                if let Some(l) = self.status_of(*id).await.and_then(|s| s.leader) {
                    if self.procs.contains_key(&l) && self.status_of(l).await.is_some_and(|s| s.leader == Some(l)) {
                        return Ok(l);
                    }
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "no leader within {within:?}; logs in {}", self.path.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every node names the same leader in the same term and
    /// has applied as far (a node that starts late may cause an election
    /// at start; measurements begin after it).
    pub async fn settle(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let mut seen = Vec::new();
            for id in self.procs.keys() {
                seen.push(self.node_status(*id).await.map(|s| (s.leader, s.term, s.applied)));
            }
            if seen.iter().all(|s| s.is_some_and(|s| s.0.is_some()) && *s == seen[0]) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "cluster not settled: {seen:?}; logs in {}",
                self.path.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the nodes; the folder goes unless `BM_BENCH_KEEP` is set.
    pub fn finish(mut self) {
        self.procs.clear();
        self.dir.take();
    }
}
