//! The jobs table: submission, dependencies, assignment under a fencing
//! epoch, progress reported by the agent, and the end of a job.

use std::collections::BTreeMap;
use std::sync::Arc;

use bm_api::jobs::{Depend, Job, JobOutput, JobState, JobSubmit, StorePut, StoreValue};
use bm_api::output_rule::OutputRule;
use bm_api::{ErrorCode, ADMIN};
use serde::{Deserialize, Serialize};

use super::command::{not_found, reject, ChunkRef, Fence, Rejection};
use super::joblog::JobLog;
use super::{valid_name, Outcome, Reply, State, Time};
use bm_api::eventlog::EventLog;

/// Longest job a user may ask for: a week.
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;
/// Largest job-store value.
pub const MAX_STORE_VALUE: usize = 64 * 1024;

/// A job-store value with its secrecy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRecord {
    /// The value.
    pub value: String,
    /// Hidden from users when set.
    pub secret: bool,
    /// Last write.
    pub time: Time,
}

impl StoreRecord {
    /// The value as a user (`reveal = false`) or the job itself may see it.
    pub fn view(&self, reveal: bool) -> StoreValue {
        StoreValue {
            value: if self.secret && !reveal { None } else { Some(self.value.clone()) },
            secret: self.secret,
            time_update: self.time,
        }
    }
}

/// Which events of an agent batch a job's log takes.
struct Kept {
    /// Events before this one were taken before.
    skip: u64,
    /// Events from this one on are dropped (the log's size limit).
    keep: u64,
    /// This batch is the one that passes the limit.
    truncates: bool,
}

/// A job with everything recorded about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// As the API shows it.
    pub job: Job,
    /// Control messages and log lines, `seq` = index.
    pub events: JobLog,
    /// Files it left behind.
    pub outputs: Vec<JobOutput>,
    /// Its key/value store.
    pub store: BTreeMap<String, StoreRecord>,
    /// Agent events accepted for the current assignment (uploads that
    /// number their events are deduplicated against it).
    #[serde(default)]
    pub agent_events: u64,
    /// When its log and outputs were purged (retention).
    #[serde(default)]
    pub purged: Option<Time>,
    /// Bytes of agent event payloads kept (for the log size limit).
    #[serde(default)]
    pub log_bytes: u64,
    /// Whether the log reached its limit (later lines are dropped).
    #[serde(default)]
    pub log_truncated: bool,
}

impl JobRecord {
    pub(super) fn push_event(&mut self, stream: &str, time: Time, payload: impl AsRef<str>) {
        // This fails only when the log already names 65,535 streams and this
        // one is new: the message is then left out (the job's log says
        // enough already).
        let _ = self.events.push(stream, None, time, payload.as_ref());
    }

    /// Ends the log with a note once a batch passed the size limit (the
    /// first dropped event's time is `dropped`); answers the next sequence
    /// number.
    fn note_truncation(&mut self, max_log_bytes: Option<u64>, dropped: Option<Time>) -> Reply {
        if let (Some(max), Some(time), false) = (max_log_bytes, dropped, self.log_truncated) {
            self.log_truncated = true;
            let msg = format!("log truncated: the job's log reached its limit of {max} bytes; later output is dropped");
            self.push_event("control", time, msg);
        }
        Reply::Appended(self.events.len())
    }

    pub(super) fn set_state(&mut self, state: JobState, time: Time, why: impl AsRef<str>) {
        self.job.state = state;
        let key = match state {
            JobState::Queued => "ready",
            JobState::Waiting => "waiting",
            JobState::Assigned => "assigned",
            JobState::Running => "start",
            JobState::Completed | JobState::Failed | JobState::Cancelled => "complete",
        };
        self.job.times.insert(key.to_string(), time);
        self.push_event("control", time, why);
    }
}

/// Longest submit key (`JobSubmit::submit_key`): room for any client's
/// request id, small enough that keeping one per job costs little.
const MAX_SUBMIT_KEY: usize = 128;

