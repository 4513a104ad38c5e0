//! Exit codes that scripts can rely on.
//!
//! | code | meaning |
//! |-----:|---------|
//! | 0  | success (for commands that follow a job: it completed) |
//! | 1  | the job failed (`job run --wait`, `job join`, `job tail`) |
//! | 2  | usage error (reported by the argument parser) |
//! | 3  | the job was cancelled |
//! | 4  | the API refused the request (`bad_request`, `not_found`, `conflict`, `stale_epoch`, `forbidden`) |
//! | 5  | unauthorized: no token, or the token is not valid |
//! | 6  | the cluster cannot be reached (no node answered, or it is `unavailable`) |
//! | 10 | any other error |
//!
//! The codes are part of the CLI's contract: change them only with the
//! table in `docs/cli.md`.

use std::process::ExitCode;

use bm_api::jobs::JobState;
use bm_api::{ClientError, ErrorCode};

/// Everything went well.
pub const SUCCESS: u8 = 0;
/// The job followed ended in `failed`.
pub const JOB_FAILED: u8 = 1;
/// Usage error; clap exits with this code on its own.
pub const USAGE: u8 = 2;
/// The job followed ended in `cancelled`.
pub const JOB_CANCELLED: u8 = 3;
/// The API understood the request and said no.
pub const REFUSED: u8 = 4;
/// The token is missing or invalid.
pub const UNAUTHORIZED: u8 = 5;
/// No node of the cluster could serve the request.
pub const UNREACHABLE: u8 = 6;
/// Anything else: local I/O, bad config, protocol errors, server bugs.
pub const OTHER: u8 = 10;

/// The exit code for a job that reached `state`, so that `bm job run --wait`
/// can be used directly as a CI step.
pub fn for_state(state: JobState) -> ExitCode {
    ExitCode::from(match state {
        JobState::Failed => JOB_FAILED,
        JobState::Cancelled => JOB_CANCELLED,
        _ => SUCCESS,
    })
}

/// Picks the exit code for an error by looking for a [`ClientError`]
/// anywhere in its chain, so context added on the way up does not hide
/// what the server said.
pub fn code_for_error(err: &anyhow::Error) -> u8 {
    match err.chain().find_map(|e| e.downcast_ref::<ClientError>()) {
        Some(e) => code_for_client_error(e),
        None => OTHER,
    }
}

/// Maps one API client error to its exit code.
fn code_for_client_error(err: &ClientError) -> u8 {
    if let ClientError::Transport { .. } = err {
        return UNREACHABLE;
    }
    match err.code() {
        Some(
            ErrorCode::BadRequest
            | ErrorCode::NotFound
            | ErrorCode::Conflict
            | ErrorCode::StaleEpoch
            | ErrorCode::Forbidden,
        ) => REFUSED,
        Some(ErrorCode::Unauthorized) => UNAUTHORIZED,
        Some(ErrorCode::Unavailable) => UNREACHABLE,
        Some(ErrorCode::Internal) | None => OTHER,
    }
}

/// Whether an error is worth retrying while following a job: the cluster
/// may be electing a leader or a node restarting.
pub fn is_transient(err: &ClientError) -> bool {
    matches!(err, ClientError::Transport { .. }) || err.code() == Some(ErrorCode::Unavailable)
}

/// Whether an error only says that whoever read our standard output went
/// away (`bm job list | head`); such an error is not worth a message.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().filter_map(|e| e.downcast_ref::<std::io::Error>()).any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;
    use bm_api::ApiError;

    fn api(code: ErrorCode) -> anyhow::Error {
        anyhow::Error::new(ClientError::Api { status: code.status(), error: ApiError::new(code, "no") })
    }

    #[test]
    fn api_refusals_are_4() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::StaleEpoch,
            ErrorCode::Forbidden,
        ] {
            assert_eq!(code_for_error(&api(code)), REFUSED, "{code}");
        }
    }

    #[test]
    fn auth_transport_and_other() {
        assert_eq!(code_for_error(&api(ErrorCode::Unauthorized)), UNAUTHORIZED);
        assert_eq!(code_for_error(&api(ErrorCode::Unavailable)), UNREACHABLE);
        assert_eq!(code_for_error(&api(ErrorCode::Internal)), OTHER);
        let t = ClientError::Transport { urls: "http://x".into(), message: "refused".into() };
        assert_eq!(code_for_error(&anyhow::Error::new(t)), UNREACHABLE);
        assert_eq!(code_for_error(&anyhow::anyhow!("local trouble")), OTHER);
    }

    #[test]
    fn context_does_not_hide_the_code() {
        let e = Err::<(), _>(api(ErrorCode::NotFound)).context("showing job X").unwrap_err();
        assert_eq!(code_for_error(&e), REFUSED);
    }

    #[test]
    fn job_states() {
        assert_eq!(for_state(JobState::Completed), ExitCode::from(SUCCESS));
        assert_eq!(for_state(JobState::Failed), ExitCode::from(JOB_FAILED));
        assert_eq!(for_state(JobState::Cancelled), ExitCode::from(JOB_CANCELLED));
    }

    #[test]
    fn usage_matches_clap() {
        assert_eq!(USAGE, 2);
    }
}
