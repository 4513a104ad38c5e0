//! A whole chaos run against real processes: start a cluster and a factory, inject a seeded schedule of faults
//! while clients submit and read jobs, heal, read everything back from every node, and check the history against
//! bm's invariants. The `bm-chaos` binary and the short chaos test both call [`run`].

mod cluster;
mod duration;
mod facts;
mod faults;
mod final_reads;
mod outcome;
pub mod schedule;
mod script;
mod settle;
mod summary;
mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

pub use duration::parse_duration;
pub use facts::FactCounts;
pub use faults::AgentHit;
pub use schedule::{FaultKind, FaultKinds, Planned};
pub use summary::{RunSummary, Tally};

use crate::check::{check_all, CheckConfig};
use crate::history::Recorder;
use cluster::ProcCluster;

/// What to run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Nodes in the cluster (3 or 5 make sense).
    pub nodes: u64,
    /// How long the workload and the faults go on.
    pub duration: Duration,
    /// The kinds of fault to inject.
    pub faults: Vec<FaultKind>,
    /// Seed of the schedule and the clients' choices.
    pub seed: u64,
    /// The `bm` binary to run nodes and the factory with.
    pub bm: PathBuf,
    /// Writer tasks submitting jobs.
    pub clients: usize,
    /// Reader tasks reading job state.
    pub readers: usize,
    /// Most sandboxes the factory runs at once. Four, and two more when agent faults are injected: a worker
    /// whose agent was killed keeps its sandbox until the worker lease runs out, and the workload should still
    /// have about four live workers.
    pub max_workers: usize,
    /// The nodes' worker lease: how long an agent may stay silent before its job fails and its worker is
    /// destroyed. Shorter than bm's default so that a lost agent's job ends within the run, longer than the
    /// agent's longest wait between calls (a 30 s instruction long-poll) so that a live agent is never lost.
    pub worker_lease: Duration,
    /// How long, after the heal, jobs may take to end (and the run waits for them).
    pub settle: Duration,
    /// Keep the run folder even when nothing was violated.
    pub keep: bool,
    /// Runs the nodes with the deliberate bug `test_only.ack_before_commit`,
    /// to show the checker catches lost acknowledged jobs.
    pub bug_ack_before_commit: bool,
}

impl RunConfig {
    /// A run with the usual clients and bounds.
    pub fn new(nodes: u64, duration: Duration, faults: Vec<FaultKind>, seed: u64, bm: PathBuf) -> Self {
        let max_workers = if faults.contains(&FaultKind::Agent) { 6 } else { 4 };
        Self {
            nodes,
            duration,
            faults,
            seed,
            bm,
            clients: 4,
            readers: 4,
            max_workers,
            worker_lease: Duration::from_secs(45),
            settle: Duration::from_secs(150),
            keep: false,
            bug_ack_before_commit: false,
        }
    }
}

/// Runs it all and returns the figures and the verdicts. An error means the run could not be carried out (no
/// binary, no leader at the start); a broken invariant is not an error but a summary that is not
/// [`RunSummary::ok`].
pub async fn run(cfg: RunConfig) -> anyhow::Result<RunSummary> {
    anyhow::ensure!(cfg.nodes >= 1, "a cluster needs at least one node");
    anyhow::ensure!(cfg.bm.is_file(), "no bm binary at {} (run `cargo build -p bm`)", cfg.bm.display());
    let mut dir = tempfile::Builder::new().prefix("bm-chaos-").tempdir().context("cannot make the run folder")?;
    let schedule = schedule::plan(cfg.seed, cfg.nodes, cfg.duration, &cfg.faults);
    println!(
        "bm-chaos: seed {}, {} nodes, {:?}, run folder {}",
        cfg.seed,
        cfg.nodes,
        cfg.duration,
        dir.path().display()
    );
    println!("schedule ({} faults):", schedule.len());
    for p in &schedule {
        println!("  {p}");
    }
    let result = run_in(&cfg, dir.path().to_path_buf(), schedule).await;
    let keep = cfg.keep || result.as_ref().map_or(true, |s| !s.ok());
    if keep {
        dir.disable_cleanup(true);
    }
    let path = dir.path().to_path_buf();
    match result {
        Ok(mut s) => {
            s.kept = keep.then_some(path);
            Ok(s)
        }
        Err(e) => Err(e.context(format!("run folder kept: {}", path.display()))),
    }
}

