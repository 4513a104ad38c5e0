//! Targets.

use bm_api::targets::{Target, TargetCreate, TargetRedirect};
use bm_api::ApiError;
use bytes::Bytes;

use super::users::unexpected;
use super::{reply, Ctx};
use crate::sm::{Command, Reply};

/// Lists targets (any user).
#[utoipa::path(get, operation_id = "targets_list", path = "/v1/targets", tag = "targets", responses((status = 200, body = Vec<Target>)))]
pub async fn list(ctx: Ctx) -> Result<Vec<Target>, ApiError> {
    ctx.caller()?;
    Ok(ctx.node.read(|s| s.targets.values().cloned().collect()))
}

/// Creates a target (admin).
#[utoipa::path(post, operation_id = "targets_create", path = "/v1/targets", tag = "targets", request_body = TargetCreate,
    responses((status = 200, body = Target), (status = 409, body = ApiError)))]
pub async fn create(ctx: Ctx, raw: Bytes) -> Result<Target, ApiError> {
    ctx.admin()?;
    let spec: TargetCreate = reply::body(&raw)?;
    match ctx.node.propose(Command::CreateTarget { id: ulid::Ulid::new().to_string(), spec }).await? {
        Reply::Target(t) => Ok(t),
        other => Err(unexpected(other)),
    }
}

/// Sets or clears a target's redirect (admin).
#[utoipa::path(put, operation_id = "targets_redirect", path = "/v1/targets/{target}/redirect", tag = "targets", request_body = TargetRedirect,
    params(("target" = String, Path)), responses((status = 200, body = Target), (status = 404, body = ApiError)))]
pub async fn redirect(ctx: Ctx, target: String, raw: Bytes) -> Result<Target, ApiError> {
    ctx.admin()?;
    let r: TargetRedirect = reply::body(&raw)?;
    match ctx.node.propose(Command::SetRedirect { target, redirect: r.redirect }).await? {
        Reply::Target(t) => Ok(t),
        other => Err(unexpected(other)),
    }
}
