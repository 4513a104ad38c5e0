//! How a client call's result becomes an operation outcome. The line between `Fail` and `Unknown` is what keeps
//! the checker sound: only a clear refusal proves a write did not happen.

use std::future::Future;
use std::time::Duration;

use bm_api::client::ClientError;

use crate::history::Outcome;

/// Runs a client call with a deadline: a paused node accepts connections and then never answers.
pub async fn timed<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, ClientError>>,
) -> Result<Result<T, ClientError>, String> {
    tokio::time::timeout(limit, call).await.map_err(|_| format!("timed out after {limit:?}"))
}

/// The outcome of a failed call: a 4xx answer is a refusal (`Fail`); a 5xx answer, a transport failure or a
/// garbled answer may hide a write that happened (`Unknown`).
pub fn failed(e: &ClientError) -> Outcome {
    match e {
        ClientError::Api { status, .. } if (400..500).contains(status) => Outcome::Fail(e.to_string()),
        _ => Outcome::Unknown(e.to_string()),
    }
}

/// Whether the call failed because the thing asked about does not exist.
pub fn not_found(e: &ClientError) -> bool {
    e.code() == Some(bm_api::ErrorCode::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bm_api::error::{ApiError, ErrorCode};

    fn api(code: ErrorCode) -> ClientError {
        ClientError::Api { status: code.status(), error: ApiError::new(code, "x") }
    }

    #[test]
    fn refusals_fail_and_everything_else_is_unknown() {
        assert!(matches!(failed(&api(ErrorCode::BadRequest)), Outcome::Fail(_)));
        assert!(matches!(failed(&api(ErrorCode::Conflict)), Outcome::Fail(_)));
        assert!(matches!(failed(&api(ErrorCode::Unavailable)), Outcome::Unknown(_)));
        assert!(matches!(failed(&api(ErrorCode::Internal)), Outcome::Unknown(_)));
        let t = ClientError::Transport { urls: "u".into(), message: "refused".into() };
        assert!(matches!(failed(&t), Outcome::Unknown(_)));
    }
}
