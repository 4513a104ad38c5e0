//! 3-node cluster benchmark: committed commands per second and client
//! latency with 1, 16 and 256 concurrent API clients, and failover time
//! after `kill -9` of the leader.
//!
//! `cargo bench -p bm --bench cluster` (`BM_BENCH_SECS`, time measured per
//! point after a 2 s warm-up, default 10; `BM_BENCH_TRIALS`, failover
//! trials per Raft tuning, default 10; `BM_BENCH_KEEP=1` keeps the cluster
//! folders and node logs).
//!
//! Three `bm node` processes (the release binary built with this bench) on
//! loopback, QUIC between them without any relay, fsync on every node.
//! Clients are `bm_api::Client`s in this process, on the same cores as the
//! nodes. A committed command is one acknowledged job submit: the leader
//! answers once the entry holding it is on a quorum's disk and applied.
//! Nodes run separate processes, so commit latency cannot be read inside a
//! node; the client-observed latency of a submit (HTTP, forwarding when
//! asked of a follower, Raft append, replication, fsync, apply) is an
//! upper bound on it.
//!
//! Throughput is measured twice: every client asks the leader, and requests
//! spread round-robin over all three nodes (a follower forwards a write to
//! the leader over QUIC). Failover: a writer starts a submit every 5 ms
//! through a client of all nodes, the leader is killed, and the figure is
//! the time from the kill to the first acknowledged submit that started
//! after it. The killed node is restarted and waited for (applied index
//! equal to the leader's) before the next trial.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bm_api::jobs::JobSubmit;
use bm_api::Client;
use bm_node::cluster::files::{self, PlannedNode};
use bm_node::config::RaftTuning;
use common::{default_target, test_tuning, Proc};

const WARM_UP: Duration = Duration::from_secs(2);
/// The failover writer starts a submit this often.
const PACE: Duration = Duration::from_millis(5);

fn free_tcp() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn free_udp() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn median(sorted: &[Duration]) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

/// Three `bm node` processes that reach each other directly (no relay).
struct Bench {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    planned: BTreeMap<u64, PlannedNode>,
    procs: BTreeMap<u64, Proc>,
    token: String,
}