fn validate(submit: &JobSubmit) -> Result<(), Rejection> {
    let bad = |m: String| reject(ErrorCode::BadRequest, m);
    if submit.name.trim().is_empty() || submit.name.len() > 256 || submit.name.contains(['\n', '\0']) {
        return bad(format!("job name {:?} must be 1-256 characters on one line", submit.name));
    }
    if submit.tasks.is_empty() {
        return bad("a job needs at least one task".into());
    }
    for (i, t) in submit.tasks.iter().enumerate() {
        if t.name.trim().is_empty() {
            return bad(format!("task {i} has no name"));
        }
        if let Some(k) = t.env.keys().find(|k| k.is_empty() || k.contains(['=', '\0'])) {
            return bad(format!("task {i}: invalid environment variable name {k:?}"));
        }
        if let Some(w) = &t.workdir {
            if !w.starts_with('/') {
                return bad(format!("task {i}: workdir {w:?} must be an absolute path"));
            }
        }
    }
    for r in &submit.output_rules {
        if let Err(m) = OutputRule::parse(r) {
            return bad(m);
        }
    }
    for i in &submit.inputs {
        if i.is_empty() || i.contains(['/', '\0']) || i == "." || i == ".." {
            return bad(format!("invalid input name {i:?}"));
        }
    }
    if let Some(k) = submit.tags.keys().find(|k| k.is_empty() || k.contains('=')) {
        return bad(format!("invalid tag name {k:?}"));
    }
    if let Some(n) = submit.depends.keys().find(|n| !valid_name(n)) {
        return bad(format!("invalid dependency name {n:?}"));
    }
    if let Some((n, _)) = submit.store.iter().find(|(n, _)| !valid_name(n)) {
        return bad(format!("invalid store key {n:?}"));
    }
    if let Some((n, _)) = submit.store.iter().find(|(_, v)| v.value.len() > MAX_STORE_VALUE) {
        return bad(format!("store value {n:?} is over {MAX_STORE_VALUE} bytes"));
    }
    if let Some(k) = &submit.submit_key {
        if k.is_empty() || k.len() > MAX_SUBMIT_KEY || !k.bytes().all(|b| b.is_ascii_graphic()) {
            return bad(format!("submit key {k:?} must be 1-{MAX_SUBMIT_KEY} printable ASCII characters"));
        }
    }
    if submit.timeout_secs.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_SECS) {
        return bad(format!("timeout must be between 1 and {MAX_TIMEOUT_SECS} seconds"));
    }
    Ok(())
}

impl State {
    /// Jobs `user` may see: their own, or all for admins.
    pub fn can_see_job(&self, user: &str, job: &Job) -> bool {
        job.owner == user || self.has_privilege(user, ADMIN)
    }

