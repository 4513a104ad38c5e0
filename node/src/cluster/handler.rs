//! Answers the application calls other nodes send over the peer link.

use std::sync::{Arc, OnceLock};

use bm_api::{ApiError, ErrorCode};
use bm_raft::{codec, AppHandler};
use bytes::Bytes;
use openraft::error::{ClientWriteError, RaftError};

use super::proto::{Answer, PeerCall, TransferStep};
use crate::node::Node;

/// The handler the peer endpoint calls; it answers once the node is open
/// (calls arriving before that are told to retry).
pub fn app_handler(node: Arc<OnceLock<Node>>) -> AppHandler {
    Arc::new(move |bytes: Vec<u8>, body: Option<Bytes>| {
        let node = node.clone();
        Box::pin(async move {
            let answer = match node.get() {
                None => Answer::Err(ApiError::new(ErrorCode::Unavailable, "the node is starting")),
                Some(node) => match codec::decode::<PeerCall>("peer call", &bytes) {
                    Ok(call) => handle(node, call, body).await,
                    Err(e) => return Err(e.to_string()),
                },
            };
            codec::encode("peer answer", &answer).map_err(|e| e.to_string())
        })
    })
}

fn ok<T: serde::Serialize>(what: &'static str, v: &T) -> Answer {
    match codec::encode(what, v) {
        Ok(b) => Answer::Ok(b),
        Err(e) => Answer::Err(ApiError::new(ErrorCode::Internal, e.to_string())),
    }
}

/// A call that needs a body and came without one.
fn no_body(what: &str) -> Answer {
    Answer::Err(ApiError::new(ErrorCode::BadRequest, format!("{what} came without its bytes")))
}

async fn handle(node: &Node, call: PeerCall, body: Option<Bytes>) -> Answer {
    match call {
        PeerCall::Propose(_) if node.writes_paused() => Answer::NotLeader,
        PeerCall::Propose(batch) => match crate::proposer::write_bounded(node.raft(), batch).await {
            Err(e) => Answer::Err(e),
            Ok(Ok(resp)) => Answer::Ok(resp.data.0),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Answer::NotLeader,
            Ok(Err(e)) => Answer::Err(crate::proposer::write_error(e)),
        },
        PeerCall::ReadIndex => match node.raft().ensure_linearizable().await {
            Ok(idx) => ok("read index", &idx.map(|l| l.index)),
            Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(_))) => Answer::NotLeader,
            Err(e) => Answer::Err(ApiError::new(ErrorCode::Unavailable, format!("cannot confirm leadership: {e}"))),
        },
        PeerCall::PreVote(req) => match node.peer() {
            Some(ep) => ok("pre-vote answer", &super::prevote::grant(node, ep, &req)),
            None => ok("pre-vote answer", &false),
        },
        PeerCall::BlobPut { upload, offset, sha } => match body {
            None => no_body(&format!("a blob piece of upload {upload}")),
            Some(bytes) => match node.blobs().put_piece(&upload, offset, bytes, sha.as_deref(), true).await {
                Ok(()) => Answer::Ok(Vec::new()),
                Err(e) => Answer::Err(ApiError::new(
                    ErrorCode::Internal,
                    format!("cannot keep blob {} (upload {upload}): {e}", sha.as_deref().unwrap_or("piece")),
                )),
            },
        },
        PeerCall::BlobGet { sha, offset, len } => {
            let len = len.min(crate::blobs::CHUNK as u64) as usize;
            match node.blobs().read_range(&sha, offset, len).await {
                Ok(b) => Answer::Ok(b),
                Err(e) => Answer::Err(ApiError::new(ErrorCode::NotFound, format!("blob {sha}: {e}"))),
            }
        }
        PeerCall::ChunkPut { sha } => match body {
            None => no_body(&format!("log chunk {}", crate::chunks::hex(&sha))),
            Some(bytes) => match crate::chunks::replicate::keep(node, sha, bytes).await {
                Ok(()) => Answer::Ok(Vec::new()),
                Err(e) => Answer::Err(e),
            },
        },
        PeerCall::ChunkGet { sha } => match node.chunks().store.get(&sha) {
            Ok(b) => Answer::Ok(b.map(|b| b.to_vec()).unwrap_or_default()),
            Err(e) => Answer::Err(ApiError::new(
                ErrorCode::Internal,
                format!("log chunk {} unreadable: {e}", crate::chunks::hex(&sha)),
            )),
        },
        PeerCall::Status => ok("node status", &super::status::local(node).await),
        PeerCall::Heartbeats(workers) => {
            for w in workers {
                node.heartbeats().beat(&w);
            }
            Answer::Ok(Vec::new())
        }
        PeerCall::Member(op) => {
            if !node.is_leader() {
                return Answer::NotLeader;
            }
            match super::membership::apply(node, op).await {
                Ok(status) => ok("cluster status", &status),
                Err(e) => Answer::Err(e),
            }
        }
        PeerCall::Transfer(step) => {
            match step {
                TransferStep::Quiet(ms) => super::membership::quiet(node, ms),
                TransferStep::Elect => {
                    if let Err(e) = node.raft().trigger().elect().await {
                        return Answer::Err(ApiError::new(ErrorCode::Internal, e.to_string()));
                    }
                }
            }
            Answer::Ok(Vec::new())
        }
    }
}
