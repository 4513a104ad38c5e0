//! The operations a chaos run records: client calls against the cluster and facts reported by jobs and agents.

use serde::{Deserialize, Serialize};

use crate::Endpoint;

/// What an operation was. Client calls (submit, read, cancel, upload, …) have an interval and an outcome; facts
/// (`AppendLog`, `JobRanOn`, `JobEnded`, `WorkerDestroyed`, `Fault`) are things that happened, recorded with outcome `Ok(Done)`.
/// Node numbers are the [`Endpoint`]s the harness gave the nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpKind {
    /// Submit a job; `Ok(Value::Job(id))`.
    SubmitJob {
        /// The job's name (for people).
        name: String,
    },
    /// Read a job; `Ok(Value::View(..))`, `View(None)` when the server says it does not exist.
    ReadJob {
        /// The job id.
        job: String,
        /// The node the read was sent to, when the workload chose one.
        #[serde(default)]
        node: Option<Endpoint>,
    },
    /// List jobs; `Ok(Value::Jobs(ids))`.
    ListJobs {
        /// The node the listing was sent to, when the workload chose one.
        #[serde(default)]
        node: Option<Endpoint>,
    },
    /// Cancel a job; `Ok(Value::Done)` or `Ok(Value::View(..))` with the job as the reply showed it.
    CancelJob {
        /// The job id.
        job: String,
    },
    /// A fact recorded by the job itself: it wrote this chunk to its log.
    AppendLog {
        /// The job id.
        job: String,
        /// `stdout` or `stderr`.
        stream: String,
        /// The chunk's sequence number.
        seq: u64,
        /// A hash of the chunk's bytes.
        bytes_hash: String,
    },
    /// Read a job's log from one node; `Ok(Value::Log(entries))`.
    ReadLog {
        /// The job id.
        job: String,
        /// The node read from.
        node: Endpoint,
    },
    /// Upload one output file of a job; `Ok(Value::Done)`.
    UploadOutput {
        /// The job id.
        job: String,
        /// The output's path.
        path: String,
        /// The sha256 of its content, hex.
        sha256: String,
    },
    /// Read one output file's sha256 from one node; `Ok(Value::Output(..))`, `None` when the node has none.
    ReadOutput {
        /// The job id.
        job: String,
        /// The output's path.
        path: String,
        /// The node read from.
        node: Endpoint,
    },
    /// A fact from the agents' records: the job started running on this worker at `start` and stopped at `end`
    /// (`None` if it was still running, or its end is unknown).
    JobRanOn {
        /// The job id.
        job: String,
        /// The worker's id.
        worker: String,
        /// When the run started (history time scale).
        start: u64,
        /// When it ended, if it did.
        end: Option<u64>,
    },
    /// A fact from the cluster's records: the job ended in this state, for this cause (bm's `failure`).
    JobEnded {
        /// The job id.
        job: String,
        /// `completed`, `failed` or `cancelled`.
        state: String,
        /// Why it did not complete, as the cluster says; `None` when it gave no cause.
        #[serde(default)]
        cause: Option<String>,
    },
    /// A fault the harness injected into one job: it killed the agent of the worker running it, so the job may
    /// end cut short.
    AgentKilled {
        /// The job that was running.
        job: String,
        /// The worker whose agent was killed.
        worker: String,
    },
    /// A fact: the worker was destroyed (its machine or sandbox is gone).
    WorkerDestroyed {
        /// The worker's id.
        worker: String,
    },
    /// A fault the harness injected, kept for the report only.
    Fault {
        /// What it was, for people (`partition [1] [2 3]`, `drop 5%`, `kill node 2`, …).
        kind: String,
        /// When it began.
        start: u64,
        /// When it was healed; `None` if it never was.
        end: Option<u64>,
    },
}

impl OpKind {
    /// The job the operation is about, if any, so checkers can group operations per job.
    pub fn job(&self) -> Option<&str> {
        match self {
            OpKind::ReadJob { job, .. }
            | OpKind::CancelJob { job }
            | OpKind::AppendLog { job, .. }
            | OpKind::ReadLog { job, .. }
            | OpKind::UploadOutput { job, .. }
            | OpKind::ReadOutput { job, .. }
            | OpKind::JobRanOn { job, .. }
            | OpKind::JobEnded { job, .. }
            | OpKind::AgentKilled { job, .. } => Some(job),
            OpKind::SubmitJob { .. }
            | OpKind::ListJobs { .. }
            | OpKind::WorkerDestroyed { .. }
            | OpKind::Fault { .. } => None,
        }
    }
}
