//! Factories: registration (admin) and the factory's own API.

use bm_api::factories::{Factory, FactoryCreate, FactoryCreated, InstanceReport, LeaseRequest, WorkerLease};
use bm_api::workers::{Worker, WorkerState};
use bm_api::ApiError;
use bytes::Bytes;

use super::users::unexpected;
use super::{reply, Ctx};
use crate::auth::{hash_token, new_token};
use crate::sm::{Command, Reply};

/// Lists factories (admin).
#[utoipa::path(get, operation_id = "factories_list", path = "/v1/factories", tag = "factories", responses((status = 200, body = Vec<Factory>)))]
pub async fn list(ctx: Ctx) -> Result<Vec<Factory>, ApiError> {
    ctx.admin()?;
    Ok(ctx.node.read(|s| s.factories.values().map(|f| f.factory.clone()).collect()))
}

/// Registers a factory and returns its token, once (admin).
#[utoipa::path(post, operation_id = "factories_create", path = "/v1/factories", tag = "factories", request_body = FactoryCreate,
    responses((status = 200, body = FactoryCreated), (status = 409, body = ApiError)))]
pub async fn create(ctx: Ctx, raw: Bytes) -> Result<FactoryCreated, ApiError> {
    ctx.admin()?;
    let req: FactoryCreate = reply::body(&raw)?;
    let token = new_token();
    let cmd = Command::CreateFactory {
        id: ulid::Ulid::new().to_string(),
        name: req.name,
        token_hash: hash_token(&token),
        time: chrono::Utc::now(),
    };
    match ctx.node.propose(cmd).await? {
        Reply::Factory(factory) => Ok(FactoryCreated { factory, token }),
        other => Err(unexpected(other)),
    }
}

/// Enables a factory (admin).
#[utoipa::path(post, operation_id = "factories_enable", path = "/v1/factories/{factory}/enable", tag = "factories", params(("factory" = String, Path)),
    responses((status = 200, body = Factory)))]
pub async fn enable(ctx: Ctx, factory: String) -> Result<Factory, ApiError> {
    set_enabled(ctx, factory, true).await
}

/// Disables a factory (admin): it leases nothing new.
#[utoipa::path(post, operation_id = "factories_disable", path = "/v1/factories/{factory}/disable", tag = "factories", params(("factory" = String, Path)),
    responses((status = 200, body = Factory)))]
pub async fn disable(ctx: Ctx, factory: String) -> Result<Factory, ApiError> {
    set_enabled(ctx, factory, false).await
}

async fn set_enabled(ctx: Ctx, factory: String, enabled: bool) -> Result<Factory, ApiError> {
    ctx.admin()?;
    match ctx.node.propose(Command::SetFactoryEnabled { factory, enabled }).await? {
        Reply::Factory(f) => Ok(f),
        other => Err(unexpected(other)),
    }
}

/// Query of a lease: how long to wait for a request to come.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LeaseQuery {
    /// Seconds to wait for a worker request when there is none (at most 30);
    /// lets a factory hear of new work at once without polling.
    #[serde(default)]
    pub wait: u64,
}

/// Longest lease long-poll.
const MAX_LEASE_WAIT: u64 = 30;

/// Factory: takes the oldest waiting worker request for one of its targets.
/// The answer carries the agent's single-use bootstrap token.
#[utoipa::path(post, operation_id = "factories_lease", path = "/v1/factory/lease", tag = "factory", request_body = LeaseRequest,
    params(LeaseQuery), responses((status = 200, body = Option<WorkerLease>)))]
pub async fn lease(ctx: Ctx, raw_query: String, raw: Bytes) -> Result<Option<WorkerLease>, ApiError> {
    let factory = ctx.caller()?.factory()?.to_string();
    let q: LeaseQuery = reply::query(&raw_query)?;
    let req: LeaseRequest = reply::body(&raw)?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(q.wait.min(MAX_LEASE_WAIT));
    let mut watch = ctx.node.watch();
    loop {
        watch.borrow_and_update();
        let waiting = ctx.node.read(|s| {
            s.live_workers().any(|w| w.worker.state == WorkerState::Requested && req.targets.contains(&w.worker.target))
        });
        if waiting {
            break;
        }
        if tokio::time::timeout_at(deadline, watch.changed()).await.is_err() {
            return Ok(None);
        }
    }
    let token = new_token();
    let cmd = Command::LeaseWorker {
        factory,
        targets: req.targets,
        bootstrap_hash: hash_token(&token),
        time: chrono::Utc::now(),
    };
    match ctx.node.propose(cmd).await? {
        Reply::Lease(l) => {
            Ok(l.map(|l| WorkerLease { bootstrap_token: token, agent_link: crate::agent_link::info(&ctx.node), ..l }))
        }
        other => Err(unexpected(other)),
    }
}

/// Factory: reports the instance it made for a worker.
#[utoipa::path(post, operation_id = "factories_instance", path = "/v1/factory/workers/{worker}/instance", tag = "factory", request_body = InstanceReport,
    params(("worker" = String, Path)), responses((status = 200, body = Worker)))]
pub async fn instance(ctx: Ctx, worker: String, raw: Bytes) -> Result<Worker, ApiError> {
    let factory = ctx.caller()?.factory()?.to_string();
    let r: InstanceReport = reply::body(&raw)?;
    let cmd = Command::ReportInstance { factory, worker, instance_id: r.instance_id, time: chrono::Utc::now() };
    match ctx.node.propose(cmd).await? {
        Reply::Worker(w) => Ok(w),
        other => Err(unexpected(other)),
    }
}

/// Factory: reports a worker destroyed.
#[utoipa::path(post, operation_id = "factories_destroyed", path = "/v1/factory/workers/{worker}/destroyed", tag = "factory",
    params(("worker" = String, Path)), responses((status = 200, body = Worker)))]
pub async fn destroyed(ctx: Ctx, worker: String) -> Result<Worker, ApiError> {
    let factory = ctx.caller()?.factory()?.to_string();
    match ctx.node.propose(Command::WorkerDestroyed { factory, worker, time: chrono::Utc::now() }).await? {
        Reply::Worker(w) => Ok(w),
        other => Err(unexpected(other)),
    }
}

/// Factory: its workers that are not destroyed yet, to make, keep or reap.
#[utoipa::path(get, operation_id = "factories_workers", path = "/v1/factory/workers", tag = "factory", responses((status = 200, body = Vec<Worker>)))]
pub async fn workers(ctx: Ctx) -> Result<Vec<Worker>, ApiError> {
    let factory = ctx.caller()?.factory()?.to_string();
    Ok(ctx.node.read(|s| {
        s.live_workers()
            .filter(|w| w.worker.factory.as_deref() == Some(factory.as_str()))
            .map(|w| w.worker.clone())
            .collect()
    }))
}
