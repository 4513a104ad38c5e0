//! The API document, generated from the handlers and types so it cannot
//! drift from the code. `docs/openapi.json` is a checked-in copy that a
//! test compares with this.

use utoipa::OpenApi;

use crate::http::{agent, cluster, events, factories, jobs, public, targets, users, workers};

/// The OpenAPI description of `/v1`.
#[derive(OpenApi)]
#[openapi(
    info(title = "bm", description = "The bm build farm API. Errors are JSON `{code, message}` with stable codes."),
    paths(
        users::whoami,
        users::list,
        users::create,
        users::show,
        users::grant,
        users::revoke,
        targets::list,
        targets::create,
        targets::redirect,
        jobs::submit,
        jobs::list,
        jobs::show,
        jobs::cancel,
        jobs::store_list,
        jobs::store_get,
        jobs::store_put,
        jobs::outputs,
        jobs::download,
        events::long_poll,
        events::sse,
        factories::list,
        factories::create,
        factories::enable,
        factories::disable,
        factories::lease,
        factories::instance,
        factories::destroyed,
        factories::workers,
        workers::list,
        workers::action,
        workers::show,
        workers::set,
        agent::bootstrap,
        agent::next,
        agent::start,
        agent::events,
        agent::finish,
        agent::store_put,
        agent::output,
        agent::input,
        cluster::status,
        cluster::latency,
        cluster::add,
        cluster::remove,
        cluster::transfer,
        public::file,
    ),
    components(schemas(bm_api::ErrorCode))
)]
pub struct ApiDoc;

/// The document as pretty JSON, with a trailing newline.
pub fn document() -> String {
    let mut s = ApiDoc::openapi().to_pretty_json().expect("the API document serialises");
    s.push('\n');
    s
}
