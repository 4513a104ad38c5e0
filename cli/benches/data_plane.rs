//! Data-plane benchmark: artefact uploads and job logs from agents, on a
//! cluster of real `bm node` processes.
//!
//! `cargo bench -p bm --bench data_plane` (`BM_BENCH_MIB`, MiB uploaded per
//! file size and transport, default 256; `BM_BENCH_SECS`, seconds of log
//! ingestion measured after a 2 s warm-up, default 10; `BM_BENCH_SAMPLES`,
//! live-tail samples per idle configuration, default 200;
//! `BM_BENCH_BATCH`, lines per log batch, default the agent's most (`bm_api::agent::MAX_BATCH_EVENTS`, 2,000);
//! `BM_BENCH_ONE_NODE=0` skips the 1-node comparison; `BM_BENCH_UPLOADS=0`
//! the uploads, `BM_BENCH_LOGS=0` the log ingestion and tails;
//! `BM_BENCH_KEEP=1` keeps the cluster folders and node logs).
//!
//! The bench is the factory and the agents itself: no sandbox, no job
//! script. It creates a target and a factory, submits a job per agent,
//! leases the workers the scheduler asks for, and acts as each worker's
//! agent with `bm_api::agent_link::AgentClient` (QUIC, or HTTP for the
//! comparison): bootstrap, instruction long-poll until the job is
//! assigned, start, then uploads or event batches under the epoch.
//!
//! Four figures, each printed next to its target from the issue:
//! 1. upload MB/s of one agent over QUIC, files one after another; the
//!    node answers once the blob is on a quorum's disk (fsynced) and its
//!    reference is committed;
//! 2. the same uploads through the HTTP agent API;
//! 3. aggregate log ingestion MB/s (line payload bytes) of 16 agents, each
//!    sending full batches (the agent's most, 2,000 lines) of 100-byte lines, one batch in flight per
//!    agent as the real agent does;
//! 4. live-tail latency: from an agent sending a one-line batch to a reader
//!    on another node seeing the line through the events long-poll.
//!
//! To show where the time goes, the bench also measures: sha256 and
//! write+fsync speed on this machine; the same files uploaded again (every
//! node already holds them, so no disk is written, but they still cross
//! the agent link and the peer link); the files downloaded back as inputs
//! of a dependent job (the agent link alone); ingestion over HTTP and with
//! every agent on the leader; how far followers were behind when the load
//! stopped; the CPU each process and the whole machine used in each phase;
//! and (unless skipped) every phase again on a 1-node cluster.
//! MB is 10^6 bytes throughout.

/// The multi-node tests' helpers; the bench uses their process guard,
/// which kills a node when the bench ends or fails.
#[path = "../tests/common/mod.rs"]
mod common;
/// What the benches share (the node cluster, knobs, quantiles).
mod support;

/// mimalloc: with the system allocator, malloc and free were a quarter of a
/// node's CPU on the commit path (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bm_api::agent::{AgentEvent, EventsUpload, Finish, InputSet, Instruction};
use bm_api::agent_link::{AgentClient, AgentLink};
use bm_api::factories::{FactoryCreate, LeaseRequest, WorkerLease};
use bm_api::jobs::{DependSubmit, JobSubmit};
use bm_api::targets::TargetCreate;
use bm_api::Client;
use bm_node::config::RaftTuning;
use futures::StreamExt as _;
use support::{env_num, loadavg, machine, ms, pct, Nodes};

/// The target every bench job is for; the bench is its only factory.
const TARGET: &str = "bench";
/// Bytes in a MiB, the unit of the file sizes.
const MIB: usize = 1 << 20;
/// Bytes in a MB, the unit of every rate printed.
const MB: f64 = 1e6;
/// File sizes uploaded, in MiB (the examples).
const SIZES_MIB: [usize; 3] = [1, 16, 64];
/// Fewest uploads of one size, so a p50 means something for 64 MiB files.
const MIN_UPLOADS: usize = 5;
/// Concurrent agents sending logs (the figure).
const LOG_AGENTS: usize = 16;
/// Lines per events batch by default (`BM_BENCH_BATCH` changes it): what
/// the real agent sends for a job that writes faster than the cluster
/// answers (it sends whatever is queued, up to this many).
const BATCH_LINES: usize = bm_api::agent::MAX_BATCH_EVENTS;

/// Lines per events batch in this run.
fn batch_lines() -> usize {
    env_num("BM_BENCH_BATCH", BATCH_LINES as u64).max(1) as usize
}
/// Payload bytes per log line (the example).
const LINE_BYTES: usize = 100;
/// Ingestion runs this long before it is measured, so connection set-up
/// and the agents' first batches do not count.
const WARM_UP: Duration = Duration::from_secs(2);
/// How long a tail sample leaves the reader's long-poll to park on its
/// node before the agent sends, so the figure is not the reader's own
/// round trip.
const PARK: Duration = Duration::from_millis(20);
/// Pause between tail samples.
const GAP: Duration = Duration::from_millis(30);
/// Target of the issue: single-agent upload, MB/s.
const GOAL_UPLOAD_MBS: f64 = 200.0;
/// Target of the issue: aggregate log ingestion, MB/s.
const GOAL_LOGS_MBS: f64 = 50.0;
/// Target of the issue: live-tail p99, ms.
const GOAL_TAIL_P99_MS: f64 = 500.0;

/// Makes every uploaded file unique across the whole run: the blob store
/// is content-addressed, so a repeated file would be recognised and not
/// stored again, which would flatter the figure.
static UPLOAD_SEQ: AtomicU64 = AtomicU64::new(0);

/// "met" or "NOT met", printed next to each figure.
fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

/// Clock ticks per second of `/proc/PID/stat` CPU times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// User plus system CPU time of process `pid` ("self" for the bench), in
/// ticks: which process the cores went to during a phase is the first
/// clue to where the time goes.
fn cpu_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14 and stime 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i - 3).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    get(14) + get(15)
}

/// Busy and iowait ticks of the whole machine (all cores, every process,
/// other people's builds included), from `/proc/stat`: tells a phase that
/// had the cores to itself from one that shared them.
fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return (0, 0) };
    let f: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal ...
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    (busy, get(4))
}

