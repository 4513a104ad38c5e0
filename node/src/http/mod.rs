//! The HTTP JSON API under `/v1`, served by warp.
//!
//! Handlers return `Result<T, ApiError>`; the routing here turns that into
//! JSON with the error's stable code and HTTP status, so every path fails
//! the same way. Bodies and query strings are parsed by the handlers (not
//! by warp) so that a bad field gets a message that names it.

pub mod agent;
pub mod blob_reply;
pub mod cluster;
pub mod events;
pub mod factories;
pub mod jobs;
pub mod public;
pub mod reply;
pub mod targets;
pub mod upload_body;
pub mod users;
pub mod workers;

use std::convert::Infallible;

use bm_api::{ApiError, ADMIN};
use warp::Filter;

use crate::auth::{authenticate, Caller};
use crate::node::Node;

/// What every handler gets: the node and the caller's credentials.
#[derive(Clone)]
pub struct Ctx {
    /// The node serving the request.
    pub node: Node,
    auth: Option<String>,
    /// An unknown token could not be checked against the leader.
    unsure: bool,
}

impl Ctx {
    /// The authenticated caller, or 401.
    pub fn caller(&self) -> Result<Caller, ApiError> {
        match self.node.read(|s| authenticate(self.auth.as_deref(), self.node.admin_hash(), s)) {
            Err(e) if self.unsure && e.code == bm_api::ErrorCode::Unauthorized => Err(ApiError::new(
                bm_api::ErrorCode::Unavailable,
                "this node cannot check the token right now (no leader); retry",
            )),
            other => other,
        }
    }

    /// The context of a call carrying `auth` (an `Authorization` header's
    /// value); an unknown token is first checked against the leader.
    pub async fn new(node: Node, auth: Option<String>) -> Ctx {
        let mut ctx = Ctx { node, auth, unsure: false };
        ctx.unsure = !catch_up_on_unknown_token(&ctx).await;
        ctx
    }

    /// The context of a call that came with a bare bearer token rather than
    /// over HTTP (the agent link).
    pub async fn with_token(node: Node, token: Option<String>) -> Ctx {
        Self::new(node, token.map(|t| format!("Bearer {t}"))).await
    }

    /// The caller, who must be an administrator (403 otherwise).
    pub fn admin(&self) -> Result<Caller, ApiError> {
        let c = self.caller()?;
        self.node.read(|s| c.require(s, ADMIN))?;
        Ok(c)
    }
}

fn ctx(node: Node) -> impl Filter<Extract = (Ctx,), Error = warp::Rejection> + Clone {
    warp::any().map(move || node.clone()).and(warp::header::optional::<String>("authorization")).then(Ctx::new)
}

/// A token this node does not know may have been created an instant ago
/// through another node (an agent bootstraps on one node and calls the
/// next on another). Before refusing it, a follower catches up with the
/// leader's commit index (a read-index barrier), so a caller never sees
/// its own acknowledged write missing.
/// Answers false when it could not catch up (no leader right now): the
/// token may exist, so the caller is told to retry rather than refused.
async fn catch_up_on_unknown_token(ctx: &Ctx) -> bool {
    if ctx.auth.is_none() || ctx.node.peer().is_none() {
        return true;
    }
    if matches!(ctx.caller(), Err(e) if e.code == bm_api::ErrorCode::Unauthorized) {
        return ctx.node.read_linearizable(|_| ()).await.is_ok();
    }
    true
}

fn raw_query() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

fn json_body() -> impl Filter<Extract = (bytes::Bytes,), Error = warp::Rejection> + Clone {
    warp::body::content_length_limit(reply::MAX_BODY).and(warp::body::bytes())
}

