//! The agent's memory while it moves a large file: one in-process node, a
//! real `bm-agent` process per job (as in the agent's tests: `--root` on a
//! temporary directory, the HTTP agent API), and three jobs: one writes an
//! N MiB output, one receives it as an input, and one writes an N MiB
//! output under a `%` rule (streamed since session 14; read whole before).
//! For each, the agent's peak resident memory (`VmHWM` in
//! `/proc/PID/status`, read every 10 ms while the job runs) and the time
//! from submit to the job's end.
//!
//! `cargo bench -p bm-agent --bench memory` (`BM_BENCH_MIB`, default 256;
//! `BM_AGENT_BIN` measures another agent binary, e.g. an older build).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bm_api::jobs::{JobState, JobSubmit};
use common::{after, fixture, job, start_agent_from, wait_terminal_within, Fixture};

/// The worker's `/tmp`, as the agent's tests reach it from the work dir.
const TMP: &str = "T=\"$PWD/../../../tmp\"; mkdir -p \"$T\"";

/// The highest `VmHWM` seen for `pid`, in KiB, polled until `done` is set.
async fn peak_kib(pid: u32, done: Arc<AtomicBool>) -> u64 {
    let mut peak = 0;
    while !done.load(Ordering::Relaxed) {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let hwm = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    peak
}

/// Runs `submit`'s job with a fresh agent from `bin`, prints its row, and
/// returns the job's id.
async fn measure(fx: &Fixture, bin: &Path, label: &str, mib: u64, submit: JobSubmit) -> String {
    let started = Instant::now();
    let j = fx.admin.job_submit(&submit).await.unwrap();
    let agent = start_agent_from(fx, bin).await;
    let done = Arc::new(AtomicBool::new(false));
    let peak = tokio::spawn(peak_kib(agent.0.id(), done.clone()));
    let end = wait_terminal_within(&fx.admin, &j.id, Duration::from_secs(600)).await;
    done.store(true, Ordering::Relaxed);
    let peak_mib = peak.await.unwrap() as f64 / 1024.0;
    assert_eq!(end.state, JobState::Completed, "{label}: {:?}", end.failure);
    let secs = started.elapsed().as_secs_f64();
    println!("{label:>34} {mib:>8} {peak_mib:>16.1} {secs:>8.2}");
    j.id
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mib: u64 = std::env::var("BM_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let bin = std::env::var_os("BM_AGENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_bm-agent")));
    println!("agent memory, one node, HTTP agent API, agent {}", bin.display());
    println!("reproduce: BM_BENCH_MIB={mib} cargo bench -p bm-agent --bench memory");
    println!("{:>34} {:>8} {:>16} {:>8}", "job", "MiB", "agent peak MiB", "s");
    let fx = fixture().await;
    let bytes = mib << 20;
    let write = |name: &str| format!("{TMP}; head -c {bytes} /dev/urandom > $T/{name}");
    let a = measure(&fx, &bin, "output (streamed)", mib, job(&write("a.bin"), &["=/tmp/a.bin"])).await;
    let _ = std::fs::remove_dir_all(fx.root.join("tmp"));
    measure(&fx, &bin, "input", mib, after(job("true", &[]), "first", &a)).await;
    let _ = std::fs::remove_dir_all(fx.root.join("input"));
    measure(&fx, &bin, "output under %", mib, job(&write("c.bin"), &["=%/tmp/c.bin"])).await;
}