/// CPU ticks of the nodes, of the bench process and of the whole machine
/// at one moment.
struct CpuMark {
    /// Per node.
    nodes: BTreeMap<u64, u64>,
    /// The bench process.
    bench: u64,
    /// The machine: busy and iowait.
    machine: (u64, u64),
}

/// A cluster of `bm node` processes on loopback (QUIC between them, no
/// relay, fsync on), with the target and factory the bench acts through.
struct Bench {
    /// The node processes (and their folder, kept with `BM_BENCH_KEEP`).
    nodes: Nodes,
    /// An admin client of every node: submits the bench's jobs.
    admin: Client,
    /// The bench's factory: leases the workers the scheduler requests.
    factory: Client,
    /// Jobs submitted so far, to name them uniquely.
    submitted: usize,
}

impl std::ops::Deref for Bench {
    type Target = Nodes;
    fn deref(&self) -> &Nodes {
        &self.nodes
    }
}

/// How a bench agent reaches the cluster.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// The agent link (QUIC) to this node only, so runs are comparable
    /// (a real agent races all nodes and keeps the nearest; on loopback
    /// that is arbitrary).
    Quic(u64),
    /// The HTTP agent API of this node.
    Http(u64),
}

/// What the tables need to know about a placement.
impl Via {
    /// The node the agent talks to.
    fn node(self) -> u64 {
        match self {
            Via::Quic(n) | Via::Http(n) => n,
        }
    }

    /// "QUIC" or "HTTP", for the tables.
    fn transport(self) -> &'static str {
        match self {
            Via::Quic(_) => "QUIC",
            Via::Http(_) => "HTTP",
        }
    }
}

/// Starting, watching and driving the cluster.
impl Bench {
    /// Writes the files of an `n`-node cluster like `bm cluster init`,
    /// starts the nodes, waits until they agree, and creates the target
    /// and the factory.
    async fn start(n: u64) -> anyhow::Result<Self> {
        let nodes = Nodes::start("bm-bench-data-plane-", n, RaftTuning::default()).await?;
        let admin = nodes.client();
        admin.target_create(&TargetCreate::named(TARGET)).await?;
        let f = admin.factory_create(&FactoryCreate { name: "bench".into() }).await?;
        let urls: Vec<String> = nodes.planned.keys().map(|id| nodes.url(*id)).collect();
        let factory = Client::new(urls, Some(f.token));
        Ok(Self { nodes, admin, factory, submitted: 0 })
    }

    /// Node `id`'s QUIC address as the membership (and so the lease) lists it.
    fn peer_addr(&self, id: u64) -> String {
        self.planned[&id].peer.to_string()
    }

    /// The leader and the other nodes, in id order.
    async fn roles(&self) -> anyhow::Result<(u64, Vec<u64>)> {
        let l = self.wait_leader(Duration::from_secs(30)).await?;
        Ok((l, self.planned.keys().copied().filter(|id| *id != l).collect()))
    }

    /// "leader" or "follower" for node `id`, for the tables.
    fn role(id: u64, leader: u64) -> String {
        if id == leader {
            format!("node {id} (leader)")
        } else {
            format!("node {id} (follower)")
        }
    }

    /// CPU ticks used so far by each node and by the bench process.
    fn cpu(&self) -> CpuMark {
        let nodes = self.procs.iter().map(|(id, p)| (*id, cpu_ticks(&p.0.id().to_string()))).collect();
        CpuMark { nodes, bench: cpu_ticks("self"), machine: machine_ticks() }
    }

    /// One line of CPU use between `before` and now over `secs`, in % of
    /// one core (the machine has 2, so 200% is all of it), with what the
    /// whole machine did meanwhile.
    fn cpu_line(&self, before: &CpuMark, secs: f64) -> String {
        let now = self.cpu();
        let hz = clock_ticks();
        let share = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / hz / secs * 100.0;
        let mut parts: Vec<String> = now
            .nodes
            .iter()
            .map(|(id, t)| format!("node {id} {:.0}%", share(before.nodes.get(id).copied().unwrap_or(0), *t)))
            .collect();
        parts.push(format!("bench (agents, readers) {:.0}%", share(before.bench, now.bench)));
        format!(
            "CPU, % of one core: {}; whole machine busy {:.0}%, iowait {:.0}%",
            parts.join(", "),
            share(before.machine.0, now.machine.0),
            share(before.machine.1, now.machine.1)
        )
    }

