//! The commands that change the replicated state, and their replies.
//!
//! Every command carries whatever the proposer chose (ids, times, token
//! hashes) so that applying it is a pure function of (state, command).

use bm_api::client::Control;
use bm_api::factories::{Factory, WorkerLease};
use bm_api::jobs::{Job, JobOutput, JobSubmit, StorePut, StoreValue};
use bm_api::targets::{Target, TargetCreate};
use bm_api::users::User;
use bm_api::workers::Worker;
use bm_api::{ApiError, ErrorCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use bm_api::eventlog::EventLog;

/// Time as chosen by the proposer.
pub type Time = DateTime<Utc>;

/// Proof that an agent acts for the current assignment of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// The worker acting.
    pub worker: String,
    /// The epoch it was given with the job.
    pub epoch: u64,
}

/// A log line or control message reported by an agent, as the agent API
/// carries it (packed into an [`EventLog`] before it is proposed).
pub use bm_api::agent::AgentEvent as EventIn;

/// A batch of agent events stored as a log chunk (see `chunks`): what the
/// state needs to number the events and hold a job's log to its size
/// limit, without their text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// The chunk's sha256.
    pub sha: [u8; 32],
    /// Each event's payload length in bytes, in order.
    pub lens: Vec<u64>,
    /// The first event's time: a note that the log was truncated, made by
    /// this batch, carries it.
    pub time: Time,
}

/// A state change, replicated through Raft.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create a user with a hashed token.
    CreateUser { id: String, name: String, privileges: Vec<String>, token_hash: String, time: Time },
    /// Grant (`grant = true`) or revoke a privilege.
    SetPrivilege { user: String, privilege: String, grant: bool },
    /// Create a target.
    CreateTarget { id: String, spec: TargetCreate },
    /// Change a target's redirect.
    SetRedirect { target: String, redirect: Option<String> },
    /// Register a factory with a hashed token.
    CreateFactory { id: String, name: String, token_hash: String, time: Time },
    /// Enable or disable a factory.
    SetFactoryEnabled { factory: String, enabled: bool },
    /// Submit a job on behalf of `owner` (a user id or `admin`).
    SubmitJob { id: String, owner: String, submit: JobSubmit, time: Time },
    /// Cancel a job.
    CancelJob { job: String, by: String, time: Time },
    /// Write a job-store value, by a user (`fence` none) or by the job's agent.
    StorePut { job: String, name: String, put: StorePut, fence: Option<Fence>, time: Time },
    /// Hold or resume the start of new work.
    SetHold { hold: bool },
    /// Scheduler: ask factories for a worker of `target`.
    RequestWorker { id: String, target: String, time: Time },
    /// Scheduler: give a queued job to a ready worker, under a new epoch.
    AssignJob { job: String, worker: String, time: Time },
    /// Factory: take the oldest requested worker for one of `targets`.
    LeaseWorker { factory: String, targets: Vec<String>, bootstrap_hash: String, time: Time },
    /// Factory: the instance made for a worker.
    ReportInstance { factory: String, worker: String, instance_id: String, time: Time },
    /// Factory: the worker is gone.
    WorkerDestroyed { factory: String, worker: String, time: Time },
    /// Operator: keep (or stop keeping) a worker after its job.
    HoldWorker { worker: String, hold: bool },
    /// Operator: destroy a worker now; its job fails.
    RecycleWorker { worker: String, time: Time },
    /// Leader: a worker stopped heartbeating; its job fails with `reason`.
    WorkerLost { worker: String, reason: String, time: Time },
    /// Agent: exchange a single-use bootstrap token for a worker credential.
    BootstrapWorker { bootstrap_hash: String, token_hash: String, time: Time },
    /// Agent: the job started.
    JobStart { job: String, fence: Fence, time: Time },
    /// Agent: log lines and control messages.
    JobEvents { job: String, fence: Fence, first: Option<u64>, events: EventLog, max_log_bytes: Option<u64> },
    /// Agent: an output was stored.
    JobOutput { job: String, fence: Fence, output: JobOutput },
    /// Agent: the job finished.
    JobFinish { job: String, fence: Fence, failure: Option<String>, time: Time },
    /// Leader: the job ran past its timeout.
    JobTimeout { job: String, time: Time },
    /// Leader: a finished job is past its retention; its log and outputs
    /// go (the job record stays, marked purged).
    PurgeJob { job: String, time: Time },
    /// Agent: log lines and control messages stored as a log chunk on a
    /// majority of the voters. (Last, like every new command: entries are
    /// encoded by position, so one added in the middle would make an older
    /// log mean something else.)
    JobChunk { job: String, fence: Fence, first: Option<u64>, chunk: ChunkRef, max_log_bytes: Option<u64> },
}

/// What a command produced when it was accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Nothing to report.
    Done,
    /// A user.
    User(User),
    /// A target.
    Target(Target),
    /// A factory.
    Factory(Factory),
    /// A job.
    Job(Box<Job>),
    /// A worker.
    Worker(Worker),
    /// A lease, if a request was waiting (the token is added by the proposer).
    Lease(Option<WorkerLease>),
    /// A store value.
    Store(StoreValue),
    /// The control switches.
    Control(Control),
    /// Events appended; the next sequence number.
    Appended(u64),
}

/// Why a command was refused. It was committed but changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    /// Stable code.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}

impl Rejection {
    /// Builds a rejection.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::new(r.code, r.message)
    }
}

/// The outcome of applying one command.
pub type Outcome = Result<Reply, Rejection>;

/// Shorthand for refusals.
pub fn reject<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(code, message))
}

/// A "no such thing" refusal naming the thing.
pub fn not_found<T>(what: &str, name: &str) -> Result<T, Rejection> {
    reject(ErrorCode::NotFound, format!("no {what} {name:?}"))
}
