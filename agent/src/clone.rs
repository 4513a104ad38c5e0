//! Cloning the repository under test into the working directory, as the
//! build user, with the commit under test checked out.

use std::path::Path;

use bm_api::jobs::Job;
use tokio::process::Command;

use crate::env::{self, tags};
use crate::run::RunAs;

/// Clones `clone.url` at `github.sha` into `dir` (the job's working
/// directory). Does nothing for jobs without a URL or with `skip_clone`.
/// Credentials, if any, come from `$HOME/.netrc`.
pub async fn clone(job: &Job, dir: &Path, home: &Path, run_as: Option<RunAs>) -> Result<Option<String>, String> {
    let Some(url) = job.tags.get(tags::CLONE_URL) else { return Ok(None) };
    if env::skip_clone(job) {
        return Ok(None);
    }
    let git = |args: &[&str]| {
        let mut c = Command::new("git");
        c.args(args).env_clear().env("HOME", home).env("PATH", env::JOB_PATH).env("GIT_TERMINAL_PROMPT", "0");
        if let Some(r) = run_as {
            c.uid(r.uid).gid(r.gid);
        }
        c
    };
    let d = dir.to_str().ok_or("the working directory is not UTF-8")?;
    run(git(&["clone", "--quiet", "--no-checkout", url, d]), &format!("clone {url}")).await?;
    let rev = job.tags.get(tags::SHA).map(String::as_str).unwrap_or("HEAD");
    run(git(&["-C", d, "checkout", "--quiet", "--detach", rev]), &format!("check out {rev}")).await?;
    Ok(Some(format!("cloned {url} at {rev}")))
}

async fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c.output().await.map_err(|e| format!("cannot {what}: git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("cannot {what}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}
