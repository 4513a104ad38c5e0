//! The workers table: requested by the scheduler, leased and made by
//! factories, bound to an agent by a single-use bootstrap token, given one
//! job, then destroyed.

use std::collections::BTreeMap;

use bm_api::factories::WorkerLease;
use bm_api::jobs::JobState;
use bm_api::workers::{Worker, WorkerState};
use bm_api::ErrorCode;
use serde::{Deserialize, Serialize};

use super::command::{not_found, reject};
use super::{Outcome, Principal, Reply, State, Time};

/// A worker with its credentials' hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// As the API shows it.
    pub worker: Worker,
    /// Hash of the single-use bootstrap token, until it is used.
    pub bootstrap_hash: Option<String>,
    /// Hash of the worker credential the agent got for it.
    pub token_hash: Option<String>,
}

impl WorkerRecord {
    fn set_state(&mut self, state: WorkerState, time: Time) {
        self.worker.state = state;
        let key = serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        self.worker.times.insert(key, time);
    }
}

impl State {
    /// Workers not destroyed yet, oldest first (through the index, so the
    /// cost is theirs, not that of every worker ever made).
    pub fn live_workers(&self) -> impl Iterator<Item = &WorkerRecord> {
        self.live_workers.iter().filter_map(|id| self.workers.get(id))
    }

    pub(super) fn request_worker(&mut self, id: String, target: String, time: Time) -> Outcome {
        if self.control.hold {
            return reject(ErrorCode::Conflict, "new work is held by an operator");
        }
        if !self.targets.contains_key(&target) {
            return not_found("target", &target);
        }
        if self.workers.contains_key(&id) {
            return reject(ErrorCode::Conflict, format!("worker {id} already exists"));
        }
        let mut rec = WorkerRecord {
            worker: Worker {
                id: id.clone(),
                target,
                factory: None,
                instance_id: None,
                state: WorkerState::Requested,
                job: None,
                epoch: 0,
                hold: false,
                times: BTreeMap::new(),
            },
            bootstrap_hash: None,
            token_hash: None,
        };
        rec.set_state(WorkerState::Requested, time);
        self.live_workers.insert(id.clone());
        self.workers.insert(id, rec.clone());
        Ok(Reply::Worker(rec.worker))
    }

    pub(super) fn lease_worker(
        &mut self,
        factory: &str,
        targets: &[String],
        bootstrap_hash: String,
        time: Time,
    ) -> Outcome {
        match self.factories.get(factory) {
            None => return not_found("factory", factory),
            Some(f) if !f.factory.enabled => {
                return reject(ErrorCode::Forbidden, format!("factory {:?} is disabled", f.factory.name))
            }
            Some(_) => {}
        }
        let found = self
            .live_workers()
            .find(|w| w.worker.state == WorkerState::Requested && targets.contains(&w.worker.target));
        let Some(id) = found.map(|w| w.worker.id.clone()) else { return Ok(Reply::Lease(None)) };
        let w = self.workers.get_mut(&id).expect("listed as live");
        w.worker.factory = Some(factory.to_string());
        w.bootstrap_hash = Some(bootstrap_hash);
        w.set_state(WorkerState::Bootstrapping, time);
        Ok(Reply::Lease(Some(WorkerLease {
            worker: w.worker.id.clone(),
            target: w.worker.target.clone(),
            bootstrap_token: String::new(),
            agent_link: None,
        })))
    }

    fn factory_worker(&mut self, factory: &str, worker: &str) -> Result<&mut WorkerRecord, super::Rejection> {
        let Some(w) = self.workers.get_mut(worker) else { return not_found("worker", worker) };
        if w.worker.factory.as_deref() != Some(factory) {
            return reject(ErrorCode::Forbidden, format!("worker {worker} does not belong to this factory"));
        }
        Ok(w)
    }

    pub(super) fn report_instance(&mut self, factory: &str, worker: &str, instance_id: String, time: Time) -> Outcome {
        let w = self.factory_worker(factory, worker)?;
        if w.worker.state.is_terminal() {
            return reject(ErrorCode::Conflict, format!("worker {worker} is already destroyed"));
        }
        w.worker.instance_id = Some(instance_id);
        w.worker.times.insert("instance".into(), time);
        Ok(Reply::Worker(w.worker.clone()))
    }

    pub(super) fn worker_destroyed(&mut self, factory: &str, worker: &str, time: Time) -> Outcome {
        let w = self.factory_worker(factory, worker)?;
        if w.worker.state.is_terminal() {
            return Ok(Reply::Worker(w.worker.clone()));
        }
        w.set_state(WorkerState::Destroyed, time);
        self.live_workers.remove(worker);
        let w = self.workers.get_mut(worker).expect("found above");
        let token = w.token_hash.take();
        w.bootstrap_hash = None;
        let job = w.worker.job.clone();
        let out = w.worker.clone();
        if let Some(t) = token {
            self.tokens.remove(&t);
        }
        if let Some(j) = job {
            self.job_lost_its_worker(&j, "the worker running it was destroyed", time);
        }
        Ok(Reply::Worker(out))
    }

