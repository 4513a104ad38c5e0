//! Local-factory figures: sandbox create+destroy time, and
//! submit-to-first-log-line latency on a ready embedded cluster (one node,
//! the local factory; every job gets a fresh sandbox, created on demand).
//!
//! `cargo bench -p bm --bench local_latency` (`BM_BENCH_JOBS`, default 20).
//! The agent put in each sandbox is the `bm` binary built next to this
//! bench, so build it first: `cargo build --release -p bm`.

/// mimalloc: with the system allocator, malloc and free were a quarter of a
/// node's CPU on the commit path (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use anyhow::Context;

use bm_api::jobs::JobSubmit;
use bm_api::workers::WorkerState;
use bm_factory_local::factory::LocalFactoryConfig;
use bm_factory_local::sandbox::{Sandbox, SandboxSpec};

/// The steps from a submit to the job's start, by the times the cluster
/// recorded (the rest, start to the line seen, is the task and the log).
const PHASES: [&str; 5] = [
    "submit -> worker requested (scheduler)",
    "requested -> leased (factory)",
    "leased -> agent bootstrapped (sandbox, agent)",
    "bootstrapped -> job assigned (scheduler)",
    "assigned -> job started (agent)",
];

/// The `p` quantile of sorted durations, in ms.
fn pct(v: &[Duration], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

fn bm_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    exe.parent().and_then(|d| d.parent()).expect("target dir").join("bm")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let n: usize = std::env::var("BM_BENCH_JOBS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let agent = bm_binary();
    anyhow::ensure!(agent.exists(), "build the agent first: cargo build --release -p bm ({} missing)", agent.display());
    let base = std::env::temp_dir().join(format!("bm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base)?;

    // Sandbox create + spawn(true) + destroy.
    let mut cycle = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        let sb = Sandbox::create(SandboxSpec {
            dir: base.join(format!("s{i}")),
            hostname: "bench".into(),
            agent_bin: agent.clone(),
            init_bin: agent.clone(),
        })?;
        let mut child = sb.spawn(&["/bin/true".to_string()], &[])?;
        child.wait().await?;
        sb.destroy()?;
        cycle.push(t.elapsed());
    }
    cycle.sort();

    let (lat, phases) = first_lines(&agent, &base, n, false).await?;
    let (warm, _) = first_lines(&agent, &base, n, true).await?;
    let _ = std::fs::remove_dir_all(&base);

    println!(
        "local factory, {n} runs each, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!("{:<44} {:>8} {:>8}", "", "p50 ms", "p99 ms");
    println!("{:<44} {:>8.1} {:>8.1}", "sandbox create + spawn(true) + destroy", pct(&cycle, 0.5), pct(&cycle, 0.99));
    println!("{:<44} {:>8.1} {:>8.1}", "submit to first log line (fresh sandbox)", pct(&lat, 0.5), pct(&lat, 0.99));
    println!("{:<44} {:>8.1} {:>8.1}", "submit to first log line (spare worker)", pct(&warm, 0.5), pct(&warm, 0.99));
    for (name, p) in PHASES.iter().zip(&phases) {
        if !p.is_empty() {
            println!("{:<44} {:>8.1} {:>8.1}", format!("  {name}"), pct(p, 0.5), pct(p, 0.99));
        }
    }
    Ok(())
}

/// Submit-to-first-stdout-line latencies of `n` jobs (one after another)
/// on a fresh one-node cluster with the local factory, and the phases of
/// each; with `spare`, the scheduler keeps one idle worker ready.
async fn first_lines(
    agent: &std::path::Path,
    base: &std::path::Path,
    n: usize,
    spare: bool,
) -> anyhow::Result<(Vec<Duration>, Vec<Vec<Duration>>)> {
    let agent = agent.to_path_buf();
    let tmp = tempfile::tempdir()?;
    let mut cfg = bm_node::NodeConfig::in_dir(tmp.path(), "127.0.0.1:0".parse()?);
    if spare {
        cfg.spare_workers.insert("default".into(), 1);
    }
    let node = bm_node::start(cfg).await?;
    let token = std::fs::read_to_string(tmp.path().join("admin-token"))?.trim().to_string();
    let admin = bm_api::Client::new(vec![node.url()], Some(token));
    admin.target_create(&bm_api::targets::TargetCreate::named("default")).await?;
    let f = admin.factory_create(&bm_api::factories::FactoryCreate { name: "bench".into() }).await?;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let factory = tokio::spawn(bm_factory_local::factory::run(
        LocalFactoryConfig {
            factory: bm_factory_local::factory::LoopConfig {
                urls: vec![node.url()],
                token: f.token,
                targets: vec!["default".into()],
                max_workers: 2,
            },
            dir: base.join(if spare { "factory-spare" } else { "factory" }),
            agent_bin: agent.clone(),
        },
        rx,
    ));
    let mut lat = Vec::new();
    let mut phases: Vec<Vec<Duration>> = vec![Vec::new(); PHASES.len()];
    for i in 0..n {
        if spare {
            // Measure a job that finds its spare ready, as on a quiet cluster.
            while !admin.workers(false).await?.iter().any(|w| w.state == WorkerState::Ready && w.job.is_none()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let job = JobSubmit::script(&format!("lat-{i}"), "default", "echo first");
        let t = Instant::now();
        let j = admin.job_submit(&job).await?;
        let mut next = 0;
        'wait: loop {
            let page = admin.job_events(&j.id, next, Some(30)).await?;
            for e in &page.events {
                next = e.seq + 1;
                if e.stream == "stdout" {
                    lat.push(t.elapsed());
                    break 'wait;
                }
            }
            anyhow::ensure!(!page.job_state.is_terminal(), "job {} ended without output", j.id);
        }
        // Let the job finish so the next one starts from a quiet cluster.
        while !admin.job(&j.id).await?.state.is_terminal() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let job = admin.job(&j.id).await?;
        let workers = admin.workers(true).await?;
        let w = workers.iter().find(|w| Some(&w.id) == job.worker.as_ref()).context("the job's worker")?;
        let at = |m: &std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>>, k: &str| m.get(k).copied();
        let marks = [
            at(&job.times, "submit"),
            at(&w.times, "requested"),
            at(&w.times, "bootstrapping"),
            at(&w.times, "ready"),
            at(&job.times, "assigned"),
            at(&job.times, "start"),
        ];
        for (k, pair) in marks.windows(2).enumerate() {
            if let [Some(a), Some(b)] = pair {
                phases[k].push((*b - *a).to_std().unwrap_or_default());
            }
        }
    }
    for p in &mut phases {
        p.sort();
    }
    lat.sort();
    let _ = stop.send(true);
    let _ = factory.await;
    node.stop().await;
    Ok((lat, phases))
}