/// Every route of the API, plus JSON errors for everything else.
pub fn routes(node: Node) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone {
    use warp::{delete, get, path, post, put};
    let node_for_public = node.clone();
    let max_output = node.config().limits.max_output_bytes;
    let c = ctx(node);
    let v1 = path("v1");

    let health = v1.and(path!("health")).and(get()).map(|| reply::reply::<_>(Ok(serde_json::json!({"ok": true}))));
    let whoami = v1.and(path!("whoami")).and(get()).and(c.clone()).then(users::whoami).map(reply::reply);
    let users_list = v1.and(path!("users")).and(get()).and(c.clone()).then(users::list).map(reply::reply);
    let users_create =
        v1.and(path!("users")).and(post()).and(c.clone()).and(json_body()).then(users::create).map(reply::reply);
    let users_show =
        v1.and(path!("users" / String)).and(get()).and(c.clone()).then(|u, c| users::show(c, u)).map(reply::reply);
    let grant = v1
        .and(path!("users" / String / "privileges" / String))
        .and(put())
        .and(c.clone())
        .then(|u, p, c| users::grant(c, u, p))
        .map(reply::reply);
    let revoke = v1
        .and(path!("users" / String / "privileges" / String))
        .and(delete())
        .and(c.clone())
        .then(|u, p, c| users::revoke(c, u, p))
        .map(reply::reply);

    let targets_list = v1.and(path!("targets")).and(get()).and(c.clone()).then(targets::list).map(reply::reply);
    let targets_create =
        v1.and(path!("targets")).and(post()).and(c.clone()).and(json_body()).then(targets::create).map(reply::reply);
    let targets_redirect = v1
        .and(path!("targets" / String / "redirect"))
        .and(put())
        .and(c.clone())
        .and(json_body())
        .then(|t, c, b| targets::redirect(c, t, b))
        .map(reply::reply);

    let jobs_submit =
        v1.and(path!("jobs")).and(post()).and(c.clone()).and(json_body()).then(jobs::submit).map(reply::reply);
    let jobs_list = v1.and(path!("jobs")).and(get()).and(c.clone()).and(raw_query()).then(jobs::list).map(reply::reply);
    let jobs_show =
        v1.and(path!("jobs" / String)).and(get()).and(c.clone()).then(|j, c| jobs::show(c, j)).map(reply::reply);
    let jobs_cancel = v1
        .and(path!("jobs" / String / "cancel"))
        .and(post())
        .and(c.clone())
        .then(|j, c| jobs::cancel(c, j))
        .map(reply::reply);
    let jobs_events = v1
        .and(path!("jobs" / String / "events"))
        .and(get())
        .and(c.clone())
        .and(raw_query())
        .then(|j, c, q| events::long_poll(c, j, q))
        .map(reply::reply);
    let jobs_sse = v1
        .and(path!("jobs" / String / "events" / "sse"))
        .and(get())
        .and(c.clone())
        .and(raw_query())
        .then(|j, c, q| events::sse(c, j, q));
    let store_list = v1
        .and(path!("jobs" / String / "store"))
        .and(get())
        .and(c.clone())
        .then(|j, c| jobs::store_list(c, j))
        .map(reply::reply);
    let store_get = v1
        .and(path!("jobs" / String / "store" / String))
        .and(get())
        .and(c.clone())
        .then(|j, n, c| jobs::store_get(c, j, n))
        .map(reply::reply);
    let store_put = v1
        .and(path!("jobs" / String / "store" / String))
        .and(put())
        .and(c.clone())
        .and(json_body())
        .then(|j, n, c, b| jobs::store_put(c, j, n, b))
        .map(reply::reply);
    let outputs = v1
        .and(path!("jobs" / String / "outputs"))
        .and(get())
        .and(c.clone())
        .then(|j, c| jobs::outputs(c, j))
        .map(reply::reply);
    let download = v1
        .and(path!("jobs" / String / "outputs" / String))
        .and(get())
        .and(c.clone())
        .and(warp::header::optional::<String>("range"))
        .then(|j, o, c, r| jobs::download(c, j, o, r));

    let fac_list = v1.and(path!("factories")).and(get()).and(c.clone()).then(factories::list).map(reply::reply);
    let fac_create = v1
        .and(path!("factories"))
        .and(post())
        .and(c.clone())
        .and(json_body())
        .then(factories::create)
        .map(reply::reply);
    let fac_enable = v1
        .and(path!("factories" / String / "enable"))
        .and(post())
        .and(c.clone())
        .then(|f, c| factories::enable(c, f))
        .map(reply::reply);
    let fac_disable = v1
        .and(path!("factories" / String / "disable"))
        .and(post())
        .and(c.clone())
        .then(|f, c| factories::disable(c, f))
        .map(reply::reply);
    let fac_lease = v1
        .and(path!("factory" / "lease"))
        .and(post())
        .and(c.clone())
        .and(raw_query())
        .and(json_body())
        .then(factories::lease)
        .map(reply::reply);
    let fac_instance = v1
        .and(path!("factory" / "workers" / String / "instance"))
        .and(post())
        .and(c.clone())
        .and(json_body())
        .then(|w, c, b| factories::instance(c, w, b))
        .map(reply::reply);
    let fac_destroyed = v1
        .and(path!("factory" / "workers" / String / "destroyed"))
        .and(post())
        .and(c.clone())
        .then(|w, c| factories::destroyed(c, w))
        .map(reply::reply);
    let fac_workers =
        v1.and(path!("factory" / "workers")).and(get()).and(c.clone()).then(factories::workers).map(reply::reply);

    let workers_list =
        v1.and(path!("workers")).and(get()).and(c.clone()).and(raw_query()).then(workers::list).map(reply::reply);
    let worker_action = v1
        .and(path!("workers" / String / String))
        .and(post())
        .and(c.clone())
        .then(|w, a, c| workers::action(c, w, a))
        .map(reply::reply);
    let control_show = v1.and(path!("control")).and(get()).and(c.clone()).then(workers::show).map(reply::reply);
    let control_set =
        v1.and(path!("control" / String)).and(post()).and(c.clone()).then(|v, c| workers::set(c, v)).map(reply::reply);

    let pn = node_for_public.clone();
    let public = warp::path!("public" / "file" / String / String / String / String / String)
        .and(get())
        .and(warp::header::optional::<String>("range"))
        .then(move |o, r, s, v, n, range| public::file(pn.clone(), (o, r, s, v, n), range));

    let cl_status = v1.and(path!("cluster")).and(get()).and(c.clone()).then(cluster::status).map(reply::reply);
    let cl_latency =
        v1.and(path!("cluster" / "latency")).and(get()).and(c.clone()).then(cluster::latency).map(reply::reply);
    let cl_add = v1
        .and(path!("cluster" / "members"))
        .and(post())
        .and(c.clone())
        .and(json_body())
        .then(cluster::add)
        .map(reply::reply);
    let cl_remove = v1
        .and(path!("cluster" / "members" / u64))
        .and(delete())
        .and(c.clone())
        .then(|id, c| cluster::remove(c, id))
        .map(reply::reply);
    let cl_leader = v1
        .and(path!("cluster" / "leader"))
        .and(post())
        .and(c.clone())
        .and(json_body())
        .then(cluster::transfer)
        .map(reply::reply);
    let clus = cl_status.or(cl_latency).unify().or(cl_add).unify().or(cl_remove).unify().or(cl_leader).unify();

    let ag_boot = v1
        .and(path!("agent" / "bootstrap"))
        .and(post())
        .and(c.clone())
        .and(json_body())
        .then(agent::bootstrap)
        .map(reply::reply);
    let ag_next = v1
        .and(path!("agent" / "instruction"))
        .and(get())
        .and(c.clone())
        .and(raw_query())
        .then(agent::next)
        .map(reply::reply);
    let ag_start = v1
        .and(path!("agent" / "jobs" / String / "start"))
        .and(post())
        .and(c.clone())
        .and(json_body())
        .then(|j, c, b| agent::start(c, j, b))
        .map(reply::reply);
    let ag_events = v1
        .and(path!("agent" / "jobs" / String / "events"))
        .and(post())
        .and(c.clone())
        .and(json_body())
        .then(|j, c, b| agent::events(c, j, b))
        .map(reply::reply);
    let ag_finish = v1
        .and(path!("agent" / "jobs" / String / "finish"))
        .and(post())
        .and(c.clone())
        .and(json_body())
        .then(|j, c, b| agent::finish(c, j, b))
        .map(reply::reply);
    let ag_store = v1
        .and(path!("agent" / "jobs" / String / "store" / String))
        .and(put())
        .and(c.clone())
        .and(json_body())
        .then(|j, n, c, b| agent::store_put(c, j, n, b))
        .map(reply::reply);
    let ag_output = v1
        .and(path!("agent" / "jobs" / String / "outputs"))
        .and(put())
        .and(c.clone())
        .and(raw_query())
        .and(agent::output_size_guard(max_output))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(|j, c, q, len, b| agent::output(c, j, q, len, Box::pin(b)))
        .map(reply::reply);
    let ag_input = v1
        .and(path!("agent" / "jobs" / String / "inputs" / String))
        .and(get())
        .and(c.clone())
        .and(raw_query())
        .then(|j, o, c, q| agent::input(c, j, o, q));
    let agent = ag_boot
        .or(ag_next)
        .unify()
        .or(ag_start)
        .unify()
        .or(ag_events)
        .unify()
        .or(ag_finish)
        .unify()
        .or(ag_store)
        .unify()
        .or(ag_output)
        .unify()
        .or(ag_input)
        .unify();

    let users = whoami
        .or(users_list)
        .unify()
        .or(users_create)
        .unify()
        .or(users_show)
        .unify()
        .or(grant)
        .unify()
        .or(revoke)
        .unify();
    let targets = targets_list.or(targets_create).unify().or(targets_redirect).unify();
    let jobs = jobs_submit
        .or(jobs_list)
        .unify()
        .or(jobs_show)
        .unify()
        .or(jobs_cancel)
        .unify()
        .or(jobs_events)
        .unify()
        .or(jobs_sse)
        .unify()
        .or(store_list)
        .unify()
        .or(store_get)
        .unify()
        .or(store_put)
        .unify()
        .or(outputs)
        .unify()
        .or(download)
        .unify();
    let facs = fac_list
        .or(fac_create)
        .unify()
        .or(fac_enable)
        .unify()
        .or(fac_disable)
        .unify()
        .or(fac_lease)
        .unify()
        .or(fac_instance)
        .unify()
        .or(fac_destroyed)
        .unify()
        .or(fac_workers)
        .unify();
    let admin = workers_list.or(worker_action).unify().or(control_show).unify().or(control_set).unify();
    // Each group is boxed: it keeps the filter types shallow enough for
    // the compiler (release builds overflow its recursion limit otherwise).
    health
        .boxed()
        .or(users.boxed())
        .unify()
        .or(targets.boxed())
        .unify()
        .or(jobs.boxed())
        .unify()
        .or(facs.boxed())
        .unify()
        .or(admin.boxed())
        .unify()
        .or(agent.boxed())
        .unify()
        .or(clus.boxed())
        .unify()
        .or(public.boxed())
        .unify()
        .recover(reply::recover)
        .unify()
        .with(warp::trace::request())
}
