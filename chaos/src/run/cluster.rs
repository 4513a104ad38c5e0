//! A cluster of real `bm node` processes on loopback, each node's peer address behind a [`Net`] relay so that
//! partitions cut real QUIC traffic, plus the local factory process that makes sandboxes for jobs. This is the
//! same arrangement as the cluster tests' harness, owned by a chaos run.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bm_api::Client;
use bm_node::cluster::files::{self, PlannedNode};
use bm_node::config::RaftTuning;

use crate::{Endpoint, Net};

/// How long one status query may take before a node counts as unresponsive. A node answering
/// `GET /v1/cluster` asks every member for its own report and gives an unreachable one a second, so the answer
/// takes a second whenever a member is cut off, paused or down: the harness must wait longer than that.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// The processes of a run and how to reach them. Node processes are started, killed, paused and resumed through
/// it; every process it started is killed when it is dropped.
pub struct ProcCluster {
    /// The run folder: cluster files, node logs, sandboxes.
    dir: PathBuf,
    /// The `bm` binary.
    bm: PathBuf,
    /// The fault-injecting network between the nodes.
    pub net: Net,
    /// Where each node listens.
    planned: BTreeMap<Endpoint, PlannedNode>,
    /// Running node processes.
    procs: Mutex<BTreeMap<Endpoint, Child>>,
    /// Nodes currently stopped with `SIGSTOP`.
    paused: Mutex<BTreeSet<Endpoint>>,
    /// The factory process, once started.
    factory: Mutex<Option<Child>>,
    /// The admin token.
    token: String,
}

/// Sets the worker lease in a node's config file, where the cluster files wrote the default.
fn set_lease(config: &Path, lease: Duration) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(config)?;
    let key = "worker_lease_secs = ";
    let line = text.lines().find(|l| l.starts_with(key)).context("no worker_lease_secs in the node config")?;
    let text = text.replacen(line, &format!("{key}{}", lease.as_secs().max(1)), 1);
    std::fs::write(config, text)?;
    Ok(())
}

fn free_tcp() -> anyhow::Result<SocketAddr> {
    Ok(bm_node::cluster::ports::free_tcp([127, 0, 0, 1].into())?)
}

