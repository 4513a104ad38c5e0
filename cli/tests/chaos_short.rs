//! A short chaos run as a test: three real nodes and the local factory under partitions, kills and pauses,
//! clients submitting and reading jobs, then every invariant the checker knows. The long runs are the
//! `bm-chaos` binary's job; this one keeps the harness and bm honest on every test run.

use std::time::Duration;

use bm_chaos::run::{run, FaultKind, RunConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_run_breaks_no_invariant() {
    let faults = vec![FaultKind::Partition, FaultKind::Kill, FaultKind::Pause];
    let cfg = RunConfig::new(3, Duration::from_secs(60), faults, 20240607, env!("CARGO_BIN_EXE_bm").into());
    let summary = run(cfg).await.expect("the chaos run could not be carried out");
    println!("{summary}");
    assert!(summary.ok(), "invariants violated: {:?}\n{summary}", summary.report.violated());
    assert!(summary.acked_submits() >= 20, "only {} submits acknowledged\n{summary}", summary.acked_submits());
    assert!(summary.faults_injected() >= 3, "only {} faults injected\n{summary}", summary.faults_injected());
}
