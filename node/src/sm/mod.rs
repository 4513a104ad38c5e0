//! The replicated state machine: bm's tables and the pure rules that change
//! them. Nothing here reads a clock, draws a random number or does I/O; the
//! proposer puts times, ids and token hashes into each [`Command`].
//!
//! One table per file: users, targets, factories, workers, jobs.

pub mod command;
mod control;
mod factories;
pub mod joblog;
mod jobs;
mod names;
pub mod publish;
pub mod refs;
mod targets;
#[cfg(test)]
mod tests;
mod users;
mod workers;

use std::collections::BTreeMap;
use std::sync::Arc;

use bm_raft::{codec, Machine, MachineError};
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

pub use bm_api::eventlog::{EventLog, PackError};
pub use command::{Command, EventIn, Fence, Outcome, Rejection, Reply, Time};
pub use joblog::JobLog;
pub use jobs::JobRecord;
pub use names::valid_name;
pub use users::UserRecord;
pub use workers::WorkerRecord;

/// Who a bearer token belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Principal {
    /// A user, by id.
    User(String),
    /// A factory, by id.
    Factory(String),
    /// A worker's agent, by worker id.
    Worker(String),
}

/// The whole replicated state.
///
/// The collections that grow with every job (jobs, workers, their indexes,
/// tokens, submit keys, published files) are persistent maps
/// (`imbl::OrdMap`, `imbl::OrdSet`): a copy shares their tree nodes until
/// either side changes one, so the copy a snapshot takes under the state's
/// lock costs the same at 1,000 jobs as at 1,000,000 (a `BTreeMap` copy
/// took 411-444 ms at 450,000 jobs, all of it with applying stopped).
/// They encode exactly as `BTreeMap` and `BTreeSet` do, so snapshots are
/// unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Users by id.
    pub users: BTreeMap<String, UserRecord>,
    /// Targets by name.
    pub targets: BTreeMap<String, bm_api::targets::Target>,
    /// Factories by id, with their token hashes.
    pub factories: BTreeMap<String, factories::FactoryRecord>,
    /// Workers by id (ULIDs, so in creation order).
    pub workers: OrdMap<String, WorkerRecord>,
    /// Jobs by id (ULIDs, so in submission order). Each behind an `Arc`,
    /// so that unsharing a map node the snapshot's copy still holds copies
    /// pointers, not jobs: a change to a job still shared with a snapshot
    /// being encoded copies that one job first (`Arc::make_mut`).
    pub jobs: OrdMap<String, Arc<JobRecord>>,
    /// Token hash to principal.
    pub tokens: OrdMap<String, Principal>,
    /// Jobs in the `waiting` state: an index, so that settling dependencies
    /// costs the number of waiting jobs, not of all jobs ever submitted.
    pub waiting: OrdSet<String>,
    /// Jobs in the `queued` state, and jobs `assigned` or `running`:
    /// indexes, so that a scheduler pass (every few milliseconds on the
    /// leader) costs the number of live jobs, not of all jobs ever
    /// submitted. Kept by [`State::reindex_job`] at every change of a
    /// job's state; ids are ULIDs, so both are in submission order.
    pub queued: OrdSet<String>,
    /// See [`State::queued`].
    pub running: OrdSet<String>,
    /// Workers not yet destroyed: an index for the same reason (the
    /// scheduler and the heartbeat check look at these only).
    pub live_workers: OrdSet<String>,
    /// Cluster-wide switches.
    pub control: control::ControlRecord,
    /// Published files by `OWNER/REPO/SERIES/VERSION/NAME`.
    pub published: OrdMap<String, bm_api::jobs::PublishedFile>,
    /// Owner to submit key to the job that key made
    /// (`JobSubmit::submit_key`): a retried submit answers that job.
    #[serde(default)]
    pub submit_keys: OrdMap<String, OrdMap<String, String>>,
    /// Log index of the last command applied.
    pub applied: u64,
    /// The blobs and log chunks the jobs refer to: derived from `jobs`,
    /// kept by apply, rebuilt on restore, not in a snapshot.
    #[serde(skip)]
    pub refs: refs::Refs,
}

impl State {
    /// Job `id` to change: copied first if a snapshot being encoded still
    /// shares it (see [`State::jobs`]).
    fn job_mut(&mut self, id: &str) -> Option<&mut JobRecord> {
        self.jobs.get_mut(id).map(Arc::make_mut)
    }

