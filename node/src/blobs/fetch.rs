//! Reading a blob on any node: from local disk, or from a peer that has
//! it (then kept here too).

use std::collections::BTreeSet;
use std::time::Duration;

use bm_api::{ApiError, ErrorCode};

use super::CHUNK;
use crate::cluster::forward::{self, Called};
use crate::cluster::proto::PeerCall;
use crate::cluster::quorum::Copy;
use crate::node::Node;

const PIECE_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes sure the blob is on this node's disk, copying it from a peer:
/// its homes first (`homes` when the caller knows them, else from the
/// outputs that refer to it), then any other member.
pub async fn ensure_local(node: &Node, sha: &str, homes: Option<&BTreeSet<u64>>) -> Result<(), ApiError> {
    if node.blobs().has(sha).await {
        return Ok(());
    }
    let Some(ep) = node.peer() else {
        return Err(ApiError::new(ErrorCode::Internal, format!("blob {sha} is missing from this node")));
    };
    let mut why = Vec::new();
    for peer in peers_for(node, sha, homes) {
        match copy_from(node, ep, &peer.addr, sha).await {
            Ok(()) => return Ok(()),
            Err(e) => why.push(format!("node {}: {}", peer.id, e.message)),
        }
    }
    Err(ApiError::new(ErrorCode::Unavailable, format!("no node could supply blob {sha}: {}", why.join("; "))))
}

/// The other members to ask for blob `sha`: its homes first (`homes`
/// when the caller knows them, else from the outputs that refer to it),
/// then the rest.
pub fn peers_for(node: &Node, sha: &str, homes: Option<&BTreeSet<u64>>) -> Vec<Copy> {
    let homes: Vec<u64> = match homes {
        Some(h) => h.iter().copied().collect(),
        None => {
            let voters = crate::cluster::quorum::voters(node);
            node.read(|s| super::placement::homes_of_blob(s, sha, &voters)).into_iter().collect()
        }
    };
    crate::cluster::quorum::others_homes_first(node, &homes)
}

async fn copy_from(node: &Node, ep: &bm_raft::PeerEndpoint, addr: &str, sha: &str) -> Result<(), ApiError> {
    let upload = ulid::Ulid::new().to_string();
    let mut offset = 0u64;
    loop {
        let call = PeerCall::BlobGet { sha: sha.to_string(), offset, len: CHUNK as u64 };
        let bytes = match forward::call(ep, addr, &call, PIECE_TIMEOUT).await? {
            Called::Ok(b) => b,
            Called::NotLeader => return Err(ApiError::new(ErrorCode::Internal, "unexpected answer to a blob read")),
        };
        let (n, last) = (bytes.len() as u64, bytes.len() < CHUNK);
        node.blobs()
            .put_piece(&upload, offset, bytes.into(), last.then_some(sha), true)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot keep blob {sha}: {e}")))?;
        if last {
            return Ok(());
        }
        offset += n;
    }
}
