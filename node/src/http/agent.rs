//! The agent's API: bootstrap, instructions (the heartbeat), and reports
//! about its job, each under the assignment's fencing epoch.

use std::collections::BTreeMap;
use std::time::Duration;

use bm_api::agent::{
    AgentStorePut, AssignedFactory, Assignment, BootstrapRequest, Bootstrapped, EventsUpload, Fenced, Finish, InputSet,
    Instruction,
};
use bm_api::jobs::{JobOutput, JobState, StorePut};
use bm_api::workers::WorkerState;
use bm_api::{ApiError, ErrorCode};
use bytes::Bytes;
use tokio::time::Instant;
use warp::reply::Response;

use super::users::unexpected;
use super::{reply, Ctx};
use crate::auth::{hash_token, Caller};
use crate::chunks::INLINE_MAX;
use crate::sm::command::ChunkRef;
use crate::sm::{Command, EventLog, Fence, Reply, State};

/// Longest instruction long-poll.
const MAX_WAIT: u64 = bm_api::patience::MAX_WAIT_SECS;

/// The calling agent's worker id; every such call is a heartbeat.
fn worker(ctx: &Ctx) -> Result<String, ApiError> {
    match ctx.caller()? {
        Caller::Worker(id) => {
            ctx.node.heartbeats().beat(&id);
            Ok(id)
        }
        _ => Err(ApiError::new(ErrorCode::Forbidden, "this endpoint is for agents")),
    }
}

/// Exchanges a single-use bootstrap token for a worker credential.
#[utoipa::path(post, operation_id = "agent_bootstrap", path = "/v1/agent/bootstrap", tag = "agent",
    request_body = BootstrapRequest, responses((status = 200, body = Bootstrapped), (status = 401, body = ApiError)))]
pub async fn bootstrap(ctx: Ctx, raw: Bytes) -> Result<Bootstrapped, ApiError> {
    bootstrap_with(&ctx, reply::body(&raw)?).await
}

/// [`bootstrap`] with its request parsed (shared with the agent link).
pub async fn bootstrap_with(ctx: &Ctx, req: BootstrapRequest) -> Result<Bootstrapped, ApiError> {
    // Derived, not random: an agent whose answer was lost asks again with
    // the same bootstrap token and gets the same credential.
    let token = worker_token(&req.bootstrap_token);
    let cmd = Command::BootstrapWorker {
        bootstrap_hash: hash_token(&req.bootstrap_token),
        token_hash: hash_token(&token),
        time: chrono::Utc::now(),
    };
    match ctx.node.propose(cmd).await? {
        Reply::Worker(w) => Ok(Bootstrapped { worker: w.id, token }),
        other => Err(unexpected(other)),
    }
}

/// The worker credential a bootstrap token exchanges for.
fn worker_token(bootstrap_token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("bm worker credential\0{bootstrap_token}").as_bytes()))
}

fn instruction(s: &State, worker: &str) -> Result<Instruction, ApiError> {
    let Some(w) = s.workers.get(worker) else {
        return Err(ApiError::new(ErrorCode::Unauthorized, "this worker no longer exists"));
    };
    if matches!(w.worker.state, WorkerState::Destroying | WorkerState::Destroyed) {
        let reason = match w.worker.job.as_ref().and_then(|j| s.jobs.get(j)) {
            Some(j) if j.job.state == JobState::Cancelled => "the job was cancelled".to_string(),
            Some(j) if j.job.state.is_terminal() => format!("the job is {}", j.job.state.as_str()),
            _ => "the worker is being destroyed".to_string(),
        };
        return Ok(Instruction::Stop { reason });
    }
    let Some(job) = w.worker.job.as_ref().and_then(|j| s.jobs.get(j)) else { return Ok(Instruction::Wait) };
    if job.job.state.is_terminal() {
        return Ok(Instruction::Stop { reason: format!("the job is {}", job.job.state.as_str()) });
    }
    let inputs = job
        .job
        .depends
        .iter()
        .filter(|d| d.copy_outputs)
        .map(|d| InputSet {
            name: d.name.clone(),
            job: d.prior_job.clone(),
            outputs: s.jobs.get(&d.prior_job).map(|p| p.outputs.clone()).unwrap_or_default(),
        })
        .collect();
    let store: BTreeMap<String, String> = job.store.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect();
    let factory = w
        .worker
        .factory
        .as_ref()
        .and_then(|f| s.factories.get(f))
        .map(|f| AssignedFactory { id: f.factory.id.clone(), name: f.factory.name.clone() });
    Ok(Instruction::Run(Box::new(Assignment { job: job.job.clone(), epoch: w.worker.epoch, store, inputs, factory })))
}

