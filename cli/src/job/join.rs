//! `bm job join`: waits for jobs to finish without printing their logs,
//! for scripts that only need the outcome.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bm_api::jobs::JobState;
use bm_api::Client;
use clap::Args;

use crate::exit;

/// How often to ask for the jobs' states.
const POLL: Duration = Duration::from_secs(2);

/// How long to keep retrying while no node can serve.
const RETRY_FOR: Duration = Duration::from_secs(120);

/// Arguments of `bm job join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Job ids
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
}

/// Waits until every job is terminal. Exits 1 if any failed, else 3 if any
/// was cancelled, else 0; each job that did not complete is named on
/// standard error.
pub async fn join(client: &Client, args: &JoinArgs) -> Result<ExitCode> {
    let mut done: BTreeMap<&str, JobState> = BTreeMap::new();
    let mut failing_since: Option<Instant> = None;
    while done.len() < args.ids.len() {
        for id in &args.ids {
            if done.contains_key(id.as_str()) {
                continue;
            }
            match client.job(id).await {
                Ok(job) => {
                    failing_since = None;
                    if job.state.is_terminal() {
                        if job.state != JobState::Completed {
                            let reason = job.failure.map(|f| format!(": {f}")).unwrap_or_default();
                            eprintln!("bm: job {id} {}{reason}", job.state.as_str());
                        }
                        done.insert(id, job.state);
                    }
                }
                Err(e) if exit::is_transient(&e) && failing_since.is_none_or(|t| t.elapsed() < RETRY_FOR) => {
                    failing_since.get_or_insert_with(Instant::now);
                    tracing::warn!(job = %id, error = %e, "reading job failed; retrying");
                }
                Err(e) => return Err(e).with_context(|| format!("waiting for job {id}")),
            }
        }
        if done.len() < args.ids.len() {
            tokio::time::sleep(POLL).await;
        }
    }
    let worst = if done.values().any(|s| *s == JobState::Failed) {
        JobState::Failed
    } else if done.values().any(|s| *s == JobState::Cancelled) {
        JobState::Cancelled
    } else {
        JobState::Completed
    };
    Ok(exit::for_state(worst))
}
