//! `bm job show` and `bm job cancel`: one job in detail, and stopping it.

use anyhow::Result;
use bm_api::jobs::Job;
use bm_api::Client;
use clap::Args;

use crate::outln;
use crate::output::{age, or_dash, print_json};

/// Arguments of `bm job show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Job id
    pub id: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Shows everything the API says about a job.
pub async fn show(client: &Client, args: &ShowArgs) -> Result<()> {
    let job = client.job(&args.id).await?;
    if args.json {
        return print_json(&job);
    }
    print_job(&job)
}

/// The human form of a job, one field a line.
fn print_job(j: &Job) -> Result<()> {
    outln!("id:       {}", j.id);
    outln!("name:     {}", j.name);
    outln!("owner:    {}", j.owner);
    if j.target == j.target_real {
        outln!("target:   {}", j.target);
    } else {
        outln!("target:   {} (runs on {})", j.target, j.target_real);
    }
    outln!("state:    {}", j.state.as_str());
    if let Some(f) = &j.failure {
        outln!("failure:  {f}");
    }
    outln!("worker:   {}", or_dash(j.worker.as_deref()));
    outln!("epoch:    {}", j.epoch);
    outln!("timeout:  {}", j.timeout_secs.map(|s| format!("{s}s")).unwrap_or_else(|| "-".into()));
    if !j.tags.is_empty() {
        outln!("tags:");
        for (k, v) in &j.tags {
            outln!("  {k}={v}");
        }
    }
    if !j.depends.is_empty() {
        outln!("depends:");
        for d in &j.depends {
            let mut when = Vec::new();
            if d.on_completed {
                when.push("on completed");
            }
            if d.on_failed {
                when.push("on failed");
            }
            if d.copy_outputs {
                when.push("copy outputs");
            }
            outln!("  {} = {} ({})", d.name, d.prior_job, when.join(", "));
        }
    }
    if !j.output_rules.is_empty() {
        outln!("output rules:");
        for r in &j.output_rules {
            outln!("  {r}");
        }
    }
    if !j.inputs.is_empty() {
        outln!("inputs:   {}", j.inputs.join(", "));
    }
    outln!("tasks:");
    for (i, t) in j.tasks.iter().enumerate() {
        let lines = t.script.lines().count();
        outln!("  {i}: {} ({lines} lines{})", t.name, if t.env_clear { ", empty env" } else { "" });
        for (k, v) in &t.env {
            outln!("       {k}={v}");
        }
    }
    if !j.times.is_empty() {
        outln!("times:");
        for (k, t) in super::times_in_order(j) {
            outln!("  {k:<10} {} ({} ago)", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), age(t));
        }
    }
    Ok(())
}

/// Cancels a job and prints the state it is in afterwards.
pub async fn cancel(client: &Client, id: &str) -> Result<()> {
    let job = client.job_cancel(id).await?;
    outln!("{} {}", job.id, job.state.as_str());
    Ok(())
}
