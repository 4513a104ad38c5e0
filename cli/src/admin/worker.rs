//! `bm admin worker …`: inspecting workers, keeping one for debugging, or
//! throwing one away.

use anyhow::Result;
use bm_api::workers::Worker;
use bm_api::Client;
use clap::Subcommand;

use crate::outln;
use crate::output::{age, or_dash, print_list};

/// Subcommands of `bm admin worker`.
#[derive(Debug, Subcommand)]
pub enum WorkerCmd {
    /// List workers
    #[command(alias = "list")]
    Ls {
        /// Include destroyed workers
        #[arg(short, long)]
        all: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Keep a worker after its job, for inspection
    Hold {
        /// Worker id
        id: String,
    },
    /// Let a held worker be destroyed
    Release {
        /// Worker id
        id: String,
    },
    /// Destroy a worker (its job, if any, fails)
    Recycle {
        /// Worker id
        id: String,
    },
}

/// Runs one `bm admin worker` subcommand.
pub async fn run(client: &Client, cmd: WorkerCmd) -> Result<()> {
    let (id, action) = match cmd {
        WorkerCmd::Ls { all, json } => return list(client, all, json).await,
        WorkerCmd::Hold { id } => (id, "hold"),
        WorkerCmd::Release { id } => (id, "release"),
        WorkerCmd::Recycle { id } => (id, "recycle"),
    };
    let w = client.worker_action(&id, action).await?;
    outln!("{} {}{}", w.id, state(&w), if w.hold { " held" } else { "" });
    Ok(())
}

/// Lists workers as a table or JSON.
async fn list(client: &Client, all: bool, json: bool) -> Result<()> {
    let workers = client.workers(all).await?;
    let header = ["ID", "TARGET", "STATE", "HOLD", "JOB", "FACTORY", "INSTANCE", "AGE"];
    print_list(&workers, json, &header, |w| {
        let created = w.times.values().min().map(|t| age(*t)).unwrap_or_else(|| "-".into());
        vec![
            w.id.clone(),
            w.target.clone(),
            state(w),
            if w.hold { "yes" } else { "no" }.into(),
            or_dash(w.job.as_deref()),
            or_dash(w.factory.as_deref()),
            or_dash(w.instance_id.as_deref()),
            created,
        ]
    })
}

/// The worker's state as in JSON (`ready`, `destroying`, …).
fn state(w: &Worker) -> String {
    serde_json::to_value(w.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}