    pub(super) fn submit_job(&mut self, id: String, owner: String, submit: JobSubmit, time: Time) -> Outcome {
        if owner != ADMIN && !self.users.contains_key(&owner) {
            return not_found("user", &owner);
        }
        if self.jobs.contains_key(&id) {
            return reject(ErrorCode::Conflict, format!("job {id} already exists"));
        }
        validate(&submit)?;
        if let Some(made) = self.submitted_before(&owner, &submit)? {
            return Ok(Reply::Job(Box::new(made)));
        }
        let keyed = submit.submit_key.clone().map(|k| (owner.clone(), k));
        for name in [&submit.target].into_iter().chain(std::iter::once(&self.resolve_target(&submit.target)?.name)) {
            if let Some(p) = self.targets.get(name).and_then(|t| t.privilege.clone()) {
                if !self.has_privilege(&owner, &p) {
                    return reject(
                        ErrorCode::Forbidden,
                        format!("target {name:?} requires the privilege {p:?}, which you do not hold"),
                    );
                }
            }
        }
        let target_real = self.resolve_target(&submit.target)?.name.clone();
        let mut depends = Vec::new();
        for (name, d) in &submit.depends {
            let Some(prior) = self.jobs.get(&d.prior_job) else {
                return reject(ErrorCode::NotFound, format!("dependency {name:?}: no job {:?}", d.prior_job));
            };
            if !self.can_see_job(&owner, &prior.job) {
                return reject(ErrorCode::Forbidden, format!("dependency {name:?}: job {} is not yours", d.prior_job));
            }
            depends.push(Depend {
                name: name.clone(),
                prior_job: d.prior_job.clone(),
                copy_outputs: d.copy_outputs,
                on_failed: d.on_failed,
                on_completed: d.on_completed,
            });
        }
        let store = submit
            .store
            .iter()
            .map(|(k, v)| (k.clone(), StoreRecord { value: v.value.clone(), secret: v.secret, time }))
            .collect();
        let mut rec = JobRecord {
            job: Job {
                id: id.clone(),
                owner,
                name: submit.name,
                target: submit.target,
                target_real,
                state: JobState::Queued,
                failure: None,
                tasks: submit.tasks,
                output_rules: submit.output_rules,
                inputs: submit.inputs,
                tags: submit.tags,
                depends,
                worker: None,
                epoch: 0,
                timeout_secs: submit.timeout_secs,
                retry_on_worker_loss: submit.retry_on_worker_loss,
                times: BTreeMap::from([("submit".to_string(), time)]),
                publish: submit.publish,
            },
            events: JobLog::default(),
            outputs: Vec::new(),
            store,
            agent_events: 0,
            purged: None,
            log_bytes: 0,
            log_truncated: false,
        };
        if rec.job.depends.is_empty() {
            rec.set_state(JobState::Queued, time, "job submitted; queued for a worker");
        } else {
            rec.set_state(JobState::Waiting, time, "job submitted; waiting for its dependencies");
            self.waiting.insert(id.clone());
        }
        self.jobs.insert(id.clone(), Arc::new(rec));
        if let Some((owner, key)) = keyed {
            self.submit_keys.entry(owner).or_default().insert(key, id.clone());
        }
        self.reindex_job(&id);
        self.settle_waiting(time);
        Ok(Reply::Job(Box::new(self.jobs[&id].job.clone())))
    }

    /// The job an earlier submit with the same key made, if any: the same
    /// submission retried (its answer was lost), answered with that job as
    /// it is now. The same key with a different job is a client's mistake,
    /// refused rather than answered with a job the caller did not ask for.
    fn submitted_before(&self, owner: &str, submit: &JobSubmit) -> Result<Option<Job>, Rejection> {
        let Some(key) = &submit.submit_key else { return Ok(None) };
        let Some(id) = self.submit_keys.get(owner).and_then(|keys| keys.get(key)) else { return Ok(None) };
        let Some(rec) = self.jobs.get(id) else { return Ok(None) };
        let j = &rec.job;
        let same = j.name == submit.name && j.target == submit.target && j.tasks == submit.tasks;
        if !same {
            return reject(
                ErrorCode::Conflict,
                format!("submit key {key:?} was used for job {id} ({:?}), a different job", j.name),
            );
        }
        Ok(Some(j.clone()))
    }

    /// Moves waiting jobs on once their dependencies are decided: to the
    /// queue when all allow it, or to failure naming the dependency that
    /// did not. Repeats because one failure can fail a chain.
    pub(super) fn settle_waiting(&mut self, time: Time) {
        loop {
            let mut decided: Vec<(String, Result<(), String>)> = Vec::new();
            let left: Vec<String> = (self.waiting.iter())
                .filter(|id| self.jobs.get(*id).is_none_or(|r| r.job.state != JobState::Waiting))
                .cloned()
                .collect();
            for id in left {
                self.waiting.remove(&id);
            }
            for (id, rec) in self.waiting.iter().filter_map(|id| self.jobs.get(id).map(|r| (id, r))) {
                // A decided dependency that forbids running fails the job at
                // once, whatever the others are doing; else wait for all.
                let mut verdict = Some(Ok(()));
                for d in &rec.job.depends {
                    let prior = self.jobs.get(&d.prior_job).map(|p| p.job.state);
                    let ok = match prior {
                        Some(JobState::Completed) => d.on_completed,
                        Some(JobState::Failed) => d.on_failed,
                        Some(JobState::Cancelled) => d.on_failed,
                        Some(_) => {
                            verdict = None;
                            continue;
                        }
                        None => false,
                    };
                    if !ok {
                        let how = match prior {
                            Some(JobState::Completed) => "completed, and this job runs only on its failure",
                            Some(JobState::Cancelled) => "was cancelled",
                            _ => "failed",
                        };
                        verdict = Some(Err(format!("dependency {:?} (job {}) {how}", d.name, d.prior_job)));
                        break;
                    }
                }
                if let Some(v) = verdict {
                    decided.push((id.clone(), v));
                }
            }
            if decided.is_empty() {
                return;
            }
            for (id, v) in decided {
                self.waiting.remove(&id);
                let rec = self.job_mut(&id).expect("listed above");
                match v {
                    Ok(()) => rec.set_state(JobState::Queued, time, "dependencies satisfied; queued for a worker"),
                    Err(why) => {
                        rec.job.failure = Some(why.clone());
                        rec.set_state(JobState::Failed, time, format!("job failed: {why}"));
                    }
                }
                self.reindex_job(&id);
            }
        }
    }

