//! Single-node commit benchmark: committed state-machine commands per second
//! and commit latency through the HTTP API, with fsync on, for 1, 16 and 256
//! concurrent API clients.
//!
//! `cargo bench -p bm-node --bench single_node` (set `BM_BENCH_SECS` to change
//! the time per level, default 5; `BM_BENCH_ONLY=256` runs only the submit
//! level with that many clients, for a profiler). The node runs in this process on a
//! temporary directory; clients are lean HTTP/1.1 connections
//! (`bm_api::loadgen`) over loopback, so figures include HTTP, JSON, Raft,
//! fsync and apply, and the clients take as little of the two cores as they
//! can. A first row of `whoami` calls (no commit) shows what HTTP alone
//! costs on the same cores; a last row submits with 256 `bm_api::Client`s
//! (reqwest, failover), the client a user's tools use, for comparison. New work is held so
//! the scheduler adds no commands of its own. Two latencies are printed:
//! what the client saw (HTTP round trip, including waiting for a CPU), and
//! commit latency measured in the node from the moment the write path takes
//! a command to the moment its outcome is ready (batching, Raft append,
//! fsync, apply).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bm_api::jobs::JobSubmit;
use bm_api::loadgen::LoadConn;
use bm_api::targets::TargetCreate;

/// mimalloc: with the system allocator, malloc and free were a quarter of a
/// node's CPU on the commit path (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn job(i: usize) -> JobSubmit {
    JobSubmit::script(&format!("bench-{i}"), "default", "true")
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo test --benches` asks for a listing.
    }
    let secs: u64 = std::env::var("BM_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let tmp = tempfile::tempdir()?;
    let cfg = bm_node::NodeConfig::in_dir(tmp.path(), "127.0.0.1:0".parse()?);
    let running = bm_node::start(cfg).await?;
    let token = std::fs::read_to_string(tmp.path().join("admin-token"))?.trim().to_string();
    let admin = bm_api::Client::new(vec![running.url()], Some(token.clone()));
    admin.target_create(&TargetCreate::named("default")).await?;
    admin.control_hold(true).await?;
    println!("single-node commit benchmark: {secs} s per level, fsync on, {} cores", num_cpus());
    println!(
        "{:>14} {:>8} {:>12} {:>10} {:>10} {:>10} {:>14} {:>14}",
        "op", "clients", "ops/s", "p50 ms", "p99 ms", "ops", "commit p50 ms", "commit p99 ms"
    );
    let levels = match std::env::var("BM_BENCH_ONLY").ok().and_then(|s| s.parse().ok()) {
        Some(n) => vec![("submit", n)],
        None => vec![("whoami", 16usize), ("submit", 1), ("submit", 16), ("submit", 256), ("submit/bm_api", 256)],
    };
    for (op, clients) in levels {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (admin, stop) = (admin.clone(), stop.clone());
            let mut conn = match op {
                "submit" => Some(LoadConn::connect(&running.url(), &token).await?),
                _ => None,
            };
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = c * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match op {
                        "submit" => {
                            let conn = conn.as_mut().expect("connected for submits");
                            conn.submit(&job(i)).await.expect("submit");
                        }
                        "submit/bm_api" => {
                            admin.job_submit(&job(i)).await.expect("submit");
                        }
                        _ => {
                            admin.whoami().await.expect("whoami");
                        }
                    }
                    lat.push(t.elapsed());
                    i += 1;
                }
                lat
            }));
        }
        let before = running.node.commit_latencies().reading(1);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await?);
        }
        let elapsed = start.elapsed().as_secs_f64();
        lat.sort();
        // Commit latencies from the node's histogram: each quantile is the
        // top of its bucket, at most 3.1% above the true value.
        let commit = running.node.commit_latencies().reading(1).since(&before);
        let commit_ms = |q| commit.quantile_ms(q).unwrap_or(0.0);
        println!(
            "{:>14} {:>8} {:>12.0} {:>10.2} {:>10.2} {:>10} {:>14.2} {:>14.2}",
            op,
            clients,
            lat.len() as f64 / elapsed,
            pct(&lat, 0.50).as_secs_f64() * 1e3,
            pct(&lat, 0.99).as_secs_f64() * 1e3,
            lat.len(),
            commit_ms(0.50),
            commit_ms(0.99),
        );
    }
    running.stop().await;
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
