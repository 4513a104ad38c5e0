//! Users, privileges and whoami.

use bm_api::users::{User, UserCreate, UserCreated, WhoAmI};
use bm_api::{ApiError, ErrorCode, ADMIN};
use bytes::Bytes;

use super::{reply, Ctx};
use crate::auth::{hash_token, new_token, Caller};
use crate::sm::{Command, Reply};

/// Who is calling.
#[utoipa::path(get, operation_id = "users_whoami", path = "/v1/whoami", tag = "users", responses((status = 200, body = WhoAmI), (status = 401, body = ApiError)))]
pub async fn whoami(ctx: Ctx) -> Result<WhoAmI, ApiError> {
    let caller = ctx.caller()?;
    ctx.node.read(|s| match &caller {
        Caller::Admin => {
            Ok(WhoAmI { id: ADMIN.into(), name: ADMIN.into(), admin: true, privileges: vec![ADMIN.into()] })
        }
        Caller::User(id) => {
            let u = s.users.get(id).ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "user is gone"))?;
            Ok(WhoAmI {
                id: id.clone(),
                name: u.user.name.clone(),
                admin: s.has_privilege(id, ADMIN),
                privileges: u.user.privileges.clone(),
            })
        }
        Caller::Factory(id) => {
            Ok(WhoAmI { id: id.clone(), name: format!("factory {id}"), admin: false, privileges: vec![] })
        }
        Caller::Worker(id) => {
            Ok(WhoAmI { id: id.clone(), name: format!("worker {id}"), admin: false, privileges: vec![] })
        }
    })
}

/// Lists users (admin).
#[utoipa::path(get, operation_id = "users_list", path = "/v1/users", tag = "users", responses((status = 200, body = Vec<User>), (status = 403, body = ApiError)))]
pub async fn list(ctx: Ctx) -> Result<Vec<User>, ApiError> {
    ctx.admin()?;
    Ok(ctx.node.read(|s| s.users.values().map(|u| u.user.clone()).collect()))
}

/// Creates a user and returns its token, once (admin).
#[utoipa::path(post, operation_id = "users_create", path = "/v1/users", tag = "users", request_body = UserCreate,
    responses((status = 200, body = UserCreated), (status = 409, body = ApiError)))]
pub async fn create(ctx: Ctx, raw: Bytes) -> Result<UserCreated, ApiError> {
    ctx.admin()?;
    let req: UserCreate = reply::body(&raw)?;
    let token = new_token();
    let cmd = Command::CreateUser {
        id: ulid::Ulid::new().to_string(),
        name: req.name,
        privileges: req.privileges,
        token_hash: hash_token(&token),
        time: chrono::Utc::now(),
    };
    match ctx.node.propose(cmd).await? {
        Reply::User(user) => Ok(UserCreated { user, token }),
        other => Err(unexpected(other)),
    }
}

/// Shows a user by id or name (admin).
#[utoipa::path(get, operation_id = "users_show", path = "/v1/users/{user}", tag = "users", params(("user" = String, Path, description = "id or name")),
    responses((status = 200, body = User), (status = 404, body = ApiError)))]
pub async fn show(ctx: Ctx, user: String) -> Result<User, ApiError> {
    ctx.admin()?;
    ctx.node
        .read(|s| s.user(&user).map(|u| u.user.clone()))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no user {user:?}")))
}

/// Grants a privilege (admin).
#[utoipa::path(put, operation_id = "users_grant", path = "/v1/users/{user}/privileges/{privilege}", tag = "users",
    params(("user" = String, Path), ("privilege" = String, Path)), responses((status = 200, body = User)))]
pub async fn grant(ctx: Ctx, user: String, privilege: String) -> Result<User, ApiError> {
    set_privilege(ctx, user, privilege, true).await
}

/// Revokes a privilege (admin).
#[utoipa::path(delete, operation_id = "users_revoke", path = "/v1/users/{user}/privileges/{privilege}", tag = "users",
    params(("user" = String, Path), ("privilege" = String, Path)), responses((status = 200, body = User)))]
pub async fn revoke(ctx: Ctx, user: String, privilege: String) -> Result<User, ApiError> {
    set_privilege(ctx, user, privilege, false).await
}

async fn set_privilege(ctx: Ctx, user: String, privilege: String, grant: bool) -> Result<User, ApiError> {
    ctx.admin()?;
    match ctx.node.propose(Command::SetPrivilege { user, privilege, grant }).await? {
        Reply::User(u) => Ok(u),
        other => Err(unexpected(other)),
    }
}

/// A reply of the wrong kind: a bug, reported as such.
pub fn unexpected(r: Reply) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("unexpected state-machine reply {r:?}"))
}