    pub(super) fn hold_worker(&mut self, worker: &str, hold: bool) -> Outcome {
        let Some(w) = self.workers.get_mut(worker) else { return not_found("worker", worker) };
        if w.worker.state.is_terminal() {
            return reject(ErrorCode::Conflict, format!("worker {worker} is already destroyed"));
        }
        w.worker.hold = hold;
        Ok(Reply::Worker(w.worker.clone()))
    }

    /// Marks a worker for destruction; a job it was running fails with `reason`.
    pub(super) fn retire_worker(&mut self, worker: &str, reason: &str, time: Time) -> Outcome {
        let Some(w) = self.workers.get_mut(worker) else { return not_found("worker", worker) };
        match w.worker.state {
            WorkerState::Destroyed => {
                return reject(ErrorCode::Conflict, format!("worker {worker} is already destroyed"))
            }
            WorkerState::Destroying => return Ok(Reply::Worker(w.worker.clone())),
            _ => {}
        }
        // A worker no factory took has nothing to tear down: it is gone now.
        let next = if w.worker.factory.is_none() { WorkerState::Destroyed } else { WorkerState::Destroying };
        w.set_state(next, time);
        let job = w.worker.job.clone();
        let out = w.worker.clone();
        if next == WorkerState::Destroyed {
            self.live_workers.remove(worker);
        }
        if let Some(j) = job {
            self.job_lost_its_worker(&j, reason, time);
        }
        Ok(Reply::Worker(out))
    }

    /// Marks a worker destroying once its job is over (called by job rules).
    pub(super) fn release_worker(&mut self, worker: &str, time: Time) {
        if let Some(w) = self.workers.get_mut(worker) {
            if matches!(w.worker.state, WorkerState::Assigned | WorkerState::Ready | WorkerState::Bootstrapping) {
                w.set_state(WorkerState::Destroying, time);
            }
        }
    }

    pub(super) fn bootstrap_worker(&mut self, bootstrap_hash: &str, token_hash: String, time: Time) -> Outcome {
        // Only a worker not destroyed yet holds a bootstrap token.
        let found = self.live_workers().find(|w| w.bootstrap_hash.as_deref() == Some(bootstrap_hash));
        let Some(id) = found.map(|w| w.worker.id.clone()) else {
            return reject(ErrorCode::Unauthorized, "bootstrap token is unknown or was already used");
        };
        let w = self.workers.get_mut(&id).expect("listed as live");
        match w.worker.state {
            WorkerState::Bootstrapping => {}
            // The same exchange again (its answer was lost): the credential
            // is derived from the bootstrap token, so it is the same one.
            WorkerState::Ready | WorkerState::Assigned if w.token_hash.as_deref() == Some(token_hash.as_str()) => {
                return Ok(Reply::Worker(w.worker.clone()));
            }
            _ => return reject(ErrorCode::Unauthorized, "bootstrap token is unknown or was already used"),
        }
        if self.tokens.contains_key(&token_hash) {
            return reject(ErrorCode::Conflict, "token already in use");
        }
        w.token_hash = Some(token_hash.clone());
        w.set_state(WorkerState::Ready, time);
        let out = w.worker.clone();
        self.tokens.insert(token_hash, Principal::Worker(out.id.clone()));
        Ok(Reply::Worker(out))
    }

    /// Assigns a queued job to a ready worker under a fresh fencing epoch.
    pub(super) fn assign_job(&mut self, job: &str, worker: &str, time: Time) -> Outcome {
        if self.control.hold {
            return reject(ErrorCode::Conflict, "new work is held by an operator");
        }
        let Some(j) = self.jobs.get(job) else { return not_found("job", job) };
        if j.job.state != JobState::Queued {
            return reject(ErrorCode::Conflict, format!("job {job} is {}, not queued", j.job.state.as_str()));
        }
        let Some(w) = self.workers.get(worker) else { return not_found("worker", worker) };
        if w.worker.state != WorkerState::Ready || w.worker.hold {
            return reject(ErrorCode::Conflict, format!("worker {worker} is not ready for a job"));
        }
        if w.worker.target != j.job.target_real {
            return reject(
                ErrorCode::Conflict,
                format!("worker {worker} serves {:?}, job {job} needs {:?}", w.worker.target, j.job.target_real),
            );
        }
        let j = self.job_mut(job).expect("checked above");
        j.job.epoch += 1;
        j.agent_events = 0;
        j.job.worker = Some(worker.to_string());
        let epoch = j.job.epoch;
        j.set_state(JobState::Assigned, time, format!("assigned to worker {worker} (epoch {epoch})"));
        self.reindex_job(job);
        let w = self.workers.get_mut(worker).expect("checked above");
        w.worker.job = Some(job.to_string());
        w.worker.epoch = epoch;
        w.set_state(WorkerState::Assigned, time);
        Ok(Reply::Worker(w.worker.clone()))
    }
}
