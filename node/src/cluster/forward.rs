//! Calling another node over the peer link: find the leader, send a
//! [`PeerCall`], turn the [`Answer`] back into a result or an API error.

use std::time::Duration;

use bm_api::{ApiError, ErrorCode};
use bm_raft::{codec, PeerEndpoint, PeerError, Raft};
use bytes::Bytes;

use super::proto::{Answer, PeerCall};

/// How long a forwarded call may take before the caller is told the
/// outcome is unknown.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the current leader is, as this node knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leader {
    /// This node leads.
    Me,
    /// Another node leads, reachable at this peer address.
    Other {
        /// Its id.
        id: u64,
        /// Its peer address.
        peer_addr: String,
    },
    /// No leader is known right now (an election is going on).
    Unknown,
}

/// The leader according to this node's Raft metrics.
pub fn leader(raft: &Raft, me: u64) -> Leader {
    let m = raft.metrics().borrow().clone();
    match m.current_leader {
        Some(id) if id == me => Leader::Me,
        Some(id) => match m.membership_config.membership().get_node(&id) {
            Some(n) => Leader::Other { id, peer_addr: n.peer_addr.clone() },
            None => Leader::Unknown,
        },
        None => Leader::Unknown,
    }
}

/// Waits up to `within` for a leader to be known.
pub async fn await_leader(raft: &Raft, me: u64, within: Duration) -> Leader {
    let _ = raft.wait(Some(within)).metrics(|m| m.current_leader.is_some(), "a leader is known").await;
    leader(raft, me)
}

/// The result of a call: done, the receiver was not the leader (nothing
/// happened), or an error for the API caller.
pub enum Called {
    /// The answer's bytes.
    Ok(Vec<u8>),
    /// The receiver did nothing because it does not lead.
    NotLeader,
}

/// Sends `call` to the node at `peer_addr`.
pub async fn call(ep: &PeerEndpoint, peer_addr: &str, call: &PeerCall, timeout: Duration) -> Result<Called, ApiError> {
    call_with(ep, peer_addr, call, None, timeout).await
}

/// [`call`] with `body` sent as raw bytes after the call (a blob piece or
/// a log chunk), which the peer's handler gets as it came off the stream.
pub async fn call_with(
    ep: &PeerEndpoint,
    peer_addr: &str,
    call: &PeerCall,
    body: Option<Bytes>,
    timeout: Duration,
) -> Result<Called, ApiError> {
    let req = codec::encode("peer call", call).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let bytes = match body {
        Some(body) => ep.call_app_with(peer_addr, req, body, timeout).await,
        None => ep.call_app(peer_addr, req, timeout).await,
    }
    .map_err(|e| peer_error(peer_addr, e))?;
    let answer: Answer = codec::decode("peer answer", &bytes)
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("bad answer from node at {peer_addr}: {e}")))?;
    match answer {
        Answer::Ok(b) => Ok(Called::Ok(b)),
        Answer::NotLeader => Ok(Called::NotLeader),
        Answer::Err(e) => Err(e),
    }
}

/// Like [`call`] to the leader `leader`, but gives up as soon as this node
/// learns of another leader (or none): a call stuck on a dead leader would
/// otherwise wait for QUIC's idle timeout. The outcome is then unknown.
pub async fn call_leader(
    raft: &Raft,
    ep: &PeerEndpoint,
    leader: u64,
    peer_addr: &str,
    call: &PeerCall,
) -> Result<Called, ApiError> {
    let wait = raft.wait(None);
    let moved = wait.metrics(|m| m.current_leader != Some(leader), "the leader changed");
    tokio::select! {
        r = self::call(ep, peer_addr, call, CALL_TIMEOUT) => r,
        _ = moved => Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("leader {leader} went away while the call was in flight; its outcome is unknown"),
        )),
    }
}

fn peer_error(addr: &str, e: PeerError) -> ApiError {
    match e {
        PeerError::Timeout => ApiError::new(
            ErrorCode::Unavailable,
            format!("the leader at {addr} did not answer in time; the outcome is unknown"),
        ),
        other => ApiError::new(ErrorCode::Unavailable, format!("cannot reach the leader at {addr}: {other}")),
    }
}

/// Sends `call` to the leader, waiting out elections, for up to `within`.
/// A node that answers "not the leader" did nothing, so asking again is
/// safe; any other failure is returned (the outcome may be unknown).
pub async fn to_leader(
    raft: &Raft,
    ep: &PeerEndpoint,
    me: u64,
    call: &PeerCall,
    within: Duration,
) -> Result<Option<Vec<u8>>, ApiError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(ApiError::new(ErrorCode::Unavailable, "no leader could be reached; retry"));
        }
        match await_leader(raft, me, left).await {
            Leader::Me => return Ok(None),
            Leader::Unknown => tokio::time::sleep(Duration::from_millis(50)).await,
            Leader::Other { peer_addr, .. } => match self::call(ep, &peer_addr, call, CALL_TIMEOUT).await? {
                Called::Ok(b) => return Ok(Some(b)),
                Called::NotLeader => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
}
