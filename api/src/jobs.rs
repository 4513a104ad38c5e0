//! Jobs: what users submit, how they progress, what they leave behind.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One step of a job: a bash program with its environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Shown in the log.
    pub name: String,
    /// The bash program.
    pub script: String,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Start from an empty environment instead of the target's default.
    #[serde(default)]
    pub env_clear: bool,
    /// Working directory; the target's default when absent.
    #[serde(default)]
    pub workdir: Option<String>,
}

/// A dependency on another job submitted earlier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DependSubmit {
    /// The job depended on.
    pub prior_job: String,
    /// Copy its outputs to `/input/NAME/…` in this job.
    #[serde(default = "yes")]
    pub copy_outputs: bool,
    /// Run this job even when the prior one failed.
    #[serde(default)]
    pub on_failed: bool,
    /// Run this job when the prior one completed successfully (the usual case).
    #[serde(default = "yes")]
    pub on_completed: bool,
}

fn yes() -> bool {
    true
}

/// A job as submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSubmit {
    /// For people; need not be unique.
    pub name: String,
    /// Target name.
    pub target: String,
    /// Steps, run in order; the job fails at the first that fails.
    pub tasks: Vec<TaskSpec>,
    /// `output_rules` as the job-file reference defines them.
    #[serde(default)]
    pub output_rules: Vec<String>,
    /// Names of input files the job expects.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Free-form labels (repository, commit, CI system …), filterable in lists.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Other jobs this one waits for, by dependency name.
    #[serde(default)]
    pub depends: BTreeMap<String, DependSubmit>,
    /// Initial job-store values.
    #[serde(default)]
    pub store: BTreeMap<String, StorePut>,
    /// Seconds the job may run before it is failed; none for the server's default.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Outputs to publish at `/public/file/OWNER/REPO/SERIES/VERSION/NAME`
    /// when the job succeeds (OWNER/REPO from the `github.repository` tag,
    /// VERSION from `github.sha`).
    #[serde(default)]
    pub publish: Vec<PublishSpec>,
    /// How many times the job is queued again when its worker is lost (its
    /// agent stops calling in, or the worker is destroyed under it) rather
    /// than failing; 0 (the default) fails it at once with that cause.
    #[serde(default)]
    pub retry_on_worker_loss: u32,
    /// A key the client chooses for this submission, so that it can be
    /// retried: a second submit with the same key from the same owner
    /// answers the job the first one made instead of making another. A
    /// client whose answer was lost (a node died or hung after committing)
    /// retries on another node, and the job still runs once.
    /// [`crate::Client::job_submit`] draws one (a ULID) when it is not set.
    /// 1-128 printable ASCII characters.
    #[serde(default)]
    pub submit_key: Option<String>,
}

/// One output to publish, as the job file's `[[publish]]` table says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishSpec {
    /// Absolute path of the output file.
    pub from_output: String,
    /// Groups files in the URL space.
    pub series: String,
    /// The public file name, unique in the series for the commit.
    pub name: String,
}

/// A published file as the public URL serves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishedFile {
    /// The job that produced it.
    pub job: String,
    /// Its output's sha256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

impl JobSubmit {
    /// A job of one bash task and nothing else: what `bm job run` and most
    /// tests submit.
    pub fn script(name: &str, target: &str, script: &str) -> Self {
        JobSubmit {
            name: name.into(),
            target: target.into(),
            tasks: vec![TaskSpec {
                name: "main".into(),
                script: script.into(),
                env: BTreeMap::new(),
                env_clear: false,
                workdir: None,
            }],
            output_rules: vec![],
            inputs: vec![],
            tags: BTreeMap::new(),
            depends: BTreeMap::new(),
            store: BTreeMap::new(),
            timeout_secs: None,
            publish: vec![],
            retry_on_worker_loss: 0,
            submit_key: None,
        }
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Waiting for jobs it depends on.
    Waiting,
    /// Given to a worker that has not started it yet.
    Assigned,
    /// Running.
    Running,
    /// Finished; every task exited 0 and every must-match rule matched.
    Completed,
    /// Finished otherwise (see `failure`).
    Failed,
    /// Cancelled by a user before it finished.
    Cancelled,
}

impl JobState {
    /// Whether the job will never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed | JobState::Cancelled)
    }

