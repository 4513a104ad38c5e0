//! The JSON error every failed API call returns.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stable, machine-readable error code. Scripts match on these; the
/// message is for people and may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, unknown field, invalid value.
    #[error("bad_request")]
    BadRequest,
    /// No valid bearer token.
    #[error("unauthorized")]
    Unauthorized,
    /// The token is valid but lacks the privilege.
    #[error("forbidden")]
    Forbidden,
    /// The named object does not exist.
    #[error("not_found")]
    NotFound,
    /// The request conflicts with the current state (duplicate name, job already finished).
    #[error("conflict")]
    Conflict,
    /// The caller acted under a fencing epoch that is no longer current.
    #[error("stale_epoch")]
    StaleEpoch,
    /// The cluster cannot commit right now (no leader, no quorum); retry.
    #[error("unavailable")]
    Unavailable,
    /// A bug or storage failure on the server.
    #[error("internal")]
    Internal,
}

impl ErrorCode {
    /// The HTTP status that carries this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict | ErrorCode::StaleEpoch => 409,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// Stable code.
    pub code: ErrorCode,
    /// What went wrong and where, for a person.
    pub message: String,
}

impl ApiError {
    /// Builds an error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}
