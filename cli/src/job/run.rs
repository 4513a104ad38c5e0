//! `bm job run`: submits a bash program as a one-task job.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bm_api::jobs::{DependSubmit, JobSubmit, TaskSpec};
use bm_api::Client;
use clap::{ArgGroup, Args};

use crate::outln;
use crate::parse;

/// Arguments of `bm job run`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("program").required(true).args(["file", "script", "script_file"])))]
pub struct RunArgs {
    /// Target to run on
    #[arg(short, long, default_value = "default")]
    pub target: String,
    /// Job name [default: the file's stem]
    #[arg(short, long)]
    pub name: Option<String>,
    /// Environment variable for the program (repeatable)
    #[arg(short, long = "env", value_name = "KEY=VALUE", value_parser = parse::key_value)]
    pub env: Vec<(String, String)>,
    /// Start from an empty environment instead of the target's default
    #[arg(short = 'E', long)]
    pub empty_env: bool,
    /// Output rule: which files to keep after the job (repeatable)
    #[arg(short = 'O', long = "output-rule", value_name = "RULE")]
    pub output_rules: Vec<String>,
    /// Informational tag (repeatable)
    #[arg(short = 'T', long = "tag", value_name = "KEY=VALUE", value_parser = parse::key_value)]
    pub tags: Vec<(String, String)>,
    /// Run after job JOBID completes, with its outputs in /input/NAME (repeatable)
    #[arg(short, long = "depends", alias = "depend-on", value_name = "NAME=JOBID", value_parser = parse::key_value)]
    pub depends: Vec<(String, String)>,
    /// Fail the job if it runs longer than this
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Queue the job again (up to N times) when its worker is lost, instead of failing it
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry_on_worker_loss: u32,
    /// Make the submit idempotent across runs of this command: a second submit
    /// with the same key answers the job the first made (one is drawn per run
    /// when unset)
    #[arg(long, value_name = "KEY")]
    pub submit_key: Option<String>,
    /// Follow the job's log and exit by its end state
    #[arg(short, long)]
    pub wait: bool,
    /// The program as a string, instead of FILE
    #[arg(short = 'c', long, value_name = "SCRIPT")]
    pub script: Option<String>,
    /// Same as FILE (buildomat's spelling)
    #[arg(short = 'C', long, value_name = "FILE")]
    pub script_file: Option<PathBuf>,
    /// File holding the bash program, or `-` for standard input
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Submits the job, prints its id, and with `--wait` follows it.
pub async fn run(client: &Client, args: RunArgs) -> Result<ExitCode> {
    let (task_name, script) = program(&args)?;
    let name = args.name.clone().unwrap_or_else(|| task_name.clone());
    let submit = JobSubmit {
        name,
        target: args.target,
        tasks: vec![TaskSpec {
            name: task_name,
            script,
            env: args.env.into_iter().collect(),
            env_clear: args.empty_env,
            workdir: None,
        }],
        output_rules: args.output_rules,
        inputs: Vec::new(),
        tags: args.tags.into_iter().collect(),
        depends: args
            .depends
            .into_iter()
            .map(|(name, prior_job)| {
                (name, DependSubmit { prior_job, copy_outputs: true, on_failed: false, on_completed: true })
            })
            .collect(),
        store: BTreeMap::new(),
        timeout_secs: args.timeout,
        publish: Vec::new(),
        retry_on_worker_loss: args.retry_on_worker_loss,
        submit_key: args.submit_key,
    };
    let job = client.job_submit(&submit).await.context("submitting the job")?;
    outln!("{}", job.id);
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let state = super::follow::follow(client, &job.id, super::follow::Format::Text).await?;
    super::follow::finish(client, &job.id, state).await
}

/// The task's name and its program text, from whichever source was given.
fn program(args: &RunArgs) -> Result<(String, String)> {
    if let Some(s) = &args.script {
        return Ok(("default".to_string(), s.clone()));
    }
    let file = args.file.as_ref().or(args.script_file.as_ref()).context("no program given")?;
    if file == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading the program from standard input")?;
        return Ok(("default".to_string(), s));
    }
    let script = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "default".into());
    Ok((stem, script))
}