async fn run_in(cfg: &RunConfig, dir: PathBuf, schedule: Vec<Planned>) -> anyhow::Result<RunSummary> {
    let cluster = Arc::new(
        ProcCluster::start(&dir, &cfg.bm, cfg.nodes, cfg.seed, cfg.worker_lease, cfg.bug_ack_before_commit).await?,
    );
    cluster.start_factory(cfg.max_workers).await?;
    tracing::info!("cluster of {} nodes and the factory are up", cfg.nodes);
    let rec = Recorder::new();
    let known = Arc::new(workload::Known::default());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let w = workload::Workload {
        writers: cfg.clients,
        readers: cfg.readers,
        max_unfinished: 2 * cfg.max_workers.max(1),
        seed: cfg.seed,
    };
    let start = tokio::time::Instant::now();
    let load = tokio::spawn(workload::run(cluster.clone(), rec.clone(), known.clone(), w, stop_rx));
    let injected = faults::inject(cluster.clone(), rec.clone(), schedule.clone(), start).await;
    tokio::time::sleep_until(start + cfg.duration).await;
    let _ = stop.send(true);
    load.await??;

    // Heal everything; from here on the cluster owes us recovery.
    cluster.net.heal();
    cluster.net.clear_link_qualities();
    cluster.revive_all()?;
    let mut healed_at = rec.now();
    cluster.wait_leader(Duration::from_secs(60)).await?;
    // A node still out of the cluster (its fault could not be undone in time) is added back first; the cluster
    // is healed once it is a voter again.
    if faults::membership::restore_all(&cluster, faults::membership::RESTORE_WITHIN).await? {
        healed_at = rec.now();
    }
    tracing::info!("healed; waiting up to {:?} for every job to end", cfg.settle);
    let acked = known.acked();
    let acked_ids: Vec<String> = acked.iter().map(|(id, _)| id.clone()).collect();
    let unfinished = settle::jobs_ended(&cluster, &acked_ids, cfg.settle).await;
    let undestroyed: Vec<String> =
        settle::workers_destroyed(&cluster, Duration::from_secs(60)).await.into_iter().map(|w| w.id).collect();
    cluster.wait_caught_up(Duration::from_secs(60)).await?;

    tracing::info!("final reads from every node");
    let ids: BTreeSet<String> = acked_ids.iter().cloned().collect();
    final_reads::read_everything(cluster.clone(), rec.clone(), ids).await?;
    let jobs = settle::all_jobs(&cluster).await?;
    let workers = settle::all_workers(&cluster).await?;
    let names: BTreeMap<String, String> = acked.into_iter().collect();
    let facts = facts::record(&rec, &cluster.admin(), &jobs, &names, &workers).await;
    cluster.stop_factory().await;

    let history = rec.history();
    std::fs::write(dir.join("history.jsonl"), history.to_jsonl()).context("cannot save the history")?;
    let check = CheckConfig { healed_at: Some(healed_at), terminal_within: cfg.settle, ..CheckConfig::default() };
    let report = check_all(&history, &check);
    Ok(RunSummary {
        schedule,
        ops: summary::tally(&history),
        faults: injected.by_kind.into_iter().map(|(k, n)| (k.name().to_string(), n)).collect(),
        agent_hits: summary::hits(&injected.agent_hits, &jobs),
        other_ends: summary::other_ends(&injected.agent_hits, &jobs),
        facts,
        unfinished,
        undestroyed,
        report,
        kept: None,
    })
}
