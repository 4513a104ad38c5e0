//! The agent's side of the API: what a worker's agent sends and receives.
//!
//! These calls are made with the worker credential the agent gets by
//! exchanging its single-use bootstrap token. Every call about a job carries
//! the fencing epoch of the assignment; the cluster refuses it (409,
//! `stale_epoch`) once that assignment is no longer current, and the agent
//! must then stop acting for the job.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::jobs::{Job, JobOutput};

/// Exchange of a bootstrap token for a worker credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BootstrapRequest {
    /// The single-use token the factory handed the worker.
    pub bootstrap_token: String,
}

/// The agent's identity from now on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Bootstrapped {
    /// The worker id.
    pub worker: String,
    /// Bearer token for every later call.
    pub token: String,
}

/// What the agent should do next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Instruction {
    /// Nothing yet; ask again.
    Wait,
    /// Run this job.
    Run(Box<Assignment>),
    /// Stop running the job (it was cancelled or the worker is being destroyed).
    Stop {
        /// Why, for the log.
        reason: String,
    },
}

/// A job given to this worker, with all it needs to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Assignment {
    /// The job.
    pub job: Job,
    /// The fencing epoch every call about this job must carry.
    pub epoch: u64,
    /// The job store, secrets included (for `bmat store get`).
    pub store: BTreeMap<String, String>,
    /// Outputs of the jobs this one depends on, to place under `/input/NAME/`.
    pub inputs: Vec<InputSet>,
    /// The factory that made this worker (for `bmat factory name|id`).
    #[serde(default)]
    pub factory: Option<AssignedFactory>,
}

/// The factory behind a worker, as the job may ask for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssignedFactory {
    /// The factory's id.
    pub id: String,
    /// The factory's name.
    pub name: String,
}

/// A job-store value the job sets (`bmat store put`), under the epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentStorePut {
    /// The assignment's epoch.
    pub epoch: u64,
    /// The value.
    pub value: String,
    /// A secret value is never shown to users (only to the job).
    #[serde(default)]
    pub secret: bool,
}

/// The outputs of one dependency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InputSet {
    /// Dependency name: the folder under `/input`.
    pub name: String,
    /// The job depended on.
    pub job: String,
    /// Its outputs.
    pub outputs: Vec<JobOutput>,
}

/// Most events an agent sends in one batch. A job that writes faster than
/// the cluster answers fills its batches to here; each batch costs a log
/// chunk stored on a majority and a Raft commit of its reference whatever
/// its size, so on the 3-node bench 1,000-line batches carry about twice
/// what 200-line ones do, and 2,000-line ones 10-25% more again with the
/// agents spread over the nodes (docs/benchmarks.md, sessions 10-12).
/// 2,000 waited until log chunks lived on their homes only: before, a
/// follower's disk fell behind the Raft log under such batches and a quiet
/// job's lines waited seconds behind them; 4,096 gained nothing more.
pub const MAX_BATCH_EVENTS: usize = 2000;

/// Most payload bytes in one batch (a batch holds at least one event), so
/// that a job printing long lines still sends batches well under the
/// agent link's frame limit.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// Longest payload of one event: a longer line is sent as several events
/// of at most this many bytes, cut at character boundaries.
pub const MAX_EVENT_BYTES: usize = 256 << 10;

/// A line of output or a control message from the job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentEvent {
    /// `stdout`, `stderr`, `control`, or `bg.NAME` for background processes.
    pub stream: String,
    /// Task index, for task output.
    #[serde(default)]
    pub task: Option<u32>,
    /// When the agent saw it.
    pub time: DateTime<Utc>,
    /// The text, one line.
    pub payload: String,
}

/// A batch of events under an epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsUpload {
    /// The assignment's epoch.
    pub epoch: u64,
    /// How many events this agent sent for this job before these: lets the
    /// cluster drop the ones it already has when an upload whose outcome
    /// was unknown is sent again, so retries never duplicate a line.
    #[serde(default)]
    pub first: Option<u64>,
    /// Events in order.
    pub events: Vec<AgentEvent>,
}

/// A call that carries only the epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fenced {
    /// The assignment's epoch.
    pub epoch: u64,
}

/// The end of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    /// The assignment's epoch.
    pub epoch: u64,
    /// Why the job failed; none when it succeeded.
    #[serde(default)]
    pub failure: Option<String>,
}
