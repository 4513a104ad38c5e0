//! Jobs: submit, list, show, cancel, the job store and outputs.

use std::collections::BTreeMap;
use std::ops::Bound;

use bm_api::jobs::{Job, JobListQuery, JobOutput, JobSubmit, StorePut, StoreValue};
use bm_api::{ApiError, ErrorCode};
use bytes::Bytes;
use warp::reply::Response;

use super::users::unexpected;
use super::{reply, Ctx};
use crate::node::READ_PAGE;
use crate::sm::{Command, JobRecord, Reply, State};

/// Most jobs one list returns when no limit is given.
const DEFAULT_LIST_LIMIT: usize = 1000;

/// Submits a job.
#[utoipa::path(post, operation_id = "jobs_submit", path = "/v1/jobs", tag = "jobs", request_body = JobSubmit,
    responses((status = 200, body = Job), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub async fn submit(ctx: Ctx, raw: Bytes) -> Result<Job, ApiError> {
    let caller = ctx.caller()?;
    let owner = caller.owner()?.to_string();
    let submit: JobSubmit = reply::body(&raw)?;
    let cmd = Command::SubmitJob { id: ulid::Ulid::new().to_string(), owner, submit, time: chrono::Utc::now() };
    if ctx.node.config().test_only.ack_before_commit {
        return Ok(ack_before_commit(&ctx, cmd));
    }
    match ctx.node.propose(cmd).await? {
        Reply::Job(j) => Ok(*j),
        other => Err(unexpected(other)),
    }
}

/// The deliberate bug of `test_only.ack_before_commit`: answers as if the
/// job were committed and proposes it in the background, after a delay
/// long enough for a fault to strike in between.
fn ack_before_commit(ctx: &Ctx, cmd: Command) -> Job {
    let Command::SubmitJob { id, owner, submit, time } = &cmd else { unreachable!("a submit") };
    let job = Job {
        id: id.clone(),
        owner: owner.clone(),
        name: submit.name.clone(),
        target: submit.target.clone(),
        target_real: submit.target.clone(),
        state: bm_api::jobs::JobState::Queued,
        failure: None,
        tasks: submit.tasks.clone(),
        output_rules: submit.output_rules.clone(),
        inputs: submit.inputs.clone(),
        tags: submit.tags.clone(),
        depends: Vec::new(),
        worker: None,
        epoch: 0,
        timeout_secs: submit.timeout_secs,
        times: [("submit".to_string(), *time)].into(),
        publish: submit.publish.clone(),
        retry_on_worker_loss: submit.retry_on_worker_loss,
    };
    let node = ctx.node.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let _ = node.propose(cmd).await;
    });
    job
}

/// Lists jobs, newest first: the caller's own, or everyone's for admins.
#[utoipa::path(get, operation_id = "jobs_list", path = "/v1/jobs", tag = "jobs", params(JobListQuery), responses((status = 200, body = Vec<Job>)))]
pub async fn list(ctx: Ctx, raw_query: String) -> Result<Vec<Job>, ApiError> {
    let caller = ctx.caller()?;
    let me = caller.owner()?.to_string();
    let q: JobListQuery = reply::query(&raw_query)?;
    let tag = match &q.tag {
        Some(t) => match t.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => return Err(ApiError::new(ErrorCode::BadRequest, format!("tag filter {t:?} must be KEY=VALUE"))),
        },
        None => None,
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    let owner = q.owner.as_ref().map(|o| ctx.node.read(|s| s.user(o).map(|u| u.user.id.clone())).unwrap_or(o.clone()));
    let wanted = |s: &State, j: &Job| {
        s.can_see_job(&me, j)
            && q.state.is_none_or(|st| j.state == st)
            && owner.as_ref().is_none_or(|o| &j.owner == o)
            && q.target.as_ref().is_none_or(|t| &j.target == t || &j.target_real == t)
            && tag.as_ref().is_none_or(|(k, v)| j.tags.get(k) == Some(v))
    };
    // Newest first, a page of jobs per hold of the state's lock: a filter
    // that few jobs pass must not stop applying while it looks at all.
    let (mut found, mut before) = (Vec::new(), None::<String>);
    while found.len() < limit {
        let (page, last) = ctx.node.read(|s| {
            let upto = before.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let mut last = None;
            let mut page = Vec::new();
            for (id, r) in s.jobs.range::<_, str>((Bound::Unbounded, upto)).rev().take(READ_PAGE) {
                last = Some(id.clone());
                if wanted(s, &r.job) && found.len() + page.len() < limit {
                    page.push(r.job.clone());
                }
            }
            (page, last)
        });
        found.extend(page);
        match last {
            Some(id) => before = Some(id),
            None => break,
        }
    }
    Ok(found)
}

/// The id of the user making the call, as [`visible`] takes it. Found
/// before reading the state, since it reads the state itself.
pub fn me(ctx: &Ctx) -> Result<String, ApiError> {
    Ok(ctx.caller()?.owner()?.to_string())
}

