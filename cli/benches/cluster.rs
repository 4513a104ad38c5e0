//! 3-node cluster benchmark: committed commands per second and client
//! latency with 1, 16 and 256 concurrent API clients, and failover time
//! after `kill -9` of the leader.
//!
//! `cargo bench -p bm --bench cluster` (`BM_BENCH_SECS`, time measured per
//! point after a 2 s warm-up, default 10; `BM_BENCH_TRIALS`, failover
//! trials per Raft tuning, default 10; `BM_BENCH_KEEP=1` keeps the cluster
//! folders and node logs; `BM_BENCH_ONLY=leader256`, a route and a client
//! count, runs only that throughput point and no failover, for a profiler;
//! `BM_BENCH_HEARTBEAT_MS` overrides the Raft heartbeat).
//!
//! Three `bm node` processes (the release binary built with this bench) on
//! loopback, QUIC between them without any relay, fsync on every node.
//! Clients run in this process, on the same cores as the nodes. A
//! committed command is one acknowledged job submit: the leader answers
//! once the entry holding it is on a quorum's disk and applied. The
//! throughput points' clients are lean HTTP/1.1 connections
//! (`bm_api::loadgen`, one per client and node) rather than `Client`s,
//! whose reqwest stack took about half of the machine's CPU in the
//! single-node bench; the failover writers use `Client` for its failover.
//! Two latencies are printed: what the client saw (HTTP, forwarding when
//! asked of a follower, Raft append, replication, fsync, apply), and the
//! nodes' own commit latency (`GET /v1/cluster/latency`, from a node's
//! write path taking a command to its outcome).
//!
//! Throughput is measured twice: every client asks the leader, and requests
//! spread round-robin over all three nodes (a follower forwards a write to
//! the leader over QUIC). Failover: a writer starts a submit every 5 ms
//! through a client of all nodes, the leader is killed, and the figure is
//! the time from the kill to the first acknowledged submit that started
//! after it. Also printed: when a surviving node first named the new leader
//! (its cluster view, asked every 20 ms), and the longest wait between two
//! acknowledgements of a second client that submits one at a time. The
//! killed node is restarted and waited for (applied index equal to the
//! leader's) before the next trial.

#[path = "../tests/common/mod.rs"]
mod common;
/// What the benches share (the node cluster, knobs, quantiles).
mod support;

/// mimalloc: with the system allocator, malloc and free were a quarter of a
/// node's CPU on the commit path (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bm_api::jobs::JobSubmit;
use bm_api::latency::LatencyHistogram;
use bm_api::loadgen::LoadConn;
use bm_api::Client;
use bm_node::config::RaftTuning;
use common::default_target;
use support::{env_num, loadavg, machine, ms, pct, Nodes};

const WARM_UP: Duration = Duration::from_secs(2);
/// The failover writer starts a submit this often.
const PACE: Duration = Duration::from_millis(5);

fn median(sorted: &[Duration]) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

/// Three `bm node` processes that reach each other directly (no relay).
/// The bench's cluster: three nodes, the default target, new work held.
struct Bench(Nodes);

impl std::ops::Deref for Bench {
    type Target = Nodes;
    fn deref(&self) -> &Nodes {
        &self.0
    }
}

impl std::ops::DerefMut for Bench {
    fn deref_mut(&mut self) -> &mut Nodes {
        &mut self.0
    }
}

impl Bench {
    async fn start(tuning: RaftTuning) -> anyhow::Result<Self> {
        let b = Self(Nodes::start("bm-bench-cluster-", 3, tuning).await?);
        let admin = b.client();
        default_target(&admin).await;
        // No factory: keep the scheduler from adding commands of its own.
        admin.control_hold(true).await?;
        Ok(b)
    }

