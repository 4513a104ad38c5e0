//! Turning handler results into HTTP responses, and request bodies and
//! query strings into typed values, with the same JSON error everywhere.

use bm_api::{ApiError, ErrorCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

/// Largest JSON request body accepted.
pub const MAX_BODY: u64 = 4 * 1024 * 1024;

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: StatusCode, v: &T) -> Response {
    warp::reply::with_status(warp::reply::json(v), status).into_response()
}

/// The JSON error response for `e`.
pub fn error(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::warn!(code = %e.code, message = %e.message, "request failed");
    }
    json(status, e)
}

/// 200 with the value, or the error.
pub fn reply<T: Serialize>(r: Result<T, ApiError>) -> Response {
    match r {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => error(&e),
    }
}

/// Parses a JSON body, naming what is wrong and where.
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid request body: {e}")))
}

/// Parses a query string.
pub fn query<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid query string {raw:?}: {e}")))
}

/// An API error raised by a filter before the handler runs (a body that
/// would be too large, refused before it is read).
#[derive(Debug)]
pub struct Refused(pub ApiError);

impl warp::reject::Reject for Refused {}

/// Turns warp's own rejections (no route, wrong method, body too large)
/// into the same JSON errors as everything else.
pub async fn recover(r: warp::Rejection) -> Result<Response, std::convert::Infallible> {
    let e = if let Some(Refused(e)) = r.find::<Refused>() {
        e.clone()
    } else if r.is_not_found() {
        ApiError::new(ErrorCode::NotFound, "no such API path")
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "request body is too large: JSON bodies may have {MAX_BODY} bytes, output files the node's \
                 limits.max_output_bytes"
            ),
        )
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(ErrorCode::BadRequest, "method not allowed on this path")
    } else if r.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::new(ErrorCode::BadRequest, "Content-Length required")
    } else {
        ApiError::new(ErrorCode::BadRequest, format!("bad request: {r:?}"))
    };
    let mut resp = error(&e);
    if e.code == ErrorCode::BadRequest && r.find::<warp::reject::MethodNotAllowed>().is_some() {
        *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    }
    Ok(resp)
}
