//! A cluster of real `bm node` processes talking QUIC on loopback, each
//! behind a fault-injecting UDP relay, for the multi-node tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bm_api::cluster::ClusterStatus;
use bm_api::Client;
use bm_node::cluster::files::{self, PlannedNode};
use bm_node::config::RaftTuning;

/// One node's process (killed when dropped).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The cluster under test.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub net: bm_chaos::Net,
    pub planned: BTreeMap<u64, PlannedNode>,
    pub procs: BTreeMap<u64, Proc>,
    pub token: String,
    tuning: RaftTuning,
}

fn free_tcp() -> SocketAddr {
    bm_node::cluster::ports::free_tcp([127, 0, 0, 1].into()).unwrap()
}

fn free_udp() -> SocketAddr {
    bm_node::cluster::ports::free_udp([127, 0, 0, 1].into()).unwrap()
}

impl Cluster {
    /// Writes the files of `voters` initial voters (ids 1..=voters) and
    /// starts them.
    pub async fn start(voters: u64, tuning: RaftTuning) -> Self {
        let mut dir = tempfile::tempdir().unwrap();
        // BM_TEST_KEEP=1 keeps node logs and data for a post-mortem.
        if std::env::var_os("BM_TEST_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("cluster files in {}", dir.path().display());
        }
        let net = bm_chaos::Net::new(7);
        let mut planned = BTreeMap::new();
        for id in 1..=voters {
            planned.insert(id, Self::plan(&net, id).await);
        }
        let list: Vec<PlannedNode> = planned.values().cloned().collect();
        files::init_cluster(&dir.path().join("c"), &list, tuning.clone()).unwrap();
        let token = std::fs::read_to_string(dir.path().join("c/admin-token")).unwrap().trim().to_string();
        let mut c = Self { dir, net, planned, procs: BTreeMap::new(), token, tuning };
        for id in 1..=voters {
            c.spawn(id);
        }
        c.wait_leader(Duration::from_secs(30)).await;
        c
    }

    async fn plan(net: &bm_chaos::Net, id: u64) -> PlannedNode {
        let peer = free_udp();
        let relay = net.add(id, peer).await.unwrap();
        PlannedNode { id, http: free_tcp(), peer, advertise_peer: Some(relay.to_string()), api_url: None }
    }

    /// Writes the folder of a node that is not yet a member, and starts it.
    pub async fn new_node(&mut self, id: u64) {
        let n = Self::plan(&self.net, id).await;
        files::new_node(&self.dir.path().join("c"), &n, self.tuning.clone()).unwrap();
        self.planned.insert(id, n);
        self.spawn(id);
    }

