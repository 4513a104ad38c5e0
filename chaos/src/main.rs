//! `bm-chaos`: runs a bm cluster under a seeded schedule of faults with clients submitting and reading jobs, then
//! checks what they saw against bm's invariants. Exits 0 when every invariant held, 1 on a violation, 2 when the
//! run could not be set up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bm_chaos::run::{parse_duration, run, FaultKinds, RunConfig};
use clap::Parser;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(name = "bm-chaos", about = "Run a bm cluster under injected faults and check its invariants")]
struct Args {
    /// Nodes in the cluster
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// How long the workload and faults run (e.g. 120s, 2m, 10m)
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    time: Duration,
    /// Faults to inject, comma-separated: partition, kill, pause, membership, agent, quality, or all
    #[arg(long, default_value = "partition,kill,pause")]
    faults: FaultKinds,
    /// Seed of the schedule and the clients [default: from the clock]
    #[arg(long)]
    seed: Option<u64>,
    /// The bm binary [default: the `bm` next to this program]
    #[arg(long)]
    bm: Option<PathBuf>,
    /// Writer clients
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Reader clients
    #[arg(long, default_value_t = 4)]
    readers: usize,
    /// Keep the run folder (history, node logs) even when all is well
    #[arg(long)]
    keep: bool,
    /// Run the nodes with a deliberate bug (acknowledge job submissions
    /// before they commit) to see the checker catch it; a test-only switch.
    #[arg(long)]
    bug_ack_before_commit: bool,
}

/// The `bm` binary: `--bm`, else the one beside this program.
fn find_bm(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        anyhow::ensure!(p.is_file(), "--bm {}: no such file", p.display());
        return Ok(p);
    }
    let me = std::env::current_exe().context("cannot tell where bm-chaos is")?;
    let beside = me.with_file_name("bm");
    anyhow::ensure!(
        beside.is_file(),
        "no bm binary next to {} (run `cargo build -p bm`, or pass --bm PATH)",
        me.display()
    );
    Ok(beside)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,reqwest=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let bm = match find_bm(args.bm) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bm-chaos: {e:#}");
            return ExitCode::from(2);
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    });
    let mut cfg = RunConfig::new(args.nodes, args.time, args.faults.0, seed, bm);
    cfg.clients = args.clients;
    cfg.readers = args.readers;
    cfg.keep = args.keep;
    cfg.bug_ack_before_commit = args.bug_ack_before_commit;
    match run(cfg).await {
        Ok(summary) => {
            println!("{summary}");
            if summary.ok() {
                println!("bm-chaos: seed {seed}: every invariant held");
                ExitCode::SUCCESS
            } else {
                println!("bm-chaos: seed {seed}: VIOLATED {:?}", summary.report.violated());
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("bm-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}
