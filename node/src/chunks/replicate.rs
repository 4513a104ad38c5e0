//! Storing a chunk on a majority of the voters before its reference is
//! proposed.

use std::sync::Arc;
use std::time::Duration;

use bm_api::{ApiError, ErrorCode};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::cluster::forward::{self, Called};
use crate::cluster::proto::PeerCall;
use crate::cluster::quorum::{self, Copy};
use crate::node::Node;
use crate::sm::EventLog;

/// Longest a copy may take to reach a peer.
const COPY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the homes may take to confirm their copies before every
/// other voter gets one too.
const HEDGE: Duration = Duration::from_millis(500);

/// Packs `log`, writes it on its homes (a majority of the voters, see
/// [`super::placement`]) and returns its sha256 once they all hold it.
/// When a home cannot take it (down, cut off, or slower than [`HEDGE`]),
/// or missed a copy lately, the chunk goes to every voter instead (this
/// node included), and is acknowledged once a majority of the voters hold
/// it; repair later brings it to the home that missed it. Without a peer
/// link the chunk is stored here only.
pub async fn store(node: &Node, log: EventLog) -> Result<[u8; 32], ApiError> {
    let bytes = bm_raft::codec::encode("log chunk", &log)
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot pack a log chunk: {e}")))?;
    let bytes = Bytes::from(bytes);
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    node.chunks().cache.insert(sha, Arc::new(log));

    // `needed`: other voters' copies that make a majority with this
    // node's own, when it keeps one.
    let (needed, others) = quorum::copies(node);
    let voters = quorum::voters(node);
    let homes = crate::cluster::placement::homes(&sha, &voters);
    let here = node.peer().is_none() || homes.contains(&node.id());
    let voter_here = voters.contains(&node.id());
    let put_here = || async {
        node.chunks().store.put(&sha, bytes.clone()).await.map_err(|e| {
            ApiError::new(ErrorCode::Internal, format!("cannot store log chunk {}: {e}", super::hex(&sha)))
        })
    };
    let local = async {
        if here {
            put_here().await
        } else {
            Ok(())
        }
    };
    let remote = async {
        let from_homes = if here { needed } else { needed + usize::from(voter_here) };
        let to_homes: Vec<Copy> = others.iter().filter(|c| homes.contains(&c.id)).cloned().collect();
        let missed = node.missed();
        if !missed.any(to_homes.iter().map(|c| c.id)) {
            let ids: Vec<u64> = to_homes.iter().map(|c| c.id).collect();
            let copies = send(node, sha, &bytes, to_homes);
            match tokio::time::timeout(HEDGE, quorum::wait("the log chunk", from_homes, copies)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => {
                    tracing::warn!(sha = %super::hex(&sha), error = %e.message, "a home missed a log chunk; copying it to every voter")
                }
                Err(_) => {
                    // The copies still under way go on; one that arrives
                    // forgets its home's miss.
                    ids.iter().for_each(|id| missed.missed(*id));
                    tracing::warn!(sha = %super::hex(&sha), "the homes of a log chunk are slow; copying it to every voter")
                }
            }
        }
        // This node keeps a copy too now (when it votes, its copy counts),
        // and homes that have it already answer at once (a put of a chunk
        // already there writes nothing).
        let voters: Vec<Copy> = others.into_iter().filter(|c| c.voter).collect();
        let mine = async {
            if !here && voter_here {
                put_here().await
            } else {
                Ok(())
            }
        };
        tokio::try_join!(mine, quorum::wait("the log chunk", needed, send(node, sha, &bytes, voters))).map(drop)
    };
    tokio::try_join!(local, remote)?;
    Ok(sha)
}

/// Starts a copy of the chunk to each of `to`; each runs to its end in the
/// background even when nobody waits for it any more, and notes whether
/// its node took it.
fn send(
    node: &Node,
    sha: [u8; 32],
    bytes: &Bytes,
    to: Vec<Copy>,
) -> Vec<(Copy, impl std::future::Future<Output = Result<(), ApiError>>)> {
    let Some(ep) = node.peer() else { return Vec::new() };
    to.into_iter()
        .map(|copy| {
            let call = PeerCall::ChunkPut { sha };
            let (ep, addr, body) = (ep.clone(), copy.addr.clone(), bytes.clone());
            let (missed, id) = (node.missed().clone(), copy.id);
            let task = tokio::spawn(async move {
                let done = match forward::call_with(&ep, &addr, &call, Some(body), COPY_TIMEOUT).await {
                    Ok(Called::Ok(_)) => Ok(()),
                    Ok(Called::NotLeader) => Err(ApiError::new(ErrorCode::Internal, "unexpected answer to a chunk")),
                    Err(e) => Err(e),
                };
                match &done {
                    Ok(()) => missed.reached(id),
                    Err(_) => missed.missed(id),
                }
                done
            });
            let done = async move { task.await.map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))? };
            (copy, done)
        })
        .collect()
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
