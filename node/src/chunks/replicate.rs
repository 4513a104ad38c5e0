//! Storing a chunk on a majority of the voters before its reference is
//! proposed.

use std::sync::Arc;
use std::time::Duration;

use bm_api::{ApiError, ErrorCode};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::cluster::forward::{self, Called};
use crate::cluster::proto::PeerCall;
use crate::cluster::quorum;
use crate::node::Node;
use crate::sm::EventLog;

/// Longest a copy may take to reach a peer.
const COPY_TIMEOUT: Duration = Duration::from_secs(30);

/// Packs `log`, writes it here and on every peer, and returns its sha256
/// once a majority of the voters hold it. The copies to the other peers
/// go on in the background.
pub async fn store(node: &Node, log: EventLog) -> Result<[u8; 32], ApiError> {
    let bytes = bm_raft::codec::encode("log chunk", &log)
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot pack a log chunk: {e}")))?;
    let bytes = Bytes::from(bytes);
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    node.chunks().cache.insert(sha, Arc::new(log));

    let (needed, others) = quorum::copies(node);
    let copies = match node.peer() {
        None => Vec::new(),
        Some(ep) => others
            .into_iter()
            .map(|copy| {
                let call = PeerCall::ChunkPut { sha };
                let (ep, addr, body) = (ep.clone(), copy.addr.clone(), bytes.clone());
                let task = tokio::spawn(async move {
                    match forward::call_with(&ep, &addr, &call, Some(body), COPY_TIMEOUT).await? {
                        Called::Ok(_) => Ok(()),
                        Called::NotLeader => Err(ApiError::new(ErrorCode::Internal, "unexpected answer to a chunk")),
                    }
                });
                let done = async move { task.await.map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))? };
                (copy, done)
            })
            .collect(),
    };
    let here = async {
        node.chunks().store.put(&sha, bytes.clone()).await.map_err(|e| {
            ApiError::new(ErrorCode::Internal, format!("cannot store log chunk {}: {e}", super::hex(&sha)))
        })
    };
    tokio::try_join!(here, quorum::wait("the log chunk", needed, copies))?;
    Ok(sha)
}

/// Keeps a chunk a peer sent, after checking that it is what it claims.
pub async fn keep(node: &Node, sha: [u8; 32], bytes: Bytes) -> Result<(), ApiError> {
    let got: [u8; 32] = Sha256::digest(&bytes).into();
    if got != sha {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("log chunk {} arrived with sha256 {}", super::hex(&sha), super::hex(&got)),
        ));
    }
    node.chunks()
        .store
        .put(&sha, bytes)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot store log chunk {}: {e}", super::hex(&sha))))
}