fn free_udp() -> anyhow::Result<SocketAddr> {
    Ok(bm_node::cluster::ports::free_udp([127, 0, 0, 1].into())?)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ProcCluster {
    /// Writes the files of an `n`-node cluster under `dir`, starts every node and waits for a leader.
    /// `lease` is the nodes' worker lease (how long an agent may stay silent before its job fails);
    /// `bug` turns on the nodes' deliberate `test_only.ack_before_commit` bug.
    pub async fn start(dir: &Path, bm: &Path, n: u64, seed: u64, lease: Duration, bug: bool) -> anyhow::Result<Self> {
        let net = Net::new(seed);
        let mut planned = BTreeMap::new();
        for id in 1..=n {
            let peer = free_udp()?;
            let relay = net.add(id, peer).await.context("cannot start a relay")?;
            let node =
                PlannedNode { id, http: free_tcp()?, peer, advertise_peer: Some(relay.to_string()), api_url: None };
            planned.insert(id, node);
        }
        let list: Vec<PlannedNode> = planned.values().cloned().collect();
        let configs = files::init_cluster(&dir.join("c"), &list, RaftTuning::frequent_snapshots())
            .context("cannot write the cluster files")?;
        for c in &configs {
            set_lease(c, lease)?;
        }
        if bug {
            for c in &configs {
                let mut f = std::fs::OpenOptions::new().append(true).open(c)?;
                std::io::Write::write_all(&mut f, b"\n[test_only]\nack_before_commit = true\n")?;
            }
        }
        let token = std::fs::read_to_string(dir.join("c/admin-token")).context("no admin token")?.trim().to_string();
        let c = Self {
            dir: dir.to_path_buf(),
            bm: bm.to_path_buf(),
            net,
            planned,
            procs: Mutex::new(BTreeMap::new()),
            paused: Mutex::new(BTreeSet::new()),
            factory: Mutex::new(None),
            token,
        };
        for id in 1..=n {
            c.spawn(id)?;
        }
        c.wait_leader(Duration::from_secs(60)).await?;
        Ok(c)
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<Endpoint> {
        self.planned.keys().copied().collect()
    }

    /// The folder the factory makes its sandboxes in, one per worker, named by the worker's id.
    pub fn sandboxes(&self) -> PathBuf {
        self.dir.join("sandboxes")
    }

    /// The request that adds node `id` back to the cluster with the addresses it was first a member with (a
    /// voter, once it has caught up).
    pub fn member_add(&self, id: Endpoint) -> bm_api::cluster::MemberAdd {
        let p = &self.planned[&id];
        let peer_addr = p.advertise_peer.clone().unwrap_or_else(|| p.peer.to_string());
        bm_api::cluster::MemberAdd { id, peer_addr, api_url: self.url(id), learner: false }
    }

    /// Starts (or restarts, on the same data) node `id`; its log is appended to `node-ID.log`.
    pub fn spawn(&self, id: Endpoint) -> anyhow::Result<()> {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(format!("node-{id}.log")))?;
        let child = Command::new(&self.bm)
            .args(["node", "--config"])
            .arg(self.dir.join(format!("c/node-{id}/node.toml")))
            .env("RUST_LOG", "info,openraft=warn,warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {}", self.bm.display()))?;
        lock(&self.procs).insert(id, child);
        Ok(())
    }

    /// `SIGKILL`s node `id` (a crash: its disk stays as it was).
    pub fn kill(&self, id: Endpoint) {
        if let Some(mut child) = lock(&self.procs).remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
        lock(&self.paused).remove(&id);
    }

    /// Whether node `id` runs (paused or not).
    pub fn is_running(&self, id: Endpoint) -> bool {
        lock(&self.procs).contains_key(&id)
    }

    /// Whether node `id` runs and is not paused, so that it can answer.
    pub fn is_up(&self, id: Endpoint) -> bool {
        self.is_running(id) && !lock(&self.paused).contains(&id)
    }

    /// `SIGSTOP`s node `id`.
    pub fn pause(&self, id: Endpoint) -> anyhow::Result<()> {
        self.signal(id, "STOP")?;
        lock(&self.paused).insert(id);
        Ok(())
    }

    /// `SIGCONT`s node `id` if it is paused.
    pub fn resume(&self, id: Endpoint) -> anyhow::Result<()> {
        if lock(&self.paused).remove(&id) {
            self.signal(id, "CONT")?;
        }
        Ok(())
    }

    /// Undoes every node fault: resumes paused nodes and restarts killed ones.
    pub fn revive_all(&self) -> anyhow::Result<()> {
        let paused: Vec<Endpoint> = lock(&self.paused).iter().copied().collect();
        for id in paused {
            self.resume(id)?;
        }
        for id in self.ids() {
            if !self.is_running(id) {
                self.spawn(id)?;
            }
        }
        Ok(())
    }

    fn signal(&self, id: Endpoint, sig: &str) -> anyhow::Result<()> {
        let pid = lock(&self.procs).get(&id).map(|c| c.id()).with_context(|| format!("node {id} is not running"))?;
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status()?.success();
        if !ok {
            bail!("kill -{sig} {pid} (node {id}) failed");
        }
        Ok(())
    }

    /// Node `id`'s API URL.
    pub fn url(&self, id: Endpoint) -> String {
        format!("http://{}", self.planned[&id].http)
    }

    /// A client of node `id` alone, as the workloads use to aim at one node.
    pub fn client_of(&self, id: Endpoint) -> Client {
        Client::new(vec![self.url(id)], Some(self.token.clone()))
    }

    /// A client over every node, failing over between them, for setup and polling.
    pub fn admin(&self) -> Client {
        Client::new(self.ids().iter().map(|id| self.url(*id)).collect(), Some(self.token.clone()))
    }

    /// The leader, as a running, unpaused node that names itself leader says; `None` if none does now. Every
    /// such node is asked at once and the first to claim the lead is taken, so that one node that does not
    /// answer (hung, or slow because a member is cut off) costs no more than the others' answers.
    pub async fn leader(&self) -> Option<Endpoint> {
        let mut asks = tokio::task::JoinSet::new();
        for id in self.ids().into_iter().filter(|id| self.is_up(*id)) {
            let client = self.client_of(id);
            asks.spawn(async move {
                let status = tokio::time::timeout(STATUS_TIMEOUT, client.cluster_status()).await;
                matches!(status, Ok(Ok(s)) if s.leader == Some(id)).then_some(id)
            });
        }
        while let Some(answer) = asks.join_next().await {
            if let Ok(Some(id)) = answer {
                return Some(id);
            }
        }
        None
    }

    /// Waits until some node leads.
    pub async fn wait_leader(&self, within: Duration) -> anyhow::Result<Endpoint> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.leader().await {
                return Ok(l);
            }
            if Instant::now() > deadline {
                bail!("no leader within {within:?}; node logs in {}", self.dir.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every node has applied the leader's last log entry, so that local reads (job lists) on every
    /// node are complete.
    pub async fn wait_caught_up(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let leader = self.wait_leader(within).await?;
            let last = self.applied(leader, true).await.unwrap_or(u64::MAX);
            let mut behind = Vec::new();
            for id in self.ids() {
                if self.applied(id, false).await.unwrap_or(0) < last {
                    behind.push(id);
                }
            }
            if behind.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("nodes {behind:?} did not catch up with log index {last} within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What node `id` says of itself: its last log index (`last`) or its applied index.
    async fn applied(&self, id: Endpoint, last: bool) -> Option<u64> {
        let s = tokio::time::timeout(STATUS_TIMEOUT, self.client_of(id).cluster_status()).await.ok()?.ok()?;
        let me = s.members.into_iter().find(|m| m.id == id)?.status?;
        if last {
            me.last_log
        } else {
            me.applied
        }
    }

    /// Creates the `default` target and a factory, and starts the local factory process with `max_workers`
    /// sandboxes at most, attached to every node.
    pub async fn start_factory(&self, max_workers: usize) -> anyhow::Result<()> {
        let admin = self.admin();
        match admin.target_create(&bm_api::targets::TargetCreate::named("default")).await {
            Ok(_) => {}
            Err(e) if e.code() == Some(bm_api::ErrorCode::Conflict) => {}
            Err(e) => bail!("cannot create the default target: {e}"),
        }
        let f = admin
            .factory_create(&bm_api::factories::FactoryCreate { name: "local".into() })
            .await
            .context("cannot create the factory")?;
        let urls: Vec<String> = self.ids().iter().map(|id| self.url(*id)).collect();
        let sandboxes = self.sandboxes();
        std::fs::create_dir_all(&sandboxes)?;
        let log = std::fs::File::create(self.dir.join("factory.log"))?;
        let child = Command::new(&self.bm)
            .args(["local", "factory", "--max-workers", &max_workers.to_string(), "--url", &urls.join(",")])
            .args(["--token", &f.token, "--dir"])
            .arg(&sandboxes)
            .env("RUST_LOG", "info,bm_factory_local=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {} local factory", self.bm.display()))?;
        *lock(&self.factory) = Some(child);
        Ok(())
    }

    /// Stops the factory with `SIGTERM` (so it tears its sandboxes down), killing it if it takes over 15 s.
    pub async fn stop_factory(&self) {
        let Some(mut child) = lock(&self.factory).take() else { return };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ProcCluster {
    fn drop(&mut self) {
        if let Some(mut f) = lock(&self.factory).take() {
            let _ = f.kill();
            let _ = f.wait();
        }
        for (_, mut child) in std::mem::take(&mut *lock(&self.procs)) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.net.shutdown();
    }
}