/// Query of the instruction long-poll.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Seconds to wait for something other than `wait` (at most 60).
    #[serde(default)]
    pub wait: u64,
}

/// What to do next: wait, run a job, or stop. Also the agent's heartbeat.
#[utoipa::path(get, operation_id = "agent_instruction", path = "/v1/agent/instruction", tag = "agent", params(WaitQuery),
    responses((status = 200, body = Instruction)))]
pub async fn next(ctx: Ctx, raw_query: String) -> Result<Instruction, ApiError> {
    let q: WaitQuery = reply::query(&raw_query)?;
    next_within(&ctx, q.wait).await
}

/// [`next`], waiting up to `wait` seconds (shared with the agent link).
pub async fn next_within(ctx: &Ctx, wait: u64) -> Result<Instruction, ApiError> {
    let me = worker(ctx)?;
    let deadline = Instant::now() + Duration::from_secs(wait.min(MAX_WAIT));
    let mut watch = ctx.node.watch();
    loop {
        watch.borrow_and_update();
        let i = ctx.node.read(|s| instruction(s, &me))?;
        if i != Instruction::Wait || Instant::now() >= deadline {
            return Ok(i);
        }
        if tokio::time::timeout_at(deadline, watch.changed()).await.is_err() {
            return Ok(Instruction::Wait);
        }
    }
}

/// Proposes a command about the caller's job under `epoch`.
async fn fenced(ctx: &Ctx, epoch: u64, cmd: impl FnOnce(Fence) -> Command) -> Result<Reply, ApiError> {
    let worker = worker(ctx)?;
    ctx.node.propose(cmd(Fence { worker, epoch })).await
}

/// The job started.
#[utoipa::path(post, operation_id = "agent_start", path = "/v1/agent/jobs/{job}/start", tag = "agent",
    params(("job" = String, Path)), request_body = Fenced, responses((status = 200), (status = 409, body = ApiError)))]
pub async fn start(ctx: Ctx, job: String, raw: Bytes) -> Result<serde_json::Value, ApiError> {
    let f: Fenced = reply::body(&raw)?;
    start_with(&ctx, job, f.epoch).await?;
    Ok(serde_json::json!({}))
}

/// [`start`] with its request parsed (shared with the agent link).
pub async fn start_with(ctx: &Ctx, job: String, epoch: u64) -> Result<(), ApiError> {
    let time = chrono::Utc::now();
    fenced(ctx, epoch, |fence| Command::JobStart { job, fence, time }).await?;
    Ok(())
}

/// Log lines and control messages, in order.
#[utoipa::path(post, operation_id = "agent_events", path = "/v1/agent/jobs/{job}/events", tag = "agent",
    params(("job" = String, Path)), request_body = EventsUpload, responses((status = 200), (status = 409, body = ApiError)))]
pub async fn events(ctx: Ctx, job: String, raw: Bytes) -> Result<serde_json::Value, ApiError> {
    let next = events_with(&ctx, job, reply::body(&raw)?).await?;
    Ok(serde_json::json!({ "next_seq": next }))
}