    fn config(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("c/node-{id}/node.toml"))
    }

    /// Starts (or restarts) node `id`; its log goes to `node-ID.log`.
    pub fn spawn(&mut self, id: u64) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{id}.log")))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_bm"))
            .args(["node", "--config"])
            .arg(self.config(id))
            .env("RUST_LOG", "info,openraft=warn,warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.procs.insert(id, Proc(child));
    }

    /// `kill -9` node `id`.
    pub fn kill(&mut self, id: u64) {
        drop(self.procs.remove(&id));
    }

    /// Sends a signal (STOP / CONT) to node `id`.
    pub fn signal(&self, id: u64, sig: &str) {
        let pid = self.procs[&id].0.id().to_string();
        assert!(Command::new("kill").args([&format!("-{sig}"), &pid]).status().unwrap().success());
    }

    /// The node's API URL.
    pub fn url(&self, id: u64) -> String {
        format!("http://{}", self.planned[&id].http)
    }

    /// The node's advertised peer address (its relay).
    pub fn peer(&self, id: u64) -> String {
        self.planned[&id].advertise_peer.clone().unwrap()
    }

    /// A client over every running node.
    pub fn client(&self) -> Client {
        Client::new(self.procs.keys().map(|id| self.url(*id)).collect(), Some(self.token.clone()))
    }

    /// A client of one node only.
    pub fn client_of(&self, id: u64) -> Client {
        Client::new(vec![self.url(id)], Some(self.token.clone()))
    }

    /// Node `id`'s view of the cluster.
    pub async fn status_of(&self, id: u64) -> Option<ClusterStatus> {
        self.client_of(id).cluster_status().await.ok()
    }

    /// Waits until a running node names a leader that is running, and
    /// returns it.
    pub async fn wait_leader(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            for id in self.procs.keys() {
                if let Some(s) = self.status_of(*id).await {
                    if let Some(l) = s.leader.filter(|l| self.procs.contains_key(l)) {
                        if self.status_of(l).await.is_some_and(|ls| ls.leader == Some(l)) {
                            return l;
                        }
                    }
                }
            }
            assert!(Instant::now() < deadline, "no leader within {within:?}; logs in {}", self.dir.path().display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every running node has applied at least `index`.
    pub async fn wait_applied(&self, index: u64, within: Duration) {
        let deadline = Instant::now() + within;
        for id in self.procs.keys() {
            loop {
                let applied = self.node_status(*id).await.and_then(|s| s.applied).unwrap_or(0);
                if applied >= index {
                    break;
                }
                assert!(Instant::now() < deadline, "node {id} applied only {applied} of {index}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// What node `id` says about itself.
    pub async fn node_status(&self, id: u64) -> Option<bm_api::cluster::NodeStatus> {
        let s = self.status_of(id).await?;
        s.members.into_iter().find(|m| m.id == id).and_then(|m| m.status)
    }

    /// Keeps the temporary folder (logs) for a failed test.
    pub fn keep(self) -> PathBuf {
        let d = self.dir.path().to_path_buf();
        std::mem::forget(self.dir);
        d
    }

    /// The folder holding logs and node data.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies node `id`'s data folder to `to` (a backup); stop the node first.
    pub fn copy_data(&self, id: u64, to: &Path) {
        copy_dir(&self.path().join(format!("c/node-{id}/data")), to);
    }

    /// Loses every planned node's data and puts a copy of `backup` in its
    /// place, then starts them all.
    pub fn restore_everywhere(&mut self, backup: &Path) {
        let ids: Vec<u64> = self.planned.keys().copied().collect();
        for id in &ids {
            self.kill(*id);
            let data = self.path().join(format!("c/node-{id}/data"));
            std::fs::remove_dir_all(&data).unwrap();
            copy_dir(backup, &data);
        }
        for id in ids {
            self.spawn(id);
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let ok = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap().success();
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

/// Submits jobs as fast as `writers` concurrent clients can until `stop`
/// is set; returns the ids of acknowledged jobs.
pub async fn write_load(client: Client, writers: usize, stop: tokio::sync::watch::Receiver<bool>) -> Vec<String> {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (client, stop) = (client.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while !*stop.borrow() {
                i += 1;
                let job = bm_api::jobs::JobSubmit::script(&format!("w{w}-{i}"), "default", "true");
                match client.job_submit(&job).await {
                    Ok(j) => acked.push(j.id),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            acked
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// Waits until job `id` has ended (within `within`) and returns it; the
/// caller checks how it ended. `what` names the wait in the failure.
pub async fn job_end(client: &Client, id: &str, within: Duration, what: &str) -> bm_api::jobs::Job {
    let deadline = Instant::now() + within;
    loop {
        let job = client.job(id).await;
        if let Ok(j) = &job {
            if j.state.is_terminal() {
                return j.clone();
            }
        }
        assert!(Instant::now() < deadline, "{what}: job {id} did not end within {within:?}: {job:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates the `default` target jobs are submitted to.
pub async fn default_target(client: &Client) {
    let t = bm_api::targets::TargetCreate::named("default");
    match client.target_create(&t).await {
        Ok(_) => {}
        Err(e) if e.code() == Some(bm_api::ErrorCode::Conflict) => {}
        Err(e) => panic!("cannot create the default target: {e}"),
    }
}

/// Starts the local factory as its own process for cluster `c`.
pub async fn factory(c: &Cluster) -> Proc {
    let f = c.client().factory_create(&bm_api::factories::FactoryCreate { name: "local".into() }).await.unwrap();
    let urls: Vec<String> = c.procs.keys().map(|id| c.url(*id)).collect();
    let log = std::fs::File::create(c.path().join("factory.log")).unwrap();
    Proc(
        Command::new(env!("CARGO_BIN_EXE_bm"))
            .args(["local", "factory", "--max-workers", "4", "--url", &urls.join(","), "--token", &f.token])
            .env("RUST_LOG", "info,bm_factory_local=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}