impl Bench {
    async fn start(tuning: RaftTuning) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("bm-bench-cluster-").tempdir()?;
        let path = dir.path().to_path_buf();
        let mut planned = BTreeMap::new();
        for id in 1..=3 {
            let n = PlannedNode { id, http: free_tcp(), peer: free_udp(), advertise_peer: None, api_url: None };
            planned.insert(id, n);
        }
        let list: Vec<PlannedNode> = planned.values().cloned().collect();
        files::init_cluster(&path.join("c"), &list, tuning)?;
        let token = std::fs::read_to_string(path.join("c/admin-token"))?.trim().to_string();
        let mut b = Self { dir: Some(dir), path, planned, procs: BTreeMap::new(), token };
        for id in 1..=3 {
            b.spawn(id)?;
        }
        b.wait_leader(Duration::from_secs(30)).await?;
        let admin = b.client();
        default_target(&admin).await;
        // No factory: keep the scheduler from adding commands of its own.
        admin.control_hold(true).await?;
        Ok(b)
    }

    /// Starts (or restarts) node `id`; its log goes to `node-ID.log`.
    fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.path.join(format!("node-{id}.log")))?;
        let child = Command::new(env!("CARGO_BIN_EXE_bm"))
            .args(["node", "--config"])
            .arg(self.path.join(format!("c/node-{id}/node.toml")))
            .env("RUST_LOG", "info,openraft=warn,warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start bm node")?;
        self.procs.insert(id, Proc(child));
        Ok(())
    }

    /// `kill -9` node `id` (and reap it).
    fn kill(&mut self, id: u64) {
        drop(self.procs.remove(&id));
    }

    fn url(&self, id: u64) -> String {
        format!("http://{}", self.planned[&id].http)
    }

    /// A client over every node, in id order.
    fn client(&self) -> Client {
        Client::new(self.planned.keys().map(|id| self.url(*id)).collect(), Some(self.token.clone()))
    }

    fn client_of(&self, id: u64) -> Client {
        Client::new(vec![self.url(id)], Some(self.token.clone()))
    }

    async fn status_of(&self, id: u64) -> Option<bm_api::cluster::ClusterStatus> {
        self.client_of(id).cluster_status().await.ok()
    }

    async fn node_status(&self, id: u64) -> Option<bm_api::cluster::NodeStatus> {
        let s = self.status_of(id).await?;
        s.members.into_iter().find(|m| m.id == id).and_then(|m| m.status)
    }

    /// Waits until a running node names a running leader that agrees.
    async fn wait_leader(&self, within: Duration) -> anyhow::Result<u64> {
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

    /// The leader's current term.
    async fn term(&self) -> anyhow::Result<u64> {
        let l = self.wait_leader(Duration::from_secs(30)).await?;
        Ok(self.status_of(l).await.map(|s| s.term).unwrap_or(0))
    }

    /// Waits until node `id` has applied as far as the leader.
    async fn wait_caught_up(&self, id: u64, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let l = self.wait_leader(within).await?;
            let want = self.node_status(l).await.and_then(|s| s.applied);
            let have = self.node_status(id).await.and_then(|s| s.applied);
            if want.is_some() && have == want {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "node {id} applied {have:?}, leader {l} {want:?}; logs in {}",
                self.path.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Keeps the folder (configs, data, logs) when `BM_BENCH_KEEP` is set.
    fn finish(mut self) {
        self.procs.clear();
        if std::env::var_os("BM_BENCH_KEEP").is_some() {
            if let Some(d) = self.dir.take() {
                println!("  (kept {})", d.keep().display());
            }
        }
    }
}

/// One load point.
struct Point {
    ops: usize,
    secs: f64,
    lat: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

/// `clients` concurrent clients submit in a loop; request `i` of client
/// `c` goes to `routes[(c + i) % routes.len()]`. Counts what completes in
/// the `measure` window after `WARM_UP`.
async fn load(routes: &[Client], clients: usize, measure: Duration, tag: &str) -> Point {
    // 0 warm-up, 1 measuring, 2 stop.
    let phase = Arc::new(AtomicU8::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (routes, phase, tag) = (routes.to_vec(), phase.clone(), tag.to_string());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut first_error) = (Vec::new(), 0, None);
            let mut i = 0usize;
            loop {
                let ph = phase.load(Ordering::Relaxed);
                if ph == 2 {
                    break;
                }
                let client = &routes[(c + i) % routes.len()];
                let job = JobSubmit::script(&format!("{tag}-c{c}-{i}"), "default", "true");
                let t = Instant::now();
                let r = client.job_submit(&job).await;
                let d = t.elapsed();
                if phase.load(Ordering::Relaxed) == 1 {
                    match r {
                        Ok(_) => lat.push(d),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e.to_string());
                        }
                    }
                }
                if errors > 0 && lat.is_empty() && phase.load(Ordering::Relaxed) == 1 {
                    // Do not spin on a broken cluster.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                i += 1;
            }
            (lat, errors, first_error)
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    phase.store(1, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(measure).await;
    phase.store(2, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let mut p = Point { ops: 0, secs, lat: Vec::new(), errors: 0, first_error: None };
    for t in tasks {
        let (lat, errors, first_error) = t.await.expect("client task");
        p.lat.extend(lat);
        p.errors += errors;
        if p.first_error.is_none() {
            p.first_error = first_error;
        }
    }
    p.ops = p.lat.len();
    p.lat.sort();
    p
}

async fn throughput(secs: u64) -> anyhow::Result<()> {
    let b = Bench::start(RaftTuning::default()).await?;
    let leader = b.wait_leader(Duration::from_secs(30)).await?;
    println!();
    println!(
        "throughput: {secs} s per point after {} s warm-up, default Raft tuning, leader is node {leader}",
        WARM_UP.as_secs()
    );
    println!(
        "{:>8} {:>8} {:>11} {:>8} {:>8} {:>8} {:>9} {:>7} {:>10}",
        "route", "clients", "commands/s", "p50 ms", "p99 ms", "max ms", "commits", "errors", "elections"
    );
    let leader_only = vec![b.client_of(leader)];
    let spread: Vec<Client> = b.planned.keys().map(|id| b.client_of(*id)).collect();
    for (route, routes) in [("leader", &leader_only), ("spread", &spread)] {
        for clients in [1usize, 16, 256] {
            let term = b.term().await?;
            let p = load(routes, clients, Duration::from_secs(secs), &format!("{route}{clients}")).await;
            let elections = b.term().await?.saturating_sub(term);
            println!(
                "{:>8} {:>8} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>9} {:>7} {:>10}",
                route,
                clients,
                p.ops as f64 / p.secs,
                ms(pct(&p.lat, 0.50)),
                ms(pct(&p.lat, 0.99)),
                ms(p.lat.last().copied().unwrap_or_default()),
                p.ops,
                p.errors,
                elections,
            );
            if let Some(e) = p.first_error {
                println!("         first error: {e}");
            }
        }
    }
    let now = b.wait_leader(Duration::from_secs(30)).await?;
    if now != leader {
        println!("  leadership moved during the run: node {leader} -> node {now}");
    }
    b.finish();
    Ok(())
}

/// What one failover trial measured.
struct Trial {
    /// Kill to the first acknowledged submit that started after the kill.
    failover: Option<Duration>,
    /// Kill to the first acknowledgement a one-at-a-time client got.
    sequential: Option<Duration>,
}

/// A submit every `PACE`, each in its own task, through `client`; records
/// (start, end) of every acknowledged one.
fn paced_writer(
    client: Client,
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<(Instant, Instant)>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PACE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut inflight = tokio::task::JoinSet::new();
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            i += 1;
            let (client, acks) = (client.clone(), acks.clone());
            inflight.spawn(async move {
                let start = Instant::now();
                let job = JobSubmit::script(&format!("paced-{i}"), "default", "true");
                if client.job_submit(&job).await.is_ok() {
                    acks.lock().unwrap().push((start, Instant::now()));
                }
            });
            while inflight.try_join_next().is_some() {}
        }
        // Submits still stuck (e.g. forwarded to the dead leader) are
        // dropped with the set.
    })
}

/// One submit at a time through `client`; records the end of every
/// acknowledged one.
fn sequential_writer(
    client: Client,
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Instant>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let job = JobSubmit::script(&format!("seq-{i}"), "default", "true");
            match client.job_submit(&job).await {
                Ok(_) => acks.lock().unwrap().push(Instant::now()),
                Err(_) => tokio::time::sleep(PACE).await,
            }
        }
    })
}