/// [`events`] with its request parsed (shared with the agent link); answers
/// the sequence number the next event will get.
pub async fn events_with(ctx: &Ctx, job: String, up: EventsUpload) -> Result<u64, ApiError> {
    let events = EventLog::from_events(up.events)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("events of job {job}: {e}")))?;
    events_packed(ctx, job, up.epoch, up.first, events).await
}

/// [`events_with`] for a batch already packed (the agent link sends them
/// so); `first` as in [`EventsUpload::first`].
pub async fn events_packed(
    ctx: &Ctx,
    job: String,
    epoch: u64,
    first: Option<u64>,
    events: EventLog,
) -> Result<u64, ApiError> {
    let max_log_bytes = Some(ctx.node.config().limits.max_log_bytes);
    let cmd: Box<dyn FnOnce(Fence) -> Command + Send> = if events.packed_len() <= INLINE_MAX {
        Box::new(move |fence| Command::JobEvents { job, fence, first, events, max_log_bytes })
    } else {
        // Only a worker's own batches are stored (the fence is checked when
        // the reference is applied; a stale one leaves an unreferenced
        // chunk for garbage collection).
        worker(ctx)?;
        let lens = (0..events.len()).map(|i| events.payload_len(i)).collect();
        let time = events.get(0).map(|e| e.time).unwrap_or_else(chrono::Utc::now);
        let sha = crate::chunks::replicate::store(&ctx.node, events).await?;
        let chunk = ChunkRef { sha, lens, time };
        Box::new(move |fence| Command::JobChunk { job, fence, first, chunk, max_log_bytes })
    };
    match fenced(ctx, epoch, cmd).await? {
        Reply::Appended(next) => Ok(next),
        other => Err(unexpected(other)),
    }
}

/// The end of the job.
#[utoipa::path(post, operation_id = "agent_finish", path = "/v1/agent/jobs/{job}/finish", tag = "agent",
    params(("job" = String, Path)), request_body = Finish, responses((status = 200), (status = 409, body = ApiError)))]
pub async fn finish(ctx: Ctx, job: String, raw: Bytes) -> Result<serde_json::Value, ApiError> {
    finish_with(&ctx, job, reply::body(&raw)?).await?;
    Ok(serde_json::json!({}))
}

/// [`finish`] with its request parsed (shared with the agent link).
pub async fn finish_with(ctx: &Ctx, job: String, f: Finish) -> Result<(), ApiError> {
    let time = chrono::Utc::now();
    fenced(ctx, f.epoch, |fence| Command::JobFinish { job, fence, failure: f.failure, time }).await?;
    Ok(())
}

/// The job sets a job-store value (`bmat store put`).
#[utoipa::path(put, operation_id = "agent_store_put", path = "/v1/agent/jobs/{job}/store/{name}", tag = "agent",
    params(("job" = String, Path), ("name" = String, Path)), request_body = AgentStorePut,
    responses((status = 200), (status = 409, body = ApiError)))]
pub async fn store_put(ctx: Ctx, job: String, name: String, raw: Bytes) -> Result<serde_json::Value, ApiError> {
    store_put_with(&ctx, job, name, reply::body(&raw)?).await?;
    Ok(serde_json::json!({}))
}

/// [`store_put`] with its request parsed (shared with the agent link).
pub async fn store_put_with(ctx: &Ctx, job: String, name: String, p: AgentStorePut) -> Result<(), ApiError> {
    let worker = worker(ctx)?;
    let put = StorePut { value: p.value, secret: p.secret };
    let cmd =
        Command::StorePut { job, name, put, fence: Some(Fence { worker, epoch: p.epoch }), time: chrono::Utc::now() };
    ctx.node.propose(cmd).await?;
    Ok(())
}

/// Query of an output upload.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OutputQuery {
    /// The assignment's epoch.
    pub epoch: u64,
    /// Absolute path of the file in the worker.
    pub path: String,
    /// The file's length, for an upload sent chunked (without
    /// `Content-Length`) as it is read; when both are given they must agree.
    #[serde(default)]
    pub size: Option<u64>,
}

