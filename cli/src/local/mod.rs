//! `bm local run`: runs a repository's job files on a throw-away local
//! cluster, the way CI would, with live logs, a summary and the outputs
//! copied out.

mod follow;
mod source;
mod submit;

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use bm_api::jobs::{Job, JobState};

use crate::embedded::{Embedded, LOCAL_TARGETS};
use crate::exit;
use crate::LocalRunArgs;

/// Runs the jobs `args` names; the exit code follows `crate::exit`.
pub async fn run(args: LocalRunArgs) -> anyhow::Result<ExitCode> {
    if args.nodes == 0 {
        anyhow::bail!("--nodes must be at least 1");
    }
    let root = args.repo.canonicalize().with_context(|| format!("cannot open repository {}", args.repo.display()))?;
    let set = match bm_github::load_repo(&root) {
        Ok(s) => s,
        Err(errs) => {
            eprintln!("{errs}");
            return Ok(ExitCode::from(exit::REFUSED));
        }
    };
    for w in &set.warnings {
        eprintln!("bm: warning: {w:?}");
    }
    let all: Vec<String> = set.jobs.names().iter().map(|n| n.to_string()).collect();
    let wanted = if args.jobs.is_empty() { &all } else { &args.jobs };
    let jobs = match set.jobs.select(wanted) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("bm: {e}");
            return Ok(ExitCode::from(exit::REFUSED));
        }
    };
    if jobs.is_empty() {
        eprintln!("bm: no jobs in {}", root.join(bm_github::JOBS_DIR).display());
        return Ok(ExitCode::SUCCESS);
    }
    let map: BTreeMap<String, String> = args.target_map.iter().cloned().collect();
    let src = source::Source::prepare(&root).await?;

    let tmp = tempfile::tempdir()?;
    let cluster = Embedded::start(tmp.path(), args.nodes, "127.0.0.1:0".parse()?, 2).await?;
    let result = async {
        let submitted = submit::submit_all(&cluster.admin, &jobs, &src, &map, &LOCAL_TARGETS).await?;
        let finished = follow::follow_all(&cluster.admin, &submitted).await?;
        let out_dir = args.output.clone().unwrap_or_else(|| std::path::PathBuf::from("target/bm-local"));
        let copied = follow::copy_outputs(&cluster.admin, &finished, &out_dir).await?;
        summary(&finished, &copied, &out_dir);
        anyhow::Ok(finished)
    }
    .await;
    cluster.stop().await;
    src.stop().await;
    let finished = result?;
    let failed: Vec<&Job> = finished.iter().filter(|j| j.state != JobState::Completed).collect();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        let names: Vec<&str> = failed.iter().map(|j| j.name.as_str()).collect();
        eprintln!("bm: failed: {}", names.join(", "));
        Ok(ExitCode::from(exit::JOB_FAILED))
    }
}

fn summary(jobs: &[Job], copied: &BTreeMap<String, usize>, out_dir: &std::path::Path) {
    let secs = |a: Option<&chrono::DateTime<chrono::Utc>>, b: Option<&chrono::DateTime<chrono::Utc>>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.1}s", (*b - *a).num_milliseconds() as f64 / 1000.0),
        _ => "-".into(),
    };
    println!();
    println!("{:<24} {:<10} {:>8} {:>8} {:>8}", "JOB", "RESULT", "QUEUED", "RAN", "OUTPUTS");
    for j in jobs {
        let t = &j.times;
        println!(
            "{:<24} {:<10} {:>8} {:>8} {:>8}",
            j.name,
            j.state.as_str(),
            secs(t.get("ready").or(t.get("submit")), t.get("assigned")),
            secs(t.get("start"), t.get("complete")),
            copied.get(&j.id).copied().unwrap_or(0)
        );
        if let Some(f) = &j.failure {
            println!("    {f}");
        }
    }
    println!("outputs in {}", out_dir.display());
}
