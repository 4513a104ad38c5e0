//! Storing an upload on a majority of the voters before it is
//! acknowledged.

use std::time::Duration;

use bm_api::{ApiError, ErrorCode};
use futures::stream::{FuturesUnordered, StreamExt};

use super::CHUNK;
use crate::cluster::forward::{self, Called};
use crate::cluster::proto::PeerCall;
use crate::node::Node;

/// Longest one piece may take to reach a peer.
const PIECE_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes `bytes` here and on enough peers that a majority of the voters
/// hold them; returns the sha256. Copies to the other peers go on in the
/// background.
pub async fn store(node: &Node, bytes: bytes::Bytes) -> Result<String, ApiError> {
    let sha = node
        .blobs()
        .write(&bytes)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot store a blob: {e}")))?;
    let Some(ep) = node.peer().cloned() else { return Ok(sha) };
    let membership = node.raft().metrics().borrow().membership_config.membership().clone();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let me_votes = voters.contains(&node.id());
    let needed = (voters.len() / 2 + 1).saturating_sub(usize::from(me_votes));
    let mut pushes: FuturesUnordered<_> = membership
        .nodes()
        .filter(|(id, _)| **id != node.id())
        .map(|(id, info)| {
            let (ep, addr, sha, bytes, id) = (ep.clone(), info.peer_addr.clone(), sha.clone(), bytes.clone(), *id);
            let voter = voters.contains(&id);
            tokio::spawn(async move { (voter, id, push(&ep, &addr, &sha, &bytes).await) })
        })
        .collect();
    let mut acked = 0;
    let mut errors = Vec::new();
    while acked < needed {
        match pushes.next().await {
            Some(Ok((voter, _, Ok(())))) => acked += usize::from(voter),
            Some(Ok((_, id, Err(e)))) => errors.push(format!("node {id}: {}", e.message)),
            Some(Err(e)) => errors.push(e.to_string()),
            None => {
                return Err(ApiError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "the upload reached {} of the {needed} other voters it needs: {}",
                        acked,
                        errors.join("; ")
                    ),
                ))
            }
        }
    }
    // The remaining copies finish on their own (the spawned tasks run on).
    Ok(sha)
}

/// Sends a whole blob to the node at `addr`, piece by piece.
pub async fn push(ep: &bm_raft::PeerEndpoint, addr: &str, sha: &str, bytes: &[u8]) -> Result<(), ApiError> {
    let upload = ulid::Ulid::new().to_string();
    let mut offset = 0usize;
    loop {
        let end = (offset + CHUNK).min(bytes.len());
        let last = end == bytes.len();
        let call = PeerCall::BlobPut {
            sha: sha.to_string(),
            upload: upload.clone(),
            offset: offset as u64,
            last,
            bytes: bytes[offset..end].to_vec(),
        };
        match forward::call(ep, addr, &call, PIECE_TIMEOUT).await? {
            Called::Ok(_) => {}
            Called::NotLeader => return Err(ApiError::new(ErrorCode::Internal, "unexpected answer to a blob piece")),
        }
        if last {
            return Ok(());
        }
        offset = end;
    }
}
