//! `bm job list`: the jobs a user can see, filtered on the server.

use anyhow::Result;
use bm_api::jobs::{Job, JobListQuery, JobState};
use bm_api::Client;
use clap::Args;

use crate::output::{age, print_json, Table};
use crate::parse;

/// Arguments of `bm job list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only jobs in this state (queued, waiting, assigned, running, completed, failed, cancelled)
    #[arg(short = 'F', long, value_name = "STATE")]
    pub state: Option<JobState>,
    /// Only jobs of this owner (user id or name)
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// Only jobs with this tag
    #[arg(short = 'T', long, value_name = "KEY=VALUE", value_parser = parse::tag_filter)]
    pub tag: Option<String>,
    /// Only jobs for this target
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,
    /// At most this many
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Lists jobs as a table (ID, STATE, TARGET, NAME, AGE) or JSON.
pub async fn list(client: &Client, args: &ListArgs) -> Result<()> {
    let q = JobListQuery {
        state: args.state,
        owner: args.owner.clone(),
        tag: args.tag.clone(),
        target: args.target.clone(),
        limit: args.limit,
    };
    let jobs = client.jobs(&q).await?;
    if args.json {
        return print_json(&jobs);
    }
    let mut t = Table::new(&["ID", "STATE", "TARGET", "NAME", "AGE"]);
    for j in &jobs {
        t.row(vec![j.id.clone(), j.state.as_str().into(), j.target.clone(), j.name.clone(), job_age(j)]);
    }
    t.print()
}

/// How long ago the job was submitted (or, failing that, first seen).
pub fn job_age(j: &Job) -> String {
    j.times.get("submit").or_else(|| j.times.values().min()).map(|t| age(*t)).unwrap_or_else(|| "-".into())
}