/// Uploads one output file (the body is its bytes, streamed to the blob
/// store as they arrive). Its length is `Content-Length` or, for a chunked
/// body, the `size` query; the output is stored only if exactly that many
/// bytes arrive and the body ends cleanly.
#[utoipa::path(put, operation_id = "agent_output", path = "/v1/agent/jobs/{job}/outputs", tag = "agent",
    params(("job" = String, Path), OutputQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = JobOutput), (status = 409, body = ApiError)))]
pub async fn output<B: bytes::Buf>(
    ctx: Ctx,
    job: String,
    raw_query: String,
    length: Option<u64>,
    body: impl futures::Stream<Item = Result<B, warp::Error>> + Send + Unpin + 'static,
) -> Result<JobOutput, ApiError> {
    let q: OutputQuery = reply::query(&raw_query)?;
    let refuse = |why: String| ApiError::new(ErrorCode::BadRequest, format!("cannot store output {}: {why}", q.path));
    let size = match (length, q.size) {
        (Some(l), Some(s)) if l != s => return Err(refuse(format!("Content-Length {l} and size {s} disagree"))),
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => {
            return Err(refuse(
                "its length is unknown: send Content-Length, or size in the query of a chunked upload".into(),
            ))
        }
    };
    let me = output_check(&ctx, &job, &q, size)?;
    let pieces = super::upload_body::pieces(body, size, format!("output {}", q.path));
    output_store(&ctx, me, job, q, size, pieces).await
}

/// Refuses an output before its bytes are taken: a stale epoch, too many
/// outputs (those committed and those still coming in on this node), or
/// `size` over the per-file limit (shared with the agent link). Answers
/// the calling worker and the upload's place among those under way, both
/// for [`output_store`].
pub fn output_check(
    ctx: &Ctx,
    job: &str,
    q: &OutputQuery,
    size: u64,
) -> Result<(String, crate::uploads::Upload), ApiError> {
    let me = worker(ctx)?;
    let outputs = ctx.node.read(|s| check_fence(s, job, &me, q.epoch).map(|_| s.jobs[job].outputs.len()))?;
    let limits = &ctx.node.config().limits;
    let upload = ctx.node.uploads().begin(job, |coming| {
        if outputs + coming >= limits.max_outputs {
            let more = if coming > 0 { format!(" (and {coming} more on the way)") } else { String::new() };
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!(
                    "cannot store output {}: job {job} already has {outputs} outputs{more}, the most a job may keep",
                    q.path
                ),
            ));
        }
        Ok(())
    })?;
    if size > limits.max_output_bytes {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "cannot store output {}: {size} bytes is over the limit of {} bytes per file",
                q.path, limits.max_output_bytes
            ),
        ));
    }
    Ok((me, upload))
}

/// Stores the `size` bytes of an output [`output_check`] passed (for the
/// worker and upload it answered) on a quorum as they arrive in `pieces`,
/// then commits its reference (shared with the agent link).
pub async fn output_store(
    ctx: &Ctx,
    (me, _upload): (String, crate::uploads::Upload),
    job: String,
    q: OutputQuery,
    size: u64,
    pieces: impl futures::Stream<Item = Result<Bytes, ApiError>> + Unpin,
) -> Result<JobOutput, ApiError> {
    let id = crate::blobs::placement::draw_id(ctx.node.id(), &crate::cluster::quorum::voters(&ctx.node));
    let sha256 = crate::blobs::replicate::store_stream(&ctx.node, &id, size, pieces)
        .await
        .map_err(|e| ApiError::new(e.code, format!("cannot store output {}: {}", q.path, e.message)))?;
    let output = JobOutput { id, path: q.path, size, sha256 };
    ctx.node
        .propose(Command::JobOutput { job, fence: Fence { worker: me, epoch: q.epoch }, output: output.clone() })
        .await?;
    Ok(output)
}