    /// Index of each node's last snapshot.
    async fn snapshots(&self) -> Vec<Option<u64>> {
        let mut v = Vec::new();
        for id in self.procs.keys() {
            v.push(self.node_status(*id).await.and_then(|s| s.snapshot));
        }
        v
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

    /// Stops the nodes; the folder goes unless `BM_BENCH_KEEP` is set.
    fn finish(self) {
        self.0.finish();
    }
}

/// One load point.
struct Point {
    ops: usize,
    secs: f64,
    lat: Vec<Duration>,
    /// Latencies of the submits that entered at a follower.
    via_follower: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    /// The nodes' own commit latencies over the window, added together.
    commit: LatencyHistogram,
}

/// `clients` concurrent clients submit in a loop, each over its own lean
/// connection to every node in `routes` (`bm_api::loadgen`, so that the
/// bench's clients take as little of the two cores as they can); request
/// `i` of client `c` goes to `routes[(c + i) % routes.len()]` (the leader
/// is `routes[leader]`). Counts what completes in the `measure` window
/// after `WARM_UP`.
async fn load(b: &Bench, routes: &[String], leader: usize, clients: usize, measure: Duration, tag: &str) -> Point {
    // 0 warm-up, 1 measuring, 2 stop.
    let phase = Arc::new(AtomicU8::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (routes, phase, tag, token) = (routes.to_vec(), phase.clone(), tag.to_string(), b.token.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut first_error) = (Vec::new(), 0, None);
            let mut via_follower = Vec::new();
            let mut conns: Vec<Option<LoadConn>> = routes.iter().map(|_| None).collect();
            let mut i = 0usize;
            loop {
                let ph = phase.load(Ordering::Relaxed);
                if ph == 2 {
                    break;
                }
                let route = (c + i) % routes.len();
                let job = JobSubmit::script(&format!("{tag}-c{c}-{i}"), "default", "true");
                let t = Instant::now();
                let r = submit(&mut conns[route], &routes[route], &token, &job).await;
                let d = t.elapsed();
                if phase.load(Ordering::Relaxed) == 1 {
                    match r {
                        Ok(()) => {
                            lat.push(d);
                            if route != leader {
                                via_follower.push(d);
                            }
                        }
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
            (lat, via_follower, errors, first_error)
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    let before = b.commit_latencies().await;
    phase.store(1, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(measure).await;
    phase.store(2, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    // The nodes' counts over about the client's window (the readings take a
    // few milliseconds on either side).
    let commit = b.commit_latencies().await.since(&before);
    let mut p = Point { ops: 0, secs, lat: Vec::new(), via_follower: Vec::new(), errors: 0, first_error: None, commit };
    for t in tasks {
        let (lat, via_follower, errors, first_error) = t.await.expect("client task");
        p.lat.extend(lat);
        p.via_follower.extend(via_follower);
        p.errors += errors;
        if p.first_error.is_none() {
            p.first_error = first_error;
        }
    }
    p.ops = p.lat.len();
    p.lat.sort();
    p.via_follower.sort();
    p
}

/// One submit over the lean connection kept in `conn` (made on first use,
/// dropped after an error so the next submit connects afresh); the answer
/// must be the job.
async fn submit(conn: &mut Option<LoadConn>, url: &str, token: &str, job: &JobSubmit) -> anyhow::Result<()> {
    if conn.is_none() {
        *conn = Some(LoadConn::connect(url, token).await?);
    }
    let c = conn.as_mut().expect("connected above");
    if let Err(e) = c.submit(job).await {
        *conn = None;
        return Err(e.into());
    }
    Ok(())
}

async fn throughput(secs: u64) -> anyhow::Result<()> {
    let b = Bench::start(tuned(RaftTuning::default())).await?;
    let leader = b.wait_leader(Duration::from_secs(30)).await?;
    println!();
    println!(
        "throughput: {secs} s per point after {} s warm-up, default Raft tuning, leader is node {leader}, load average {}",
        WARM_UP.as_secs(),
        loadavg()
    );
    println!("(elections: term changes during the point; snapshots: nodes that built a snapshot during it)");
    println!(
        "{:>7} {:>7} {:>10} {:>7} {:>7} {:>7} {:>16} {:>8} {:>6} {:>9} {:>9} {:>14}",
        "route",
        "clients",
        "commands/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "commit p50/p99",
        "commits",
        "errors",
        "elections",
        "snapshots",
        "via follower p50/p99 ms"
    );
    let ids: Vec<u64> = b.planned.keys().copied().collect();
    let leader_only = (vec![b.url(leader)], 0);
    let spread =
        (ids.iter().map(|id| b.url(*id)).collect::<Vec<_>>(), ids.iter().position(|id| *id == leader).unwrap());
    let only = std::env::var("BM_BENCH_ONLY").ok();
    for (route, (routes, at)) in [("leader", &leader_only), ("spread", &spread)] {
        for clients in [1usize, 16, 256] {
            if only.as_ref().is_some_and(|o| *o != format!("{route}{clients}")) {
                continue;
            }
            let (term, snaps) = (b.term().await?, b.snapshots().await);
            let p = load(&b, routes, *at, clients, Duration::from_secs(secs), &format!("{route}{clients}")).await;
            let commit_ms = |q| p.commit.quantile_ms(q).unwrap_or(f64::NAN);
            let elections = b.term().await?.saturating_sub(term);
            let snapshots = b.snapshots().await.iter().zip(&snaps).filter(|(a, b)| a != b).count();
            let via = if p.via_follower.is_empty() {
                "-".to_string()
            } else {
                format!("{:.2} / {:.2}", ms(pct(&p.via_follower, 0.50)), ms(pct(&p.via_follower, 0.99)))
            };
            println!(
                "{:>7} {:>7} {:>10.0} {:>7.2} {:>7.2} {:>7.2} {:>16} {:>8} {:>6} {:>9} {:>9} {:>14}",
                route,
                clients,
                p.ops as f64 / p.secs,
                ms(pct(&p.lat, 0.50)),
                ms(pct(&p.lat, 0.99)),
                ms(p.lat.last().copied().unwrap_or_default()),
                format!("{:.2} / {:.2}", commit_ms(0.50), commit_ms(0.99)),
                p.ops,
                p.errors,
                elections,
                snapshots,
                via,
            );
            if let Some(e) = p.first_error {
                println!("        first error: {e}");
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

/// What one failover trial measured, from the kill.
struct Trial {
    /// Until a surviving node first named a new leader (polled every 20 ms).
    elected: Option<Duration>,
    /// Until the first acknowledged submit that started after the kill.
    failover: Option<Duration>,
    /// Not from the kill: the longest wait between two acknowledgements a
    /// one-at-a-time client (a submit, then the next) saw around the kill.
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

/// Asks every survivor for its cluster view every 20 ms (each ask in its
/// own task: an answer waits up to 1 s for the dead member); records the
/// earliest start of an ask answered with a new leader in a later term.
fn election_watch(
    survivors: Vec<Client>,
    old: u64,
    old_term: u64,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Option<Instant>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut asks = tokio::task::JoinSet::new();
        while !stop.load(Ordering::Relaxed) && seen.lock().unwrap().is_none() {
            tick.tick().await;
            for c in &survivors {
                let (c, seen) = (c.clone(), seen.clone());
                asks.spawn(async move {
                    let t = Instant::now();
                    if let Ok(s) = c.cluster_status().await {
                        if s.term > old_term && s.leader.is_some_and(|l| l != old) {
                            let mut g = seen.lock().unwrap();
                            if g.is_none_or(|x| t < x) {
                                *g = Some(t);
                            }
                        }
                    }
                });
            }
            while asks.try_join_next().is_some() {}
        }
        // Asks started earlier may still answer with an earlier time.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(3), asks.join_next()).await {}
    })
}

async fn failover_trial(b: &mut Bench, n: u64) -> anyhow::Result<Trial> {
    let stop = Arc::new(AtomicBool::new(false));
    let paced_acks = Arc::new(Mutex::new(Vec::new()));
    let seq_acks = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(None));
    let paced = paced_writer(b.client(), stop.clone(), paced_acks.clone());
    let seq = sequential_writer(b.client(), stop.clone(), seq_acks.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let old = b.wait_leader(Duration::from_secs(30)).await?;
    let old_term = b.status_of(old).await.map(|s| s.term).unwrap_or(0);
    let survivors: Vec<Client> = b.planned.keys().filter(|id| **id != old).map(|id| b.client_of(*id)).collect();
    let before = paced_acks.lock().unwrap().len();
    let killed = Instant::now();
    b.kill(old);
    let watch = election_watch(survivors, old, old_term, stop.clone(), seen.clone());
    let deadline = killed + Duration::from_secs(30);
    let mut t = Trial { elected: None, failover: None, sequential: None };
    // Until the paced writer got a commit, and the one-at-a-time client
    // one more after that (it may be stuck in a call begun before).
    let mut seq_back = false;
    while Instant::now() < deadline && !seq_back {
        tokio::time::sleep(Duration::from_millis(10)).await;
        t.failover = paced_acks.lock().unwrap().iter().filter(|(s, _)| *s >= killed).map(|(_, e)| *e - killed).min();
        seq_back = t.failover.is_some_and(|f| seq_acks.lock().unwrap().last().is_some_and(|e| *e > killed + f));
    }
    stop.store(true, Ordering::Relaxed);
    seq.abort();
    let _ = paced.await;
    let _ = seq.await;
    let _ = watch.await;
    t.elected = seen.lock().unwrap().map(|s| s.saturating_duration_since(killed));
    if seq_back {
        let acks = seq_acks.lock().unwrap().clone();
        let from = acks.iter().rposition(|e| *e <= killed).unwrap_or(0);
        t.sequential = acks[from..].windows(2).map(|w| w[1] - w[0]).max();
    }
    let new = b.wait_leader(Duration::from_secs(30)).await?;
    let term = b.status_of(new).await.map(|s| s.term).unwrap_or(0);
    let restart = Instant::now();
    b.spawn(old)?;
    b.wait_caught_up(old, Duration::from_secs(120)).await?;
    let show = |d: Option<Duration>| d.map(|d| format!("{:.0} ms", ms(d))).unwrap_or_else(|| "none in 30 s".into());
    println!(
        "  trial {n:>2}: killed leader {old} (term {old_term}, {before} acks before), new leader {new} (term {term}) \
         named after {}; first commit after {}; one-at-a-time client waited {}; restarted node caught up in {:.2} s",
        show(t.elected),
        show(t.failover),
        show(t.sequential),
        restart.elapsed().as_secs_f64()
    );
    Ok(t)
}

/// Sorted durations of each kind over the trials, and how many trials
/// saw no commit within 30 s.
struct Series {
    elected: Vec<Duration>,
    failover: Vec<Duration>,
    sequential: Vec<Duration>,
    failed: u64,
}

async fn failover(name: &str, tuning: RaftTuning, trials: u64) -> anyhow::Result<Series> {
    println!();
    println!(
        "failover, {name} tuning (heartbeat {} ms, election timeout {}-{} ms), {trials} trials, load average {}:",
        tuning.heartbeat_ms,
        tuning.election_timeout_min_ms,
        tuning.election_timeout_max_ms,
        loadavg()
    );
    let mut b = Bench::start(tuning).await?;
    let mut s = Series { elected: Vec::new(), failover: Vec::new(), sequential: Vec::new(), failed: 0 };
    for n in 1..=trials {
        let t = failover_trial(&mut b, n).await?;
        match t.failover {
            Some(d) => s.failover.push(d),
            None => s.failed += 1,
        }
        s.elected.extend(t.elected);
        s.sequential.extend(t.sequential);
    }
    b.finish();
    s.elected.sort();
    s.failover.sort();
    s.sequential.sort();
    Ok(s)
}

/// "median (min-max)" in milliseconds.
fn spread_ms(sorted: &[Duration]) -> String {
    match (sorted.first(), sorted.last()) {
        (Some(lo), Some(hi)) => format!("{:.0} ({:.0}-{:.0})", ms(median(sorted)), ms(*lo), ms(*hi)),
        _ => "-".into(),
    }
}

/// `tuning` with the heartbeat `BM_BENCH_HEARTBEAT_MS` names, if any (to
/// compare heartbeats on one build).
fn tuned(mut tuning: RaftTuning) -> RaftTuning {
    if let Some(ms) = std::env::var("BM_BENCH_HEARTBEAT_MS").ok().and_then(|v| v.parse().ok()) {
        tuning.heartbeat_ms = ms;
    }
    tuning
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo test --benches` asks for a listing.
    }
    let secs = env_num("BM_BENCH_SECS", 10).max(1);
    let trials = env_num("BM_BENCH_TRIALS", 10).max(1);
    println!("3-node cluster benchmark: 3 `bm node` processes on loopback (QUIC, no relay), fsync on every node,");
    println!("clients in the bench process; p50/p99/max: what the client saw; commit p50/p99: what the nodes measured");
    println!("from taking a command to its outcome (forwarding included), from their histograms (at most 3.1% high)");
    println!("reproduce: BM_BENCH_SECS={secs} BM_BENCH_TRIALS={trials} cargo bench -p bm --bench cluster");
    println!("machine: {}", machine());

    throughput(secs).await?;
    if std::env::var_os("BM_BENCH_ONLY").is_some() {
        return Ok(());
    }

    let mut rows = Vec::new();
    for (name, tuning) in [("default", RaftTuning::default()), ("test", RaftTuning::frequent_snapshots())] {
        let tuning = tuned(tuning);
        let r = failover(name, tuning.clone(), trials).await?;
        rows.push((name, tuning, r));
    }
    println!();
    println!("failover, ms from kill -9 of the leader, median (min-max) of {trials} trials");
    println!("(one-at-a-time wait: longest wait between two acknowledgements of a client submitting one at a time):");
    println!(
        "{:>8} {:>9} {:>10} {:>20} {:>20} {:>20} {:>6}",
        "tuning", "heartbeat", "election", "new leader named", "first commit", "one-at-a-time wait", "failed"
    );
    for (name, t, s) in rows {
        println!(
            "{:>8} {:>9} {:>10} {:>20} {:>20} {:>20} {:>6}",
            name,
            format!("{} ms", t.heartbeat_ms),
            format!("{}-{} ms", t.election_timeout_min_ms, t.election_timeout_max_ms),
            spread_ms(&s.elected),
            spread_ms(&s.failover),
            spread_ms(&s.sequential),
            s.failed,
        );
    }
    println!("load average at the end: {}", loadavg());
    Ok(())
}
