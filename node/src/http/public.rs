//! `/public/file/OWNER/REPO/SERIES/VERSION/NAME`: files jobs published,
//! served by every node without authentication, as the spec says.

use bm_api::{ApiError, ErrorCode};
use warp::reply::Response;

use super::reply;
use crate::node::Node;

/// Serves one published file (ranges allowed).
#[utoipa::path(get, operation_id = "public_file", path = "/public/file/{owner}/{repo}/{series}/{version}/{name}",
    tag = "public",
    params(("owner" = String, Path), ("repo" = String, Path), ("series" = String, Path),
        ("version" = String, Path, description = "the commit id"), ("name" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream"), (status = 206), (status = 404, body = ApiError)))]
pub async fn file(node: Node, path: (String, String, String, String, String), range: Option<String>) -> Response {
    let (owner, repo, series, version, name) = path;
    let key = crate::sm::publish::key(&format!("{owner}/{repo}"), &series, &version, &name);
    let Some(f) = node.read(|s| s.published.get(&key).cloned()) else {
        return reply::error(&ApiError::new(
            ErrorCode::NotFound,
            format!("nothing is published at /public/file/{key}"),
        ));
    };
    super::blob_reply::serve(&node, &f.sha256, f.size, range).await
}
