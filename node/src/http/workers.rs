//! Workers and control switches (admin).

use bm_api::client::Control;
use bm_api::workers::Worker;
use bm_api::{ApiError, ErrorCode};

use super::users::unexpected;
use super::Ctx;
use crate::sm::{Command, Reply};

/// Query of the workers list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WorkersQuery {
    /// Include destroyed workers.
    #[serde(default)]
    pub all: bool,
}

/// Lists workers (admin).
#[utoipa::path(get, operation_id = "workers_list", path = "/v1/workers", tag = "workers", params(WorkersQuery), responses((status = 200, body = Vec<Worker>)))]
pub async fn list(ctx: Ctx, raw_query: String) -> Result<Vec<Worker>, ApiError> {
    ctx.admin()?;
    let q: WorkersQuery = super::reply::query(&raw_query)?;
    Ok(ctx.node.read(|s| {
        s.workers.values().filter(|w| q.all || !w.worker.state.is_terminal()).map(|w| w.worker.clone()).collect()
    }))
}

/// Holds, releases or recycles a worker (admin).
#[utoipa::path(post, operation_id = "workers_action", path = "/v1/workers/{worker}/{action}", tag = "workers",
    params(("worker" = String, Path), ("action" = String, Path, description = "hold, release or recycle")),
    responses((status = 200, body = Worker), (status = 404, body = ApiError)))]
pub async fn action(ctx: Ctx, worker: String, action: String) -> Result<Worker, ApiError> {
    ctx.admin()?;
    let cmd = match action.as_str() {
        "hold" => Command::HoldWorker { worker, hold: true },
        "release" => Command::HoldWorker { worker, hold: false },
        "recycle" => Command::RecycleWorker { worker, time: chrono::Utc::now() },
        other => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no worker action {other:?}; use hold, release or recycle"),
            ))
        }
    };
    match ctx.node.propose(cmd).await? {
        Reply::Worker(w) => Ok(w),
        other => Err(unexpected(other)),
    }
}

/// Reads the control switches (admin).
#[utoipa::path(get, operation_id = "workers_show", path = "/v1/control", tag = "control", responses((status = 200, body = Control)))]
pub async fn show(ctx: Ctx) -> Result<Control, ApiError> {
    ctx.admin()?;
    Ok(ctx.node.read(|s| Control { hold: s.control.hold }))
}

/// Holds (`hold`) or resumes (`resume`) the start of new work (admin).
#[utoipa::path(post, operation_id = "workers_set", path = "/v1/control/{verb}", tag = "control", params(("verb" = String, Path, description = "hold or resume")),
    responses((status = 200, body = Control)))]
pub async fn set(ctx: Ctx, verb: String) -> Result<Control, ApiError> {
    ctx.admin()?;
    let hold = match verb.as_str() {
        "hold" => true,
        "resume" => false,
        other => {
            return Err(ApiError::new(ErrorCode::NotFound, format!("no control verb {other:?}; use hold or resume")))
        }
    };
    match ctx.node.propose(Command::SetHold { hold }).await? {
        Reply::Control(c) => Ok(c),
        other => Err(unexpected(other)),
    }
}