    /// Ends a job that has not ended yet, releasing its worker and
    /// settling jobs that wait on it.
    pub(super) fn end_job(&mut self, job: &str, state: JobState, failure: Option<String>, time: Time, why: String) {
        let Some(rec) = self.job_mut(job) else { return };
        if rec.job.state.is_terminal() {
            return;
        }
        rec.job.failure = failure;
        rec.set_state(state, time, why);
        self.reindex_job(job);
        if state == JobState::Completed {
            self.publish_outputs(job, time);
        }
        let rec = self.job_mut(job).expect("present");
        if let Some(w) = rec.job.worker.clone() {
            self.release_worker(&w, time);
        }
        self.settle_waiting(time);
    }

    /// Fails a job that a worker loss interrupted, if it still runs.
    pub(super) fn end_job_if_running(&mut self, job: &str, reason: &str, time: Time) {
        self.end_job(job, JobState::Failed, Some(reason.to_string()), time, format!("job failed: {reason}"));
    }

    /// A job whose worker was lost: queued again when it asked for that
    /// and has retries left (a new assignment gets a new epoch, so the lost
    /// worker can no longer act for it), failed with `reason` otherwise.
    pub(super) fn job_lost_its_worker(&mut self, job: &str, reason: &str, time: Time) {
        let Some(rec) = self.job_mut(job) else { return };
        let active = matches!(rec.job.state, JobState::Assigned | JobState::Running);
        if !active || rec.job.retry_on_worker_loss == 0 {
            return self.end_job_if_running(job, reason, time);
        }
        rec.job.retry_on_worker_loss -= 1;
        rec.job.worker = None;
        // The lost attempt's outputs are not the job's: the next attempt uploads its own.
        let dropped = std::mem::take(&mut rec.outputs);
        let left = rec.job.retry_on_worker_loss;
        rec.set_state(JobState::Queued, time, format!("worker lost: {reason}; queued again ({left} retries left)"));
        self.refs.remove_outputs(&dropped);
        self.reindex_job(job);
    }

    /// Puts a job into the state indexes its current state calls for
    /// ([`State::queued`], [`State::running`]) and out of the others.
    pub(super) fn reindex_job(&mut self, id: &str) {
        let state = self.jobs.get(id).map(|r| r.job.state);
        for (set, wanted) in [
            (&mut self.queued, state == Some(JobState::Queued)),
            (&mut self.running, matches!(state, Some(JobState::Assigned | JobState::Running))),
        ] {
            if wanted {
                if !set.contains(id) {
                    set.insert(id.to_string());
                }
            } else {
                set.remove(id);
            }
        }
    }

    /// Checks that an agent acts for the job's current assignment.
    fn fenced(&self, job: &str, fence: &Fence) -> Result<&JobRecord, Rejection> {
        let Some(rec) = self.jobs.get(job) else { return not_found("job", job) };
        if rec.job.worker.as_deref() != Some(fence.worker.as_str()) || rec.job.epoch != fence.epoch {
            return reject(
                ErrorCode::StaleEpoch,
                format!(
                    "worker {} epoch {} is not the current assignment of job {job} (epoch {})",
                    fence.worker, fence.epoch, rec.job.epoch
                ),
            );
        }
        match rec.job.state {
            JobState::Cancelled => reject(ErrorCode::Conflict, format!("job {job} was cancelled")),
            s if s.is_terminal() => reject(ErrorCode::Conflict, format!("job {job} has already finished")),
            _ => Ok(rec),
        }
    }