    /// How long after the load stopped every node had applied what the
    /// leader had then: a follower that falls behind under load serves
    /// its readers late.
    async fn catch_up(&self, leader: u64) -> String {
        let stopped = Instant::now();
        let Some(want) = self.node_status(leader).await.and_then(|s| s.applied) else {
            return "catch-up: leader status unavailable".into();
        };
        let mut first: BTreeMap<u64, Option<u64>> = BTreeMap::new();
        let deadline = stopped + Duration::from_secs(30);
        loop {
            let mut all = true;
            for id in self.procs.keys() {
                let have = self.node_status(*id).await.and_then(|s| s.applied);
                first.entry(*id).or_insert(have);
                all &= have.is_some_and(|h| h >= want);
            }
            if all || Instant::now() > deadline {
                let lag: Vec<String> = first
                    .iter()
                    .filter(|(id, _)| **id != leader)
                    .map(|(id, h)| format!("node {id} {} entries", want.saturating_sub(h.unwrap_or(0))))
                    .collect();
                return format!(
                    "when the load stopped, followers were behind the leader's applied index {want} by: {}; \
                     all applied it {:.0} ms later{}",
                    if lag.is_empty() { "-".to_string() } else { lag.join(", ") },
                    ms(stopped.elapsed()),
                    if all { "" } else { " (NOT within 30 s)" }
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `n` agents, each with a job of its own that is assigned and
    /// started: submits the jobs, leases the workers the scheduler asks
    /// for, and bootstraps an agent for each through `via(i)`.
    async fn agents(&mut self, n: usize, via: impl Fn(usize) -> Via, tag: &str) -> anyhow::Result<Vec<Agent>> {
        self.agents_after(n, via, tag, None).await
    }

    /// [`Bench::agents`] whose jobs depend on job `prior` and get its
    /// outputs as inputs (for the downloads).
    async fn agents_after(
        &mut self,
        n: usize,
        via: impl Fn(usize) -> Via,
        tag: &str,
        prior: Option<&str>,
    ) -> anyhow::Result<Vec<Agent>> {
        for _ in 0..n {
            self.submitted += 1;
            let mut job = JobSubmit::script(&format!("{tag}-{}", self.submitted), TARGET, "true");
            if let Some(p) = prior {
                let d = DependSubmit { prior_job: p.into(), copy_outputs: true, on_failed: false, on_completed: true };
                job.depends.insert("up".into(), d);
            }
            self.admin.job_submit(&job).await?;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut leases = Vec::new();
        while leases.len() < n {
            let req = LeaseRequest { targets: vec![TARGET.into()], capacity: None };
            match self.factory.factory_lease(&req).await? {
                Some(l) => leases.push(l),
                None => {
                    anyhow::ensure!(Instant::now() < deadline, "only {} of {n} workers leased in 60 s", leases.len());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        let mut joins = Vec::new();
        for (i, lease) in leases.into_iter().enumerate() {
            let v = via(i);
            let client = self.transport(&lease, v)?;
            joins.push(tokio::spawn(Agent::join(client, lease.bootstrap_token, v)));
        }
        let mut agents = Vec::new();
        for j in joins {
            agents.push(j.await??);
        }
        Ok(agents)
    }

    /// The agent's connection for a lease, as a factory would hand it on.
    fn transport(&self, lease: &WorkerLease, via: Via) -> anyhow::Result<AgentClient> {
        match via {
            Via::Http(id) => Ok(AgentClient::Http(Client::new(vec![self.url(id)], None))),
            Via::Quic(id) => {
                let info = lease.agent_link.as_ref().context("the lease names no QUIC address")?;
                let addr = self.peer_addr(id);
                anyhow::ensure!(
                    info.addrs.contains(&addr),
                    "node {id} ({addr}) is not in the lease's {:?}",
                    info.addrs
                );
                Ok(AgentClient::Quic(AgentLink::new(vec![addr], &info.ca_pem)?))
            }
        }
    }

    /// Stops the nodes; the folder goes unless `BM_BENCH_KEEP` is set.
    fn finish(self) {
        self.nodes.finish();
    }
}

/// One bench agent: a worker's credential and its started job.
struct Agent {
    /// Its connection, calling with the worker credential.
    client: AgentClient,
    /// Its job.
    job: String,
    /// The assignment's fencing epoch.
    epoch: u64,
    /// Events sent so far (the `first` of the next batch).
    sent: u64,
    /// How it reaches the cluster.
    via: Via,
    /// Outputs of the job it depends on, if any.
    inputs: Vec<InputSet>,
}

/// What the bench's agents do, as the real agent does it.
impl Agent {
    /// What the real agent does first: exchanges the bootstrap token,
    /// long-polls instructions until the job is assigned, and starts it.
    async fn join(client: AgentClient, bootstrap_token: String, via: Via) -> anyhow::Result<Agent> {
        let creds = client.agent_bootstrap(&bootstrap_token).await?;
        let client = client.with_token(creds.token);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match client.agent_instruction(5).await? {
                Instruction::Run(a) => {
                    client.agent_start(&a.job.id, a.epoch).await?;
                    let (job, epoch, inputs) = (a.job.id.clone(), a.epoch, a.inputs.clone());
                    return Ok(Agent { client, job, epoch, sent: 0, via, inputs });
                }
                Instruction::Wait => {
                    anyhow::ensure!(Instant::now() < deadline, "worker {} got no job in 60 s", creds.worker)
                }
                Instruction::Stop { reason } => anyhow::bail!("worker {} told to stop: {reason}", creds.worker),
            }
        }
    }

    /// Sends one numbered batch, as the agent's shipper does.
    async fn send(&mut self, events: Vec<AgentEvent>) -> anyhow::Result<()> {
        let n = events.len() as u64;
        let up = EventsUpload { epoch: self.epoch, first: Some(self.sent), events };
        self.client.agent_events(&self.job, &up).await?;
        self.sent += n;
        Ok(())
    }

    /// Reports the job done, so its worker is released.
    async fn finish(&self) -> anyhow::Result<()> {
        self.client.agent_finish(&self.job, &Finish { epoch: self.epoch, failure: None }).await?;
        Ok(())
    }
}

/// A stdout line for task 0, stamped now.
fn line(payload: String) -> AgentEvent {
    AgentEvent { stream: "stdout".into(), task: Some(0), time: chrono::Utc::now(), payload }
}

/// Pseudo-random bytes (xorshift): file contents that no layer could
/// compress or recognise.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Files of one size moved by one agent, one after another.
struct Transfer {
    /// What was moved ("16 MiB", "64 MiB again").
    label: String,
    /// Size of each file, bytes.
    size: usize,
    /// Each file's latency (call to acknowledgement or last byte), sorted.
    lat: Vec<Duration>,
    /// For files sent several at once, the time from the first start to
    /// the last acknowledgement.
    wall: Option<Duration>,
}

/// The figure a transfer row reports.
impl Transfer {
    /// MB/s: bytes over the summed latency (files back to back) or over
    /// the wall time (files sent several at once).
    fn mbs(&self) -> f64 {
        let secs: f64 = match self.wall {
            Some(w) => w.as_secs_f64(),
            None => self.lat.iter().map(|d| d.as_secs_f64()).sum(),
        };
        (self.size * self.lat.len()) as f64 / MB / secs
    }
}

/// One agent uploads files of each size in turn, one at a time, each
/// acknowledged before the next starts (as the agent's collector does).
/// Then, to show what the disks cost, the last file of the two larger
/// sizes is uploaded again a few times: every node already holds it, so
/// nothing is written, but it still crosses the link, is hashed and is
/// sent to a peer (which finds it present). Returns the rows and the job,
/// finished, whose outputs the download phase reads.
async fn uploads(b: &mut Bench, via: Via, data: &[u8], mib_per_size: usize) -> anyhow::Result<(Vec<Transfer>, String)> {
    let agent = b.agents(1, |_| via, &format!("upload-{}", via.transport())).await?.remove(0);
    let unique = |size: usize| {
        let mut v = data[..size].to_vec();
        v[..8].copy_from_slice(&UPLOAD_SEQ.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        v
    };
    let put = |path: String, bytes: Vec<u8>| {
        let (client, job, epoch) = (agent.client.clone(), agent.job.clone(), agent.epoch);
        async move {
            let t = Instant::now();
            client.agent_output(&job, epoch, &path, bytes.into()).await?;
            anyhow::Ok(t.elapsed())
        }
    };
    // One upload first: the connection and the node's first blob folder.
    put("/out/warm-up".into(), unique(MIB)).await?;
    let mut rows = Vec::new();
    let mut last = BTreeMap::new();
    for mib in SIZES_MIB {
        let count = (mib_per_size / mib).max(MIN_UPLOADS);
        let mut lat = Vec::new();
        for i in 0..count {
            let bytes = unique(mib * MIB);
            last.insert(mib, bytes.clone());
            lat.push(put(format!("/out/{mib}MiB-{i}"), bytes).await?);
        }
        lat.sort();
        rows.push(Transfer { label: format!("{mib} MiB"), size: mib * MIB, lat, wall: None });
    }
    // Small files as the agent's collector sends them: several at once.
    let count = (mib_per_size / SIZES_MIB[0]).max(MIN_UPLOADS);
    let at_once = bm_agent::collect::UPLOADS_AT_ONCE;
    let t = Instant::now();
    let mut lat: Vec<Duration> = futures::stream::iter(0..count)
        .map(|i| put(format!("/out/1MiB-at-once-{i}"), unique(MIB)))
        .buffer_unordered(at_once)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    lat.sort();
    rows.push(Transfer { label: format!("1 MiB, {at_once} at once"), size: MIB, lat, wall: Some(t.elapsed()) });
    // Let the background copies to the last node finish first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for mib in SIZES_MIB.into_iter().filter(|m| *m >= 16) {
        let mut lat = Vec::new();
        for i in 0..MIN_UPLOADS {
            lat.push(put(format!("/out/{mib}MiB-again-{i}"), last[&mib].clone()).await?);
        }
        lat.sort();
        rows.push(Transfer { label: format!("{mib} MiB again"), size: mib * MIB, lat, wall: None });
    }
    // The agent's own path: a file on disk (written just before, so in the
    // page cache, as a job's fresh artefact is), read a piece at a time
    // while it is sent, and checked to have held still.
    let dir = tempfile::tempdir()?;
    for mib in SIZES_MIB.into_iter().filter(|m| *m >= 16) {
        let mut lat = Vec::new();
        for i in 0..MIN_UPLOADS {
            let host_path = dir.path().join(format!("{mib}MiB-file-{i}"));
            std::fs::write(&host_path, unique(mib * MIB))?;
            let meta = std::fs::metadata(&host_path)?;
            let file = bm_agent::outputs::PlannedFile {
                path: format!("/out/{mib}MiB-file-{i}"),
                host_path,
                allow_change: false,
                size: meta.len(),
                mtime: meta.modified()?,
            };
            let t = Instant::now();
            bm_agent::collect::upload_file(&agent.client, &agent.job, agent.epoch, &file).await??;
            lat.push(t.elapsed());
            std::fs::remove_file(&file.host_path)?;
        }
        lat.sort();
        rows.push(Transfer { label: format!("{mib} MiB file"), size: mib * MIB, lat, wall: None });
    }
    agent.finish().await?;
    Ok((rows, agent.job.clone()))
}

/// A job depending on `prior` downloads its files of 16 MiB and more as
/// inputs, one at a time (the blobs are in the node's page cache): the
/// agent link's and the HTTP API's speed without hashing or disk writes.
async fn downloads(b: &mut Bench, via: Via, prior: &str) -> anyhow::Result<Vec<Transfer>> {
    let agent = b.agents_after(1, |_| via, &format!("download-{}", via.transport()), Some(prior)).await?.remove(0);
    let mut by_size: BTreeMap<u64, Vec<Duration>> = BTreeMap::new();
    let outputs = agent.inputs.iter().flat_map(|i| i.outputs.iter()).filter(|o| o.size >= 16 * MIB as u64);
    // Into memory, and the agent's own path: into a file, hashed on the way.
    let dir = tempfile::tempdir()?;
    let mut into_file: BTreeMap<u64, Vec<Duration>> = BTreeMap::new();
    for o in outputs.filter(|o| !o.path.contains("again") && !o.path.contains("file")) {
        let t = Instant::now();
        let bytes = agent.client.agent_input(&agent.job, agent.epoch, &o.id).await?;
        let d = t.elapsed();
        anyhow::ensure!(bytes.len() as u64 == o.size, "input {} came with {} of {} bytes", o.path, bytes.len(), o.size);
        by_size.entry(o.size).or_default().push(d);
        let path = dir.path().join(&o.id);
        let mut file = tokio::fs::File::create(&path).await?;
        let t = Instant::now();
        let sha = bm_agent::inputs::download(&agent.client, &agent.job, agent.epoch, o, &mut file).await?;
        into_file.entry(o.size).or_default().push(t.elapsed());
        anyhow::ensure!(sha == o.sha256, "input {} arrived damaged", o.path);
        std::fs::remove_file(&path)?;
    }
    agent.finish().await?;
    let rows = |m: BTreeMap<u64, Vec<Duration>>, what: &'static str| {
        m.into_iter().map(move |(size, mut lat)| {
            lat.sort();
            Transfer { label: format!("{} MiB{what}", size as usize / MIB), size: size as usize, lat, wall: None }
        })
    };
    Ok(rows(by_size, "").chain(rows(into_file, " file")).collect())
}

/// Prints a transfer table; with `goal`, each row next to the upload target.
fn print_transfers(label: &str, rows: &[Transfer], goal: bool) {
    println!("{label}");
    println!("{:>14} {:>6} {:>8} {:>10} {:>10} {:>10}", "size", "files", "MB/s", "p50 ms", "min ms", "max ms");
    for r in rows {
        let target = if goal && !r.label.contains("again") {
            format!("   target {GOAL_UPLOAD_MBS:.0} MB/s: {}", verdict(r.mbs() >= GOAL_UPLOAD_MBS))
        } else {
            String::new()
        };
        println!(
            "{:>14} {:>6} {:>8.1} {:>10.1} {:>10.1} {:>10.1}{target}",
            r.label,
            r.lat.len(),
            r.mbs(),
            ms(pct(&r.lat, 0.5)),
            ms(r.lat[0]),
            ms(*r.lat.last().unwrap()),
        );
    }
}

/// Runs the upload phase over `via`, then downloads of those files over
/// the same transport, and prints both with the CPU they took.
async fn upload_phase(
    b: &mut Bench,
    via: Via,
    data: &[u8],
    mib: usize,
    leader: u64,
    goal: bool,
) -> anyhow::Result<(Vec<Transfer>, Vec<Transfer>)> {
    let (cpu, t) = (b.cpu(), Instant::now());
    let (rows, job) = uploads(b, via, data, mib).await?;
    let cpu_line = b.cpu_line(&cpu, t.elapsed().as_secs_f64());
    println!();
    print_transfers(
        &format!(
            "upload, one agent over {} to {}, one file at a time, load average {}:",
            via.transport(),
            Bench::role(via.node(), leader),
            loadavg()
        ),
        &rows,
        goal,
    );
    println!("  {cpu_line}");
    let (cpu, t) = (b.cpu(), Instant::now());
    let down = downloads(b, via, &job).await?;
    let cpu_line = b.cpu_line(&cpu, t.elapsed().as_secs_f64());
    print_transfers(
        &format!("download of the same files as inputs, over {} from the same node:", via.transport()),
        &down,
        false,
    );
    println!("  {cpu_line}");
    Ok((rows, down))
}

/// What the log ingestion phase measured.
struct Ingest {
    /// Length of the measured window, s.
    secs: f64,
    /// Batches acknowledged in the window.
    batches: usize,
    /// Each batch's latency (send to acknowledgement), sorted.
    lat: Vec<Duration>,
    /// Failed batches in the window.
    errors: usize,
    /// The first failure, to print.
    first_error: Option<String>,
}

/// The figure an ingestion phase reports.
impl Ingest {
    /// Line payload MB/s over the window.
    fn mbs(&self) -> f64 {
        (self.batches * batch_lines() * LINE_BYTES) as f64 / MB / self.secs
    }
}

/// Every agent sends batches back to back (one in flight each) for the
/// warm-up and then `secs` measured; the phase flag (0 warm-up, 1
/// measuring, 2 stop) is shared with a tail sampler that may run alongside.
async fn ingest(agents: Vec<Agent>, secs: u64, phase: Arc<AtomicU8>) -> anyhow::Result<(Ingest, Vec<Agent>)> {
    let mut tasks = Vec::new();
    for (c, mut agent) in agents.into_iter().enumerate() {
        let phase = phase.clone();
        tasks.push(tokio::spawn(async move {
            let mut template: Vec<AgentEvent> = (0..batch_lines())
                .map(|j| {
                    let mut s = format!("agent {c:02} line {j:03} compiling crate bm-{j} ");
                    while s.len() < LINE_BYTES {
                        s.push(char::from(b'a' + (s.len() % 26) as u8));
                    }
                    s.truncate(LINE_BYTES);
                    line(s)
                })
                .collect();
            let (mut lat, mut errors, mut first_error) = (Vec::new(), 0, None);
            loop {
                let ph = phase.load(Ordering::Relaxed);
                if ph == 2 {
                    break;
                }
                let now = chrono::Utc::now();
                for e in &mut template {
                    e.time = now;
                }
                let t = Instant::now();
                let r = agent.send(template.clone()).await;
                let d = t.elapsed();
                if phase.load(Ordering::Relaxed) == 1 && ph == 1 {
                    match r {
                        Ok(()) => lat.push(d),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e.to_string());
                        }
                    }
                }
                if errors > 0 {
                    // Do not spin on a broken cluster.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            (agent, lat, errors, first_error)
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    phase.store(1, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    phase.store(2, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let mut out = Ingest { secs, batches: 0, lat: Vec::new(), errors: 0, first_error: None };
    let mut agents = Vec::new();
    for t in tasks {
        let (agent, lat, errors, first_error) = t.await?;
        agents.push(agent);
        out.lat.extend(lat);
        out.errors += errors;
        if out.first_error.is_none() {
            out.first_error = first_error;
        }
    }
    out.batches = out.lat.len();
    out.lat.sort();
    Ok((out, agents))
}

/// What a live-tail run measured.
struct Tail {
    /// From the agent sending to the reader's long-poll returning the line, sorted.
    seen: Vec<Duration>,
    /// From the agent sending to its acknowledgement (committed), sorted.
    acked: Vec<Duration>,
}

/// Live tail: a reader long-polls the job's events on its node while the
/// agent sends a one-line batch; the sample is the time from the send to
/// the reader getting that line. Takes `samples` samples, or with `phase`
/// only while it is 1 (alongside ingestion).
async fn tail(
    agent: &mut Agent,
    reader: &Client,
    samples: usize,
    phase: Option<Arc<AtomicU8>>,
) -> anyhow::Result<Tail> {
    let job = agent.job.clone();
    // Start after what the job already has. The reader's node serves
    // reads from what it has applied, so it may not know the job yet.
    let mut from = 0;
    let known = Instant::now() + Duration::from_secs(60);
    loop {
        let p = match reader.job_events(&job, from, None).await {
            Ok(p) => p,
            Err(e) if e.code() == Some(bm_api::ErrorCode::NotFound) && Instant::now() < known => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match p.events.last() {
            Some(e) => from = e.seq + 1,
            None => break,
        }
    }
    if let Some(ph) = &phase {
        while ph.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut t = Tail { seen: Vec::new(), acked: Vec::new() };
    for i in 0..samples {
        if phase.as_ref().is_some_and(|ph| ph.load(Ordering::Relaxed) != 1) {
            break;
        }
        let marker = format!("tail sample {i}");
        let (r, j, m) = (reader.clone(), job.clone(), marker.clone());
        let watch = tokio::spawn(async move {
            let mut from = from;
            loop {
                let p = r.job_events(&j, from, Some(30)).await?;
                if let Some(e) = p.events.iter().find(|e| e.payload == m) {
                    return anyhow::Ok((Instant::now(), e.seq));
                }
                if let Some(e) = p.events.last() {
                    from = e.seq + 1;
                }
                anyhow::ensure!(!p.job_state.is_terminal(), "job {j} ended");
            }
        });
        tokio::time::sleep(PARK).await;
        let sent = Instant::now();
        agent.send(vec![line(marker)]).await?;
        t.acked.push(sent.elapsed());
        let (seen, seq) =
            tokio::time::timeout(Duration::from_secs(60), watch).await.context("tail reader stuck")???;
        t.seen.push(seen.saturating_duration_since(sent));
        from = seq + 1;
        tokio::time::sleep(GAP).await;
    }
    t.seen.sort();
    t.acked.sort();
    Ok(t)
}

/// One printed tail row.
fn tail_row(what: &str, t: &Tail) -> String {
    format!(
        "{what:<52} {:>4} {:>8.1} {:>8.1} {:>8.1} {:>11.1}   target p99 < {GOAL_TAIL_P99_MS:.0} ms: {}",
        t.seen.len(),
        ms(pct(&t.seen, 0.5)),
        ms(pct(&t.seen, 0.99)),
        ms(t.seen.last().copied().unwrap_or_default()),
        ms(pct(&t.acked, 0.5)),
        verdict(!t.seen.is_empty() && ms(pct(&t.seen, 0.99)) < GOAL_TAIL_P99_MS),
    )
}

/// The header of the tail table.
fn tail_header() -> String {
    format!(
        "{:<52} {:>4} {:>8} {:>8} {:>8} {:>11}",
        "agent -> reader (load)", "n", "p50 ms", "p99 ms", "max ms", "ack p50 ms"
    )
}

/// Where the ingestion agents connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spread {
    /// Over QUIC, round-robin over the nodes (a fleet's agents spread out;
    /// those on a follower have it forward each batch to the leader).
    Quic,
    /// Over QUIC, all to the leader: no forwarding.
    QuicLeader,
    /// Over HTTP, round-robin over the nodes: the transport compared.
    Http,
}

/// Names for the tables.
impl Spread {
    /// For the tables.
    fn label(self) -> &'static str {
        match self {
            Spread::Quic => "QUIC, spread over the nodes",
            Spread::QuicLeader => "QUIC, all to the leader",
            Spread::Http => "HTTP, spread over the nodes",
        }
    }
}

/// Log ingestion by 16 agents placed by `spread`, with a 17th agent
/// taking tail samples alongside (over QUIC to a follower, reader on the
/// other follower when there is one); prints both.
async fn ingest_phase(b: &mut Bench, secs: u64, spread: Spread, goal: bool) -> anyhow::Result<(Ingest, NamedTail)> {
    let (leader, followers) = b.roles().await?;
    let ids: Vec<u64> = b.planned.keys().copied().collect();
    let place = |i: usize| match spread {
        Spread::Quic => Via::Quic(ids[i % ids.len()]),
        Spread::QuicLeader => Via::Quic(leader),
        Spread::Http => Via::Http(ids[i % ids.len()]),
    };
    let agents = b.agents(LOG_AGENTS, place, "logs").await?;
    let (tail_at, read_at) = match followers.as_slice() {
        [a, c, ..] => (*a, *c),
        [a] => (*a, leader),
        [] => (leader, leader),
    };
    let mut tailer = b.agents(1, |_| Via::Quic(tail_at), "tail-under-load").await?.remove(0);
    let reader = b.client_of(read_at);
    let phase = Arc::new(AtomicU8::new(0));
    let commit_before = b.commit_latencies().await;
    let (cpu, t) = (b.cpu(), Instant::now());
    let ph = phase.clone();
    let sampler = async move {
        let r = tail(&mut tailer, &reader, usize::MAX, Some(ph)).await;
        (tailer, r)
    };
    let (ingested, (tailer, tailed)) = tokio::join!(ingest(agents, secs, phase), sampler);
    let cpu_line = b.cpu_line(&cpu, t.elapsed().as_secs_f64());
    let commit = b.commit_latencies().await.since(&commit_before);
    let behind = b.catch_up(leader).await;
    let (ingested, agents) = ingested?;
    let tailed = tailed?;
    let placed: Vec<String> = ids
        .iter()
        .map(|id| format!("{} on node {id}", agents.iter().filter(|a| a.via.node() == *id).count()))
        .collect();
    println!();
    println!(
        "log ingestion, {}: {LOG_AGENTS} agents ({}; leader is node {leader}), batches of {} lines x \
         {LINE_BYTES} bytes, one batch in flight per agent, {:.1} s measured after {} s warm-up, load average {}:",
        spread.label(),
        placed.join(", "),
        batch_lines(),
        ingested.secs,
        WARM_UP.as_secs(),
        loadavg()
    );
    let target = if goal {
        format!("   target {GOAL_LOGS_MBS:.0} MB/s: {}", verdict(ingested.mbs() >= GOAL_LOGS_MBS))
    } else {
        String::new()
    };
    println!(
        "  {:.1} MB/s of line payload ({:.0} lines/s, {:.0} batches/s), batch p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms, {} errors{target}",
        ingested.mbs(),
        (ingested.batches * batch_lines()) as f64 / ingested.secs,
        ingested.batches as f64 / ingested.secs,
        ms(pct(&ingested.lat, 0.5)),
        ms(pct(&ingested.lat, 0.99)),
        ms(ingested.lat.last().copied().unwrap_or_default()),
        ingested.errors,
    );
    if let Some(e) = &ingested.first_error {
        println!("  first error: {e}");
    }
    let commit_ms = |q| commit.quantile_ms(q).unwrap_or(f64::NAN);
    println!(
        "  the nodes' commit latency (taking a batch to its outcome, forwarding included; warm-up included): \
         p50 {:.1} ms, p99 {:.1} ms over {} writes",
        commit_ms(0.5),
        commit_ms(0.99),
        commit.total()
    );
    println!("  {cpu_line}");
    println!("  {behind}");
    // Every line an agent sent is on another node: its log holds at least
    // as many events as it sent.
    let check = &agents[0];
    let other = ids.iter().copied().find(|id| *id != check.via.node()).unwrap_or(check.via.node());
    let have = b.client_of(other).job_events(&check.job, check.sent.saturating_sub(1), None).await?;
    if have.events.is_empty() {
        println!("  NODE {other} LACKS LINES agent 0 sent ({} sent, acknowledged)", check.sent);
    } else {
        println!("  (node {other} serves all {} lines agent 0 sent)", check.sent);
    }
    for a in &agents {
        a.finish().await?;
    }
    tailer.finish().await?;
    let what = format!(
        "{} -> {} (ingestion {})",
        Bench::role(tail_at, leader),
        if read_at == tail_at { "same node".to_string() } else { Bench::role(read_at, leader) },
        match spread {
            Spread::Quic => "QUIC spread",
            Spread::QuicLeader => "QUIC to leader",
            Spread::Http => "HTTP spread",
        }
    );
    Ok((ingested, tailed.rename(what)))
}

/// A tail run with the description of where agent and reader were.
struct NamedTail {
    /// "agent node -> reader node (load)".
    what: String,
    /// The samples.
    tail: Tail,
}

/// Labelling a tail run for the tables.
impl Tail {
    /// Attaches where agent and reader were.
    fn rename(self, what: String) -> NamedTail {
        NamedTail { what, tail: self }
    }
}

/// Live tail on an otherwise idle cluster, agent on `at`, reader on `read`.
async fn idle_tail(b: &mut Bench, at: u64, read: u64, samples: usize, leader: u64) -> anyhow::Result<NamedTail> {
    let mut agent = b.agents(1, |_| Via::Quic(at), "tail").await?.remove(0);
    let t = tail(&mut agent, &b.client_of(read), samples, None).await?;
    agent.finish().await?;
    let what = format!(
        "{} -> {} (idle)",
        Bench::role(at, leader),
        if read == at { "same node".to_string() } else { Bench::role(read, leader) }
    );
    Ok(t.rename(what))
}

/// Every phase on an `n`-node cluster; returns the headline figures.
async fn run(n: u64, mib: usize, secs: u64, samples: usize, data: &[u8]) -> anyhow::Result<Figures> {
    println!();
    println!("=== {n}-node cluster ===");
    let mut b = Bench::start(n).await?;
    let (leader, followers) = b.roles().await?;
    println!("leader is node {leader}; uploads go to the leader, both transports");
    let goal = n == 3;
    let (quic, quic_down, http, http_down) = if env_num("BM_BENCH_UPLOADS", 1) != 0 {
        let (quic, quic_down) = upload_phase(&mut b, Via::Quic(leader), data, mib, leader, goal).await?;
        let (http, http_down) = upload_phase(&mut b, Via::Http(leader), data, mib, leader, false).await?;
        (quic, quic_down, http, http_down)
    } else {
        println!("uploads skipped (BM_BENCH_UPLOADS=0)");
        Default::default()
    };
    if env_num("BM_BENCH_LOGS", 1) == 0 {
        println!("log ingestion and tails skipped (BM_BENCH_LOGS=0)");
        b.finish();
        return Ok(Figures { quic, quic_down, http, http_down, ingested: Vec::new(), tails: Vec::new() });
    }
    // The headline ingestion first, then the idle tails, then the
    // comparisons (a follower left behind by one of those must not spoil
    // the headline figures).
    let (i, loaded) = ingest_phase(&mut b, secs, Spread::Quic, goal).await?;
    let mut ingested = vec![(Spread::Quic, i)];
    let mut tails = Vec::new();
    match followers.as_slice() {
        [a, c, ..] => {
            tails.push(idle_tail(&mut b, *a, *c, samples, leader).await?);
            tails.push(idle_tail(&mut b, leader, *a, samples, leader).await?);
        }
        _ => tails.push(idle_tail(&mut b, leader, leader, samples, leader).await?),
    }
    tails.push(loaded);
    let others: &[Spread] = if n > 1 { &[Spread::Http, Spread::QuicLeader] } else { &[Spread::Http] };
    for spread in others {
        match ingest_phase(&mut b, secs, *spread, false).await {
            Ok((i, t)) => {
                ingested.push((*spread, i));
                tails.push(t);
            }
            Err(e) => println!("  ingestion {} FAILED: {e:#}", spread.label()),
        }
    }
    println!();
    println!(
        "live tail: agent sends a one-line batch, reader long-polls the job's events on its node; load average {}:",
        loadavg()
    );
    println!("{}", tail_header());
    for t in &tails {
        println!("{}", tail_row(&t.what, &t.tail));
    }
    let (l2, _) = b.roles().await?;
    if l2 != leader {
        println!("  leadership moved during the run: node {leader} -> node {l2}");
    }
    b.finish();
    Ok(Figures { quic, quic_down, http, http_down, ingested, tails })
}

/// The headline figures of one cluster size, for the summary.
struct Figures {
    /// Uploads over QUIC.
    quic: Vec<Transfer>,
    /// Downloads of those over QUIC.
    quic_down: Vec<Transfer>,
    /// Uploads over HTTP.
    http: Vec<Transfer>,
    /// Downloads of those over HTTP.
    http_down: Vec<Transfer>,
    /// Log ingestion, per placement.
    ingested: Vec<(Spread, Ingest)>,
    /// Live-tail runs, idle first.
    tails: Vec<NamedTail>,
}

/// sha256 speed of one core here: every node hashes each upload once (the
/// receiving node) or twice (a peer hashes the staged file again).
fn sha_reference(data: &[u8]) -> f64 {
    use sha2::{Digest, Sha256};
    let t = Instant::now();
    let h = Sha256::digest(data);
    std::hint::black_box(h);
    data.len() as f64 / MB / t.elapsed().as_secs_f64()
}

/// Write + fsync speed of a file of `data` in `dir` (the disk the nodes use).
fn fsync_reference(dir: &Path, data: &[u8]) -> anyhow::Result<f64> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let t = Instant::now();
    let mut f = std::fs::File::create(&path)?;
    f.write_all(data)?;
    f.sync_all()?;
    let mbs = data.len() as f64 / MB / t.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok(mbs)
}

/// Runs the phases on 3 nodes, then on 1, and prints the summary against
/// the targets.
#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo test --benches` asks for a listing.
    }
    let mib = env_num("BM_BENCH_MIB", 256).max(1) as usize;
    let secs = env_num("BM_BENCH_SECS", 10).max(1);
    let samples = env_num("BM_BENCH_SAMPLES", 200).max(1) as usize;
    let one_node = env_num("BM_BENCH_ONE_NODE", 1) != 0;
    println!(
        "data-plane benchmark: `bm node` processes on loopback (QUIC between them, no relay), fsync on every node;"
    );
    println!("agents, factory and readers are in the bench process, on the same cores; MB = 10^6 bytes");
    println!(
        "reproduce: BM_BENCH_MIB={mib} BM_BENCH_SECS={secs} BM_BENCH_SAMPLES={samples} BM_BENCH_BATCH={} \
         BM_BENCH_ONE_NODE={} cargo bench -p bm --bench data_plane",
        batch_lines(),
        u8::from(one_node)
    );
    println!("machine: {}", machine());

    let data = noise(SIZES_MIB.iter().copied().max().unwrap_or(1) * MIB);
    let probe = tempfile::Builder::new().prefix("bm-bench-probe-").tempdir()?;
    let sha: Vec<f64> = (0..3).map(|_| sha_reference(&data)).collect();
    let fsync: Vec<f64> = (0..3).map(|_| fsync_reference(probe.path(), &data)).collect::<Result<_, _>>()?;
    println!(
        "references, 64 MiB, 3 tries each: sha256 on one core {} MB/s; write + fsync on this disk {} MB/s",
        sha.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(" / "),
        fsync.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(" / ")
    );
    drop(probe);

    let three = run(3, mib, secs, samples, &data).await?;
    let one = if one_node { Some(run(1, mib, secs, samples, &data).await?) } else { None };

    println!();
    println!("=== summary against the issue's targets (3 nodes; 1 node for comparison) ===");
    let plain = |r: &&Transfer| !["again", "file", "at once"].iter().any(|w| r.label.contains(w));
    let fresh = |rows: &[Transfer]| rows.iter().filter(plain).map(Transfer::mbs).collect::<Vec<_>>();
    let join = |v: Vec<f64>| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(" / ");
    let with = |rows: &[Transfer], what: &str| {
        join(rows.iter().filter(|r| r.label.contains(what)).map(Transfer::mbs).collect())
    };
    let again = |rows: &[Transfer]| with(rows, "again");
    let down = |rows: &[Transfer]| join(rows.iter().filter(plain).map(Transfer::mbs).collect());
    let best = fresh(&three.quic).into_iter().fold(0.0, f64::max);
    println!(
        "upload, one agent, QUIC, MB/s at {} MiB: {} | target {GOAL_UPLOAD_MBS:.0} MB/s: {}",
        SIZES_MIB.map(|s| s.to_string()).join(" / "),
        join(fresh(&three.quic)),
        verdict(best >= GOAL_UPLOAD_MBS)
    );
    println!("upload, one agent, HTTP, MB/s:                  {}", join(fresh(&three.http)));
    println!(
        "1 MiB files {} at once (as the agent sends them), QUIC / HTTP: {} / {} MB/s",
        bm_agent::collect::UPLOADS_AT_ONCE,
        with(&three.quic, "at once"),
        with(&three.http, "at once")
    );
    println!(
        "same 16 / 64 MiB files again (no disk writes), QUIC / HTTP: {} / {} MB/s",
        again(&three.quic),
        again(&three.http)
    );
    println!(
        "download of 16 / 64 MiB files as inputs, QUIC: {} MB/s, HTTP: {} MB/s",
        down(&three.quic_down),
        down(&three.http_down)
    );
    println!(
        "the agent's path, 16 / 64 MiB: upload from a file QUIC {} / HTTP {} MB/s; download into a file QUIC {} / HTTP {} MB/s",
        with(&three.quic, "file"),
        with(&three.http, "file"),
        with(&three.quic_down, "file"),
        with(&three.http_down, "file")
    );
    for (spread, i) in &three.ingested {
        let target = if *spread == Spread::Quic {
            format!(" | target {GOAL_LOGS_MBS:.0} MB/s: {}", verdict(i.mbs() >= GOAL_LOGS_MBS))
        } else {
            String::new()
        };
        println!("log ingestion, {LOG_AGENTS} agents, {}: {:.1} MB/s{target}", spread.label(), i.mbs());
    }
    for t in &three.tails {
        println!(
            "live tail {}: p50 {:.1} ms, p99 {:.1} ms | target p99 < {GOAL_TAIL_P99_MS:.0} ms: {}",
            t.what,
            ms(pct(&t.tail.seen, 0.5)),
            ms(pct(&t.tail.seen, 0.99)),
            verdict(!t.tail.seen.is_empty() && ms(pct(&t.tail.seen, 0.99)) < GOAL_TAIL_P99_MS)
        );
    }
    if let Some(one) = one {
        println!(
            "1 node: upload QUIC {} MB/s, HTTP {} MB/s; again QUIC {} MB/s; download QUIC {} MB/s; log ingestion {}; \
             tail p99 {}",
            join(fresh(&one.quic)),
            join(fresh(&one.http)),
            again(&one.quic),
            down(&one.quic_down),
            one.ingested
                .iter()
                .map(|(s, i)| format!("{} {:.1} MB/s", s.label(), i.mbs()))
                .collect::<Vec<_>>()
                .join(", "),
            one.tails.iter().map(|t| format!("{:.1} ms", ms(pct(&t.tail.seen, 0.99)))).collect::<Vec<_>>().join(" / ")
        );
    }
    println!("load average at the end: {}", loadavg());
    Ok(())
}