async fn failover_trial(b: &mut Bench, n: u64) -> anyhow::Result<Trial> {
    let stop = Arc::new(AtomicBool::new(false));
    let paced_acks = Arc::new(Mutex::new(Vec::new()));
    let seq_acks = Arc::new(Mutex::new(Vec::new()));
    let paced = paced_writer(b.client(), stop.clone(), paced_acks.clone());
    let seq = sequential_writer(b.client(), stop.clone(), seq_acks.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let old = b.wait_leader(Duration::from_secs(30)).await?;
    let before = paced_acks.lock().unwrap().len();
    let killed = Instant::now();
    b.kill(old);
    let deadline = killed + Duration::from_secs(30);
    let mut t = Trial { failover: None, sequential: None };
    while Instant::now() < deadline && (t.failover.is_none() || t.sequential.is_none()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        t.failover = paced_acks.lock().unwrap().iter().filter(|(s, _)| *s >= killed).map(|(_, e)| *e - killed).min();
        t.sequential = seq_acks.lock().unwrap().iter().filter(|e| **e > killed).map(|e| *e - killed).min();
    }
    stop.store(true, Ordering::Relaxed);
    seq.abort();
    let _ = paced.await;
    let _ = seq.await;
    let new = b.wait_leader(Duration::from_secs(30)).await?;
    let term = b.status_of(new).await.map(|s| s.term).unwrap_or(0);
    let restart = Instant::now();
    b.spawn(old)?;
    b.wait_caught_up(old, Duration::from_secs(120)).await?;
    let show = |d: Option<Duration>| d.map(|d| format!("{:.0} ms", ms(d))).unwrap_or_else(|| "none in 30 s".into());
    println!(
        "  trial {n:>2}: killed leader {old} ({before} acks before), new leader {new} (term {term}): \
         failover {}, one-at-a-time client {}; restarted node caught up in {:.2} s",
        show(t.failover),
        show(t.sequential),
        restart.elapsed().as_secs_f64()
    );
    Ok(t)
}

async fn failover(name: &str, tuning: RaftTuning, trials: u64) -> anyhow::Result<(Vec<Duration>, Vec<Duration>, u64)> {
    println!();
    println!(
        "failover, {name} tuning (heartbeat {} ms, election timeout {}-{} ms), {trials} trials:",
        tuning.heartbeat_ms, tuning.election_timeout_min_ms, tuning.election_timeout_max_ms
    );
    let mut b = Bench::start(tuning).await?;
    let (mut fo, mut seq, mut failed) = (Vec::new(), Vec::new(), 0);
    for n in 1..=trials {
        let t = failover_trial(&mut b, n).await?;
        match t.failover {
            Some(d) => fo.push(d),
            None => failed += 1,
        }
        seq.extend(t.sequential);
    }
    b.finish();
    fo.sort();
    seq.sort();
    Ok((fo, seq, failed))
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "rustc unknown".into());
    format!("{cores} cores (nproc), {rustc}, load average {}", loadavg())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo test --benches` asks for a listing.
    }
    let secs = env_num("BM_BENCH_SECS", 10).max(1);
    let trials = env_num("BM_BENCH_TRIALS", 10).max(1);
    println!("3-node cluster benchmark: 3 `bm node` processes on loopback (QUIC, no relay), fsync on every node,");
    println!("clients in the bench process; latency is what the client saw (an upper bound on commit latency)");
    println!("reproduce: BM_BENCH_SECS={secs} BM_BENCH_TRIALS={trials} cargo bench -p bm --bench cluster");
    println!("machine: {}", machine());

    throughput(secs).await?;

    let mut rows = Vec::new();
    for (name, tuning) in [("default", RaftTuning::default()), ("test", test_tuning())] {
        let r = failover(name, tuning.clone(), trials).await?;
        rows.push((name, tuning, r));
    }
    println!();
    println!("failover (kill -9 of the leader to the first acknowledged submit started after it):");
    println!(
        "{:>8} {:>10} {:>12} {:>8} {:>10} {:>8} {:>7} {:>20}",
        "tuning", "heartbeat", "election", "min ms", "median ms", "max ms", "failed", "one-at-a-time median"
    );
    for (name, t, (fo, seq, failed)) in rows {
        println!(
            "{:>8} {:>10} {:>12} {:>8.0} {:>10.0} {:>8.0} {:>7} {:>17.0} ms",
            name,
            format!("{} ms", t.heartbeat_ms),
            format!("{}-{} ms", t.election_timeout_min_ms, t.election_timeout_max_ms),
            ms(fo.first().copied().unwrap_or_default()),
            ms(median(&fo)),
            ms(fo.last().copied().unwrap_or_default()),
            failed,
            ms(median(&seq)),
        );
    }
    println!("load average at the end: {}", loadavg());
    Ok(())
}