    pub(super) fn cancel_job(&mut self, job: &str, by: &str, time: Time) -> Outcome {
        let Some(rec) = self.jobs.get(job) else { return not_found("job", job) };
        if !self.can_see_job(by, &rec.job) {
            return not_found("job", job);
        }
        if rec.job.state.is_terminal() {
            return reject(ErrorCode::Conflict, format!("job {job} has already {}", rec.job.state.as_str()));
        }
        self.end_job(job, JobState::Cancelled, None, time, "job cancelled".into());
        Ok(Reply::Job(Box::new(self.jobs[job].job.clone())))
    }

    pub(super) fn store_put(
        &mut self,
        job: &str,
        name: String,
        put: StorePut,
        fence: Option<&Fence>,
        time: Time,
    ) -> Outcome {
        match fence {
            Some(f) => {
                self.fenced(job, f)?;
            }
            None => {
                let Some(rec) = self.jobs.get(job) else { return not_found("job", job) };
                if rec.job.state.is_terminal() {
                    return reject(ErrorCode::Conflict, format!("job {job} has already finished"));
                }
            }
        }
        if !valid_name(&name) {
            return reject(ErrorCode::BadRequest, format!("invalid store key {name:?}"));
        }
        if put.value.len() > MAX_STORE_VALUE {
            return reject(ErrorCode::BadRequest, format!("store value {name:?} is over {MAX_STORE_VALUE} bytes"));
        }
        let rec = self.job_mut(job).expect("checked above");
        // Once secret, always secret: a later plain write must not reveal it.
        let secret = put.secret || rec.store.get(&name).is_some_and(|s| s.secret);
        let r = StoreRecord { value: put.value, secret, time };
        let view = r.view(false);
        rec.store.insert(name, r);
        Ok(Reply::Store(view))
    }

    pub(super) fn job_start(&mut self, job: &str, fence: &Fence, time: Time) -> Outcome {
        let state = self.fenced(job, fence)?.job.state;
        if state == JobState::Running {
            // The same start again (its first answer was lost): no change.
            return Ok(Reply::Job(Box::new(self.jobs[job].job.clone())));
        }
        if state != JobState::Assigned {
            return reject(ErrorCode::Conflict, format!("job {job} is {}, not assigned", state.as_str()));
        }
        let rec = self.job_mut(job).expect("fenced");
        rec.set_state(JobState::Running, time, "job started");
        Ok(Reply::Job(Box::new(rec.job.clone())))
    }

    pub(super) fn job_events(
        &mut self,
        job: &str,
        fence: &Fence,
        first: Option<u64>,
        events: EventLog,
        max_log_bytes: Option<u64>,
    ) -> Outcome {
        let lens: Vec<u64> = (0..events.len()).map(|i| events.payload_len(i)).collect();
        let kept = self.take_events(job, fence, first, &lens, max_log_bytes)?;
        let first_dropped = kept.truncates.then(|| events.get(kept.keep)).flatten().map(|e| e.time);
        let rec = self.job_mut(job).expect("fenced");
        rec.events.append_range(events, kept.skip, kept.keep);
        Ok(rec.note_truncation(max_log_bytes, first_dropped))
    }

    pub(super) fn job_chunk(
        &mut self,
        job: &str,
        fence: &Fence,
        first: Option<u64>,
        chunk: ChunkRef,
        max_log_bytes: Option<u64>,
    ) -> Outcome {
        let kept = self.take_events(job, fence, first, &chunk.lens, max_log_bytes)?;
        let rec = self.job_mut(job).expect("fenced");
        let referred = rec.events.append_chunk(chunk.sha, kept.skip, kept.keep);
        let reply = rec.note_truncation(max_log_bytes, kept.truncates.then_some(chunk.time));
        if referred {
            self.refs.add_chunk(chunk.sha);
        }
        Ok(reply)
    }