    /// Lower-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Waiting => "waiting",
            JobState::Assigned => "assigned",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "queued" => JobState::Queued,
            "waiting" => JobState::Waiting,
            "assigned" => JobState::Assigned,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            other => return Err(format!("unknown job state {other:?}")),
        })
    }
}

/// A dependency as the job shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Depend {
    /// Dependency name (the `/input/NAME` folder).
    pub name: String,
    /// The job depended on.
    pub prior_job: String,
    /// Whether its outputs are copied in.
    pub copy_outputs: bool,
    /// Run even when it failed.
    pub on_failed: bool,
    /// Run when it completed.
    pub on_completed: bool,
}

/// A job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// Unique id (ULID).
    pub id: String,
    /// Submitting user's id.
    pub owner: String,
    /// Name.
    pub name: String,
    /// Target asked for.
    pub target: String,
    /// Target it runs on, after redirects.
    pub target_real: String,
    /// Current state.
    pub state: JobState,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// Steps.
    pub tasks: Vec<TaskSpec>,
    /// Output rules.
    pub output_rules: Vec<String>,
    /// Expected inputs.
    pub inputs: Vec<String>,
    /// Labels.
    pub tags: BTreeMap<String, String>,
    /// Dependencies.
    pub depends: Vec<Depend>,
    /// The worker running it, once assigned.
    pub worker: Option<String>,
    /// Fencing epoch of the current assignment (0 before any).
    pub epoch: u64,
    /// Timeout in seconds, if any.
    pub timeout_secs: Option<u64>,
    /// When it entered each state (`submit`, `waiting`, `ready`, `assigned`, `start`, `complete`, …).
    pub times: BTreeMap<String, DateTime<Utc>>,
    /// What it publishes when it succeeds.
    #[serde(default)]
    pub publish: Vec<PublishSpec>,
    /// Requeues left when its worker is lost (see [`JobSubmit::retry_on_worker_loss`]).
    #[serde(default)]
    pub retry_on_worker_loss: u32,
}

/// One entry of a job's event stream: control messages and log output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    /// Position in the stream, from 0, without gaps.
    pub seq: u64,
    /// `control`, `stdout`, `stderr`, `task`, `worker`, …
    pub stream: String,
    /// Task index, for task output.
    pub task: Option<u32>,
    /// When it happened (proposer's clock).
    pub time: DateTime<Utc>,
    /// The line or message.
    pub payload: String,
}

/// Query for a job's events.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// First sequence number wanted.
    #[serde(default)]
    pub minseq: u64,
    /// Long-poll: wait up to this many seconds (at most 60) for new events.
    #[serde(default)]
    pub wait: Option<u64>,
}

/// A page of events; `job_state` tells the reader whether to keep polling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventsPage {
    /// Events with `seq >= minseq`.
    pub events: Vec<JobEvent>,
    /// The job's state when the page was read.
    pub job_state: JobState,
}

/// An output file a job left behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobOutput {
    /// Unique id (ULID).
    pub id: String,
    /// Absolute path in the worker.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Content hash (hex sha256), also the download's ETag.
    pub sha256: String,
}

/// A job-store value as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorePut {
    /// The value.
    pub value: String,
    /// Secret values are never shown to users, only to the job.
    #[serde(default)]
    pub secret: bool,
}

/// A job-store value as read. A secret's value is `None` for users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoreValue {
    /// The value, unless secret.
    pub value: Option<String>,
    /// Whether it is secret.
    pub secret: bool,
    /// When it was last written.
    pub time_update: DateTime<Utc>,
}

/// Filters for listing jobs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobListQuery {
    /// Only jobs in this state.
    #[serde(default)]
    pub state: Option<JobState>,
    /// Only jobs of this owner (user id or name); admins see everyone's.
    #[serde(default)]
    pub owner: Option<String>,
    /// Only jobs with this tag, as `KEY=VALUE`.
    #[serde(default)]
    pub tag: Option<String>,
    /// Only jobs for this target.
    #[serde(default)]
    pub target: Option<String>,
    /// At most this many, newest first.
    #[serde(default)]
    pub limit: Option<usize>,
}
