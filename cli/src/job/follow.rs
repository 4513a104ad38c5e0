//! Following a job's event stream (`bm job tail`, `bm job run --wait`):
//! long-polls the events, prints each one, and ends when the job does.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bm_api::jobs::{JobEvent, JobState};
use bm_api::Client;
use clap::Args;

use crate::exit;
use crate::outln;

/// How long one long-poll may wait on the server for new events.
const LONG_POLL_SECS: u64 = 30;

/// How long to keep retrying while no node can serve (an election, a
/// restart) before giving up on following.
const RETRY_FOR: Duration = Duration::from_secs(120);

/// Arguments of `bm job tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Job id
    pub id: String,
    /// Print each event as one line of JSON
    #[arg(long)]
    pub json: bool,
}

/// How events are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Log lines as they are, other events as `|X| message`.
    Text,
    /// One JSON object per line.
    Json,
}

/// Follows a job until it ends and exits by its end state.
pub async fn tail(client: &Client, args: &TailArgs) -> Result<ExitCode> {
    let format = if args.json { Format::Json } else { Format::Text };
    let state = follow(client, &args.id, format).await?;
    finish(client, &args.id, state).await
}

/// Prints the job's events from the start until it is in a terminal state
/// and every event has been read; returns that state.
pub async fn follow(client: &Client, id: &str, format: Format) -> Result<JobState> {
    let mut minseq = 0;
    let mut terminal = false;
    let mut failing_since: Option<Instant> = None;
    loop {
        // Once the job has ended, drain what is left without waiting.
        let wait = if terminal { None } else { Some(LONG_POLL_SECS) };
        let page = match client.job_events(id, minseq, wait).await {
            Ok(page) => {
                failing_since = None;
                page
            }
            Err(e) if exit::is_transient(&e) && failing_since.is_none_or(|t| t.elapsed() < RETRY_FOR) => {
                failing_since.get_or_insert_with(Instant::now);
                tracing::warn!(job = id, error = %e, "reading events failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("following job {id}")),
        };
        let mut fresh = 0;
        for e in &page.events {
            if e.seq < minseq {
                // Already printed: a retry after failover may repeat events.
                continue;
            }
            print_event(e, format)?;
            minseq = e.seq + 1;
            fresh += 1;
        }
        if page.job_state.is_terminal() && fresh == 0 {
            return Ok(page.job_state);
        }
        terminal = page.job_state.is_terminal();
    }
}

/// Reports how a followed job ended (on standard error when it did not
/// complete, with the server's reason) and picks the exit code.
pub async fn finish(client: &Client, id: &str, state: JobState) -> Result<ExitCode> {
    if state != JobState::Completed {
        let reason = match client.job(id).await {
            Ok(job) => job.failure.map(|f| format!(": {f}")).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(job = id, error = %e, "could not read why the job ended");
                String::new()
            }
        };
        eprintln!("bm: job {id} {}{reason}", state.as_str());
    }
    Ok(exit::for_state(state))
}

/// Prints one event: task output to the matching stream, everything else
/// to standard output behind a `|X|` marker so it stands out from the log.
pub fn print_event(e: &JobEvent, format: Format) -> Result<()> {
    if format == Format::Json {
        outln!("{}", serde_json::to_string(e)?);
        return Ok(());
    }
    let payload = e.payload.trim_end_matches('\n');
    match e.stream.as_str() {
        "stdout" => outln!("{payload}"),
        "stderr" => {
            // A closed standard error is no reason to stop following.
            let _ = writeln!(std::io::stderr().lock(), "{payload}");
        }
        other => outln!("|{}| {payload}", marker(other)),
    }
    Ok(())
}

/// The short marker for a non-log stream, as buildomat prints them.
fn marker(stream: &str) -> &str {
    match stream {
        "control" => "=",
        "task" => "T",
        "worker" => "W",
        "console" => "C",
        "panic" => "!",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        assert_eq!(marker("control"), "=");
        assert_eq!(marker("task"), "T");
        assert_eq!(marker("bg.1.stdout"), "bg.1.stdout");
    }
}