    /// Applies one command: the heart of bm. Refusals change nothing.
    pub fn apply(&mut self, cmd: Command) -> Outcome {
        use Command::*;
        match cmd {
            CreateUser { id, name, privileges, token_hash, time } => {
                self.create_user(id, name, privileges, token_hash, time)
            }
            SetPrivilege { user, privilege, grant } => self.set_privilege(&user, privilege, grant),
            CreateTarget { id, spec } => self.create_target(id, spec),
            SetRedirect { target, redirect } => self.set_redirect(&target, redirect),
            CreateFactory { id, name, token_hash, time } => self.create_factory(id, name, token_hash, time),
            SetFactoryEnabled { factory, enabled } => self.set_factory_enabled(&factory, enabled),
            SubmitJob { id, owner, submit, time } => self.submit_job(id, owner, submit, time),
            CancelJob { job, by, time } => self.cancel_job(&job, &by, time),
            StorePut { job, name, put, fence, time } => self.store_put(&job, name, put, fence.as_ref(), time),
            SetHold { hold } => self.set_hold(hold),
            RequestWorker { id, target, time } => self.request_worker(id, target, time),
            AssignJob { job, worker, time } => self.assign_job(&job, &worker, time),
            LeaseWorker { factory, targets, bootstrap_hash, time } => {
                self.lease_worker(&factory, &targets, bootstrap_hash, time)
            }
            ReportInstance { factory, worker, instance_id, time } => {
                self.report_instance(&factory, &worker, instance_id, time)
            }
            WorkerDestroyed { factory, worker, time } => self.worker_destroyed(&factory, &worker, time),
            HoldWorker { worker, hold } => self.hold_worker(&worker, hold),
            RecycleWorker { worker, time } => {
                self.retire_worker(&worker, "the worker was recycled by an operator", time)
            }
            WorkerLost { worker, reason, time } => self.retire_worker(&worker, &reason, time),
            BootstrapWorker { bootstrap_hash, token_hash, time } => {
                self.bootstrap_worker(&bootstrap_hash, token_hash, time)
            }
            JobStart { job, fence, time } => self.job_start(&job, &fence, time),
            JobEvents { job, fence, first, events, max_log_bytes } => {
                self.job_events(&job, &fence, first, events, max_log_bytes)
            }
            JobChunk { job, fence, first, chunk, max_log_bytes } => {
                self.job_chunk(&job, &fence, first, chunk, max_log_bytes)
            }
            JobOutput { job, fence, output } => self.job_output(&job, &fence, output),
            JobFinish { job, fence, failure, time } => self.job_finish(&job, &fence, failure, time),
            JobTimeout { job, time } => self.job_timeout(&job, time),
            PurgeJob { job, time } => self.purge_job(&job, time),
        }
    }

    /// Who holds the token with this hash.
    pub fn principal(&self, token_hash: &str) -> Option<&Principal> {
        self.tokens.get(token_hash)
    }
}

/// The [`Machine`] Raft drives. One Raft entry carries a batch of commands
/// (the proposer packs concurrent requests together, see `proposer.rs`);
/// they are applied in order and answered with one outcome each.
#[derive(Clone, Default)]
pub struct Replicated(pub State);

/// What one Raft entry carries.
pub type Batch = Vec<Command>;

impl Machine for Replicated {
    fn apply(&mut self, index: u64, command: &[u8]) -> Result<Vec<u8>, MachineError> {
        let batch: Batch = codec::decode("state-machine command batch", command)
            .map_err(|e| MachineError(format!("log entry {index}: {e}")))?;
        self.0.applied = index;
        let outcomes: Vec<Outcome> = batch.into_iter().map(|cmd| self.0.apply(cmd)).collect();
        codec::encode("command outcomes", &outcomes).map_err(|e| MachineError(e.to_string()))
    }

    fn snapshot(&self) -> Result<Vec<u8>, MachineError> {
        codec::encode("state snapshot", &self.0).map_err(|e| MachineError(e.to_string()))
    }

    fn restore(bytes: &[u8]) -> Result<Self, MachineError> {
        let mut state: State =
            codec::decode_limited("state snapshot", bytes, usize::MAX).map_err(|e| MachineError(e.to_string()))?;
        state.refs = refs::Refs::of_jobs(state.jobs.values().map(|j| &**j));
        Ok(Replicated(state))
    }
}
