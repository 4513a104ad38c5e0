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

/// The checker catches real bugs: nodes that acknowledge a job before it
/// is committed (a deliberate, test-only switch) lose acknowledged jobs
/// when a node is killed or cut off, and the run must say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_nodes_that_acknowledge_before_commit() {
    let faults = vec![FaultKind::Partition, FaultKind::Kill];
    let mut cfg = RunConfig::new(3, Duration::from_secs(40), faults, 7, env!("CARGO_BIN_EXE_bm").into());
    cfg.bug_ack_before_commit = true;
    cfg.settle = Duration::from_secs(30);
    let summary = run(cfg).await.expect("the chaos run could not be carried out");
    println!("{summary}");
    assert!(!summary.ok(), "the checker missed the bug\n{summary}");
    let violated = summary.report.violated();
    // Which symptom shows depends on when the faults strike: an acknowledged
    // job lost, or reads that see an acknowledged job missing (or both).
    assert!(
        violated.iter().any(|v| ["lost_jobs", "linearizable_job_state"].contains(v)),
        "violated: {violated:?}\n{summary}"
    );
}
