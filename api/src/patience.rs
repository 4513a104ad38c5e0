//! How long a client waits for one node's answer before it tries the next.
//!
//! A node that is stopped (or cut off after a connection was pooled)
//! accepts a request and never answers: the kernel takes the bytes, and
//! without a limit the caller waits for TCP to give up, minutes later. A
//! factory or agent stuck so keeps a healthy cluster from getting its
//! work done. So each attempt gets a limit, after which the client fails
//! over as it does when a node cannot be reached; the limit covers the
//! answer's headers only, so a long download is not cut.

use std::time::Duration;

/// What an ordinary call may take on a healthy node: a write waits up to
/// 10 s for a leader and 5 s for its outcome on the node's side.
pub const CALL: Duration = Duration::from_secs(20);

/// The longest long-poll a node holds (`wait` is capped at this many
/// seconds on every route that takes it).
pub const MAX_WAIT_SECS: u64 = 60;

/// The slowest upload speed a limit allows for, bytes per second: a body
/// of `n` bytes gets `n / UPLOAD_FLOOR` seconds more.
pub const UPLOAD_FLOOR: u64 = 1_000_000;

/// The limit of one attempt: `base` (normally [`CALL`]), plus the
/// long-poll `wait` the query asks for, plus time to send `body_len` bytes
/// at [`UPLOAD_FLOOR`].
pub fn limit(base: Duration, query: &[(&str, String)], body_len: usize) -> Duration {
    let wait = query
        .iter()
        .find(|(k, _)| *k == "wait")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(0)
        .min(MAX_WAIT_SECS);
    base + Duration::from_secs(wait) + Duration::from_secs(body_len as u64 / UPLOAD_FLOOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_polls_and_uploads_get_their_time_on_top() {
        let base = Duration::from_secs(20);
        assert_eq!(limit(base, &[], 0), base);
        assert_eq!(limit(base, &[("wait", "30".into())], 0), Duration::from_secs(50));
        assert_eq!(limit(base, &[("wait", "9999".into())], 0), Duration::from_secs(80), "wait is capped");
        assert_eq!(limit(base, &[("wait", "x".into()), ("epoch", "3".into())], 0), base);
        assert_eq!(limit(base, &[], 64_000_000), Duration::from_secs(84));
    }
}