/// Refuses an output upload whose declared length is over the limit
/// before its body is read, naming the file and the limit.
pub fn output_size_guard(max: u64) -> impl warp::Filter<Extract = (), Error = warp::Rejection> + Clone {
    use warp::Filter;
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and(warp::header::optional::<u64>("content-length"))
        .and_then(move |raw: String, len: Option<u64>| async move {
            match len {
                Some(n) if n > max => {
                    let path = reply::query::<OutputQuery>(&raw).map(|q| q.path).unwrap_or_default();
                    let e = ApiError::new(
                        ErrorCode::BadRequest,
                        format!("cannot store output {path}: {n} bytes is over the limit of {max} bytes per file"),
                    );
                    Err(warp::reject::custom(reply::Refused(e)))
                }
                _ => Ok(()),
            }
        })
        .untuple_one()
}

fn check_fence(s: &State, job: &str, worker: &str, epoch: u64) -> Result<(), ApiError> {
    let Some(j) = s.jobs.get(job) else { return Err(ApiError::new(ErrorCode::NotFound, format!("no job {job:?}"))) };
    if j.job.worker.as_deref() != Some(worker) || j.job.epoch != epoch {
        return Err(ApiError::new(
            ErrorCode::StaleEpoch,
            format!("epoch {epoch} is not the current assignment of {job}"),
        ));
    }
    Ok(())
}

/// Query carrying the epoch.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EpochQuery {
    /// The assignment's epoch.
    pub epoch: u64,
}

/// Downloads an output of a job the assigned job depends on.
#[utoipa::path(get, operation_id = "agent_input", path = "/v1/agent/jobs/{job}/inputs/{output}", tag = "agent",
    params(("job" = String, Path), ("output" = String, Path), EpochQuery),
    responses((status = 200, content_type = "application/octet-stream"), (status = 404, body = ApiError)))]
pub async fn input(ctx: Ctx, job: String, output: String, raw_query: String) -> Response {
    let found = reply::query::<EpochQuery>(&raw_query).and_then(|q| input_output(&ctx, &job, &output, q.epoch));
    match found {
        // Streamed from disk or a peer, never whole in memory.
        Ok(out) => super::blob_reply::serve(&ctx.node, &out.sha256, out.size, None).await,
        Err(e) => reply::error(&e),
    }
}

/// The output `output` of a job `job` depends on, for the worker
/// assigned `job` under `epoch`.
fn input_output(ctx: &Ctx, job: &str, output: &str, epoch: u64) -> Result<JobOutput, ApiError> {
    let me = worker(ctx)?;
    ctx.node.read(|s| {
        check_fence(s, job, &me, epoch)?;
        s.jobs[job]
            .job
            .depends
            .iter()
            .filter_map(|d| s.jobs.get(&d.prior_job))
            .flat_map(|p| p.outputs.iter())
            .find(|o| o.id == output)
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no input {output:?} for job {job}")))
    })
}

/// An output of a job `job` depends on, as its size and a stream of its
/// bytes from this node's disk or a peer (the agent link's input call;
/// never whole in memory). An empty output has no stream.
pub async fn input_stream(
    ctx: &Ctx,
    job: &str,
    output: &str,
    epoch: u64,
) -> Result<(u64, Option<crate::agent_link::dispatch::Trailer>), ApiError> {
    use futures::StreamExt as _;
    let out = input_output(ctx, job, output, epoch)?;
    if out.size == 0 {
        return Ok((0, None));
    }
    let stream = crate::blobs::stream::open(&ctx.node, &out.sha256, 0, out.size)
        .await
        .map_err(|e| ApiError::new(e.code, format!("input {} unreadable: {}", out.path, e.message)))?;
    Ok((out.size, Some(stream.boxed())))
}