/// Finds a job the caller `me` (see [`me`]) may see.
pub fn visible<'a>(s: &'a State, me: &str, id: &str) -> Result<&'a JobRecord, ApiError> {
    match s.jobs.get(id) {
        Some(r) if s.can_see_job(me, &r.job) => Ok(r),
        _ => Err(ApiError::new(ErrorCode::NotFound, format!("no job {id:?}"))),
    }
}

/// Shows a job (a linearizable read: never older than a write acknowledged before it).
#[utoipa::path(get, operation_id = "jobs_show", path = "/v1/jobs/{job}", tag = "jobs", params(("job" = String, Path)),
    responses((status = 200, body = Job), (status = 404, body = ApiError)))]
pub async fn show(ctx: Ctx, job: String) -> Result<Job, ApiError> {
    let me = me(&ctx)?;
    ctx.node.read_linearizable(|s| visible(s, &me, &job).map(|r| r.job.clone())).await?
}

/// Cancels a job that has not finished.
#[utoipa::path(post, operation_id = "jobs_cancel", path = "/v1/jobs/{job}/cancel", tag = "jobs", params(("job" = String, Path)),
    responses((status = 200, body = Job), (status = 409, body = ApiError)))]
pub async fn cancel(ctx: Ctx, job: String) -> Result<Job, ApiError> {
    let by = ctx.caller()?.owner()?.to_string();
    match ctx.node.propose(Command::CancelJob { job, by, time: chrono::Utc::now() }).await? {
        Reply::Job(j) => Ok(*j),
        other => Err(unexpected(other)),
    }
}

/// Lists the job store; secret values are hidden.
#[utoipa::path(get, operation_id = "jobs_store_list", path = "/v1/jobs/{job}/store", tag = "jobs", params(("job" = String, Path)),
    responses((status = 200, body = BTreeMap<String, StoreValue>)))]
pub async fn store_list(ctx: Ctx, job: String) -> Result<BTreeMap<String, StoreValue>, ApiError> {
    let me = me(&ctx)?;
    ctx.node
        .read_found(|s| Ok(visible(s, &me, &job)?.store.iter().map(|(k, v)| (k.clone(), v.view(false))).collect()))
        .await
}

/// Reads one job-store value; a secret's value is hidden.
#[utoipa::path(get, operation_id = "jobs_store_get", path = "/v1/jobs/{job}/store/{name}", tag = "jobs", params(("job" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = StoreValue), (status = 404, body = ApiError)))]
pub async fn store_get(ctx: Ctx, job: String, name: String) -> Result<StoreValue, ApiError> {
    let me = me(&ctx)?;
    ctx.node
        .read_found(|s| {
            visible(s, &me, &job)?
                .store
                .get(&name)
                .map(|v| v.view(false))
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("job {job} has no store value {name:?}")))
        })
        .await
}

/// Writes one job-store value while the job has not finished.
#[utoipa::path(put, operation_id = "jobs_store_put", path = "/v1/jobs/{job}/store/{name}", tag = "jobs", request_body = StorePut,
    params(("job" = String, Path), ("name" = String, Path)), responses((status = 200, body = StoreValue)))]
pub async fn store_put(ctx: Ctx, job: String, name: String, raw: Bytes) -> Result<StoreValue, ApiError> {
    let me = me(&ctx)?;
    ctx.node.read_found(|s| visible(s, &me, &job).map(|_| ())).await?;
    let put: StorePut = reply::body(&raw)?;
    let cmd = Command::StorePut { job, name, put, fence: None, time: chrono::Utc::now() };
    match ctx.node.propose(cmd).await? {
        Reply::Store(v) => Ok(v),
        other => Err(unexpected(other)),
    }
}

/// Lists a job's outputs.
#[utoipa::path(get, operation_id = "jobs_outputs", path = "/v1/jobs/{job}/outputs", tag = "jobs", params(("job" = String, Path)),
    responses((status = 200, body = Vec<JobOutput>)))]
pub async fn outputs(ctx: Ctx, job: String) -> Result<Vec<JobOutput>, ApiError> {
    let me = me(&ctx)?;
    ctx.node.read_found(|s| Ok(visible(s, &me, &job)?.outputs.clone())).await
}

/// Downloads one output (by id or path), whole or one byte range
/// (`Range: bytes=A-B`); the ETag is its sha256.
#[utoipa::path(get, operation_id = "jobs_download", path = "/v1/jobs/{job}/outputs/{output}", tag = "jobs", params(("job" = String, Path), ("output" = String, Path)),
    responses((status = 200, description = "the file's bytes", content_type = "application/octet-stream"), (status = 206, description = "the requested range"), (status = 404, body = ApiError), (status = 416, body = ApiError)))]
pub async fn download(ctx: Ctx, job: String, output: String, range: Option<String>) -> Response {
    let me = match me(&ctx) {
        Ok(me) => me,
        Err(e) => return reply::error(&e),
    };
    let found = ctx
        .node
        .read_found(|s| {
            let rec = visible(s, &me, &job)?;
            rec.outputs
                .iter()
                .find(|o| o.id == output || o.path == output)
                .cloned()
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("job {job} has no output {output:?}")))
        })
        .await;
    match found {
        Ok(out) => super::blob_reply::serve(&ctx.node, &out.sha256, out.size, range).await,
        Err(e) => reply::error(&e),
    }
}