    /// Which events of an agent batch (with these payload lengths) the
    /// job's log takes: those already taken (a resent batch) are skipped,
    /// and with a size limit, the first that would pass it ends the log.
    /// Counts the kept events and bytes against the job.
    fn take_events(
        &mut self,
        job: &str,
        fence: &Fence,
        first: Option<u64>,
        lens: &[u64],
        max_log_bytes: Option<u64>,
    ) -> Result<Kept, Rejection> {
        self.fenced(job, fence)?;
        let rec = self.job_mut(job).expect("fenced");
        let n = lens.len() as u64;
        let skip = match first {
            None => 0,
            Some(f) if f > rec.agent_events => {
                return reject(
                    ErrorCode::Conflict,
                    format!("events of job {job} start at {f} but {} came before: a gap", rec.agent_events),
                )
            }
            Some(f) => (rec.agent_events - f).min(n),
        };
        rec.agent_events += n - skip;
        let mut keep = n;
        let mut bytes = 0;
        if max_log_bytes.is_some() && rec.log_truncated {
            keep = skip;
        } else {
            for i in skip..n {
                let len = lens[i as usize];
                if max_log_bytes.is_some_and(|max| rec.log_bytes + bytes + len > max) {
                    keep = i;
                    break;
                }
                bytes += len;
            }
        }
        rec.log_bytes += bytes;
        Ok(Kept { skip, keep, truncates: keep < n && !rec.log_truncated })
    }

    pub(super) fn job_output(&mut self, job: &str, fence: &Fence, output: JobOutput) -> Outcome {
        self.fenced(job, fence)?;
        if !output.path.starts_with('/') || output.path.contains('\0') || output.path.split('/').any(|c| c == "..") {
            return reject(ErrorCode::BadRequest, format!("invalid output path {:?}", output.path));
        }
        if let Some(o) = self.jobs[job].outputs.iter().find(|o| o.path == output.path) {
            if o.sha256 == output.sha256 && o.size == output.size {
                // The same upload again (its first outcome was unknown).
                return Ok(Reply::Done);
            }
            return reject(ErrorCode::Conflict, format!("output {:?} was already uploaded", output.path));
        }
        self.refs.add_output(&output);
        self.job_mut(job).expect("fenced").outputs.push(output);
        Ok(Reply::Done)
    }

    pub(super) fn job_finish(&mut self, job: &str, fence: &Fence, failure: Option<String>, time: Time) -> Outcome {
        self.fenced(job, fence)?;
        let (state, why) = match &failure {
            None => (JobState::Completed, "job completed".to_string()),
            Some(f) => (JobState::Failed, format!("job failed: {f}")),
        };
        self.end_job(job, state, failure, time, why);
        Ok(Reply::Job(Box::new(self.jobs[job].job.clone())))
    }

    pub(super) fn purge_job(&mut self, job: &str, time: Time) -> Outcome {
        let Some(rec) = self.job_mut(job) else { return not_found("job", job) };
        if !rec.job.state.is_terminal() {
            return reject(ErrorCode::Conflict, format!("job {job} is {}, not finished", rec.job.state.as_str()));
        }
        if rec.purged.is_some() {
            return Ok(Reply::Done);
        }
        rec.purged = Some(time);
        let outputs = std::mem::take(&mut rec.outputs);
        let chunks: Vec<[u8; 32]> = rec.events.chunks().copied().collect();
        rec.events.clear();
        rec.push_event("control", time, "log and outputs purged (retention)");
        rec.job.times.insert("purged".into(), time);
        self.refs.remove_outputs(&outputs);
        self.refs.remove_chunks(chunks);
        Ok(Reply::Done)
    }

    pub(super) fn job_timeout(&mut self, job: &str, time: Time) -> Outcome {
        let Some(rec) = self.jobs.get(job) else { return not_found("job", job) };
        if !matches!(rec.job.state, JobState::Assigned | JobState::Running) {
            return reject(ErrorCode::Conflict, format!("job {job} is {}, not running", rec.job.state.as_str()));
        }
        let limit = rec.job.timeout_secs.unwrap_or_default();
        let why = format!("the job ran longer than its timeout of {limit} s");
        self.end_job(job, JobState::Failed, Some(why.clone()), time, format!("job failed: {why}"));
        Ok(Reply::Job(Box::new(self.jobs[job].job.clone())))
    }
}
