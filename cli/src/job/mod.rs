//! `bm job …`: submit jobs, follow them, and fetch what they leave behind.

mod copy;
mod follow;
mod join;
mod list;
mod outputs;
mod run;
mod show;
mod store;
mod timings;

use std::process::ExitCode;

use anyhow::Result;
use bm_api::jobs::Job;
use bm_api::Client;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

/// Subcommands of `bm job`.
#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// Submit a bash program as a job; prints the job id
    Run(run::RunArgs),
    /// List jobs, newest first
    #[command(alias = "ls")]
    List(list::ListArgs),
    /// Show one job
    #[command(alias = "dump")]
    Show(show::ShowArgs),
    /// Follow a job's log until it finishes; exits by its end state
    Tail(follow::TailArgs),
    /// Cancel a job
    Cancel(JobId),
    /// Wait until jobs finish, without their logs; exits by their end states
    Join(join::JoinArgs),
    /// List a job's output files
    Outputs(outputs::OutputsArgs),
    /// Download one output file
    Copy(copy::CopyArgs),
    /// Read and write a job's store
    #[command(subcommand)]
    Store(store::StoreCmd),
    /// Show how long a job queued, waited and ran
    Timings(timings::TimingsArgs),
}

/// A command that takes just a job id.
#[derive(Debug, Args)]
pub struct JobId {
    /// Job id
    pub id: String,
}

/// Runs one `bm job` subcommand.
pub async fn run(client: &Client, cmd: JobCmd) -> Result<ExitCode> {
    let done = |r: Result<()>| r.map(|()| ExitCode::SUCCESS);
    match cmd {
        JobCmd::Run(a) => run::run(client, a).await,
        JobCmd::List(a) => done(list::list(client, &a).await),
        JobCmd::Show(a) => done(show::show(client, &a).await),
        JobCmd::Tail(a) => follow::tail(client, &a).await,
        JobCmd::Cancel(a) => done(show::cancel(client, &a.id).await),
        JobCmd::Join(a) => join::join(client, &a).await,
        JobCmd::Outputs(a) => done(outputs::outputs(client, &a).await),
        JobCmd::Copy(a) => done(copy::copy(client, &a).await),
        JobCmd::Store(cmd) => done(store::run(client, cmd).await),
        JobCmd::Timings(a) => done(timings::timings(client, &a).await),
    }
}

/// The job's recorded times in the order they happened; equal times keep
/// the life-cycle order (`submit` before `ready`), not the alphabet's.
pub fn times_in_order(job: &Job) -> Vec<(&str, DateTime<Utc>)> {
    const ORDER: [&str; 5] = ["submit", "waiting", "ready", "assigned", "start"];
    let rank = |k: &str| ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len());
    let mut times: Vec<_> = job.times.iter().map(|(k, t)| (k.as_str(), *t)).collect();
    times.sort_by_key(|(k, t)| (*t, rank(k)));
    times
}
