//! What a successful operation returned.

use serde::{Deserialize, Serialize};

/// The result an operation returned when it succeeded; which variant depends on the operation (see
/// [`crate::history::OpKind`]). Operations whose success carries no data return [`Value::Done`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// Success without data: a cancel, a log append, an upload, an agent-side record.
    Done,
    /// The id bm gave a submitted job (`SubmitJob`).
    Job(String),
    /// A job as one read showed it (`ReadJob`, or `CancelJob` when the reply carries the job); `None` when the
    /// server said there is no such job.
    View(Option<JobView>),
    /// The ids of the jobs a listing showed (`ListJobs`).
    Jobs(Vec<String>),
    /// A job's log as one node served it, in the order served (`ReadLog`).
    Log(Vec<LogEntry>),
    /// The sha256 of an output file as one node served it, `None` when the node had no such output (`ReadOutput`).
    Output(Option<String>),
}

/// The part of a job the checker needs from a read: enough to tell how far the job got and who ran it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobView {
    /// The job's state, as bm names it in JSON (`queued`, `waiting`, `assigned`, `running`, `completed`, `failed`,
    /// `cancelled`).
    pub state: String,
    /// The fencing epoch of its current assignment (the number of assignments so far; 0 before any).
    pub epoch: u64,
    /// The worker it is assigned to, once assigned.
    pub worker: Option<String>,
}

impl JobView {
    /// A view with the given state, epoch and worker: shorthand for tests and workloads.
    pub fn new(state: &str, epoch: u64, worker: Option<&str>) -> Self {
        Self { state: state.into(), epoch, worker: worker.map(Into::into) }
    }
}

/// One chunk of a job's log: which stream it went to, its position as the job numbered it, and a hash of its
/// bytes, so logs can be compared without keeping them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogEntry {
    /// `stdout` or `stderr` (any name the workload uses consistently).
    pub stream: String,
    /// The chunk's sequence number, as the job numbered it.
    pub seq: u64,
    /// A hash of the chunk's bytes (any fixed hash, as text).
    pub bytes_hash: String,
}

impl LogEntry {
    /// An entry; shorthand for tests and workloads.
    pub fn new(stream: &str, seq: u64, bytes_hash: &str) -> Self {
        Self { stream: stream.into(), seq, bytes_hash: bytes_hash.into() }
    }
}
