//! Reading a chunk on any node: from the cache, this node's store, or a
//! peer that has it (then kept here too).

use std::sync::Arc;
use std::time::Duration;

use bm_api::{ApiError, ErrorCode};
use futures::stream::{FuturesUnordered, StreamExt};

use crate::cluster::forward::{self, Called};
use crate::cluster::proto::PeerCall;
use crate::node::Node;
use crate::sm::EventLog;

/// Longest a peer may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read waits for one peer before asking the next one too.
const HEDGE: Duration = Duration::from_millis(250);

/// The decoded chunk `sha`.
pub async fn load(node: &Node, sha: &[u8; 32]) -> Result<Arc<EventLog>, ApiError> {
    let chunks = node.chunks();
    if let Some(log) = chunks.cache.get(sha) {
        return Ok(log);
    }
    let bytes = match chunks.store.get(sha) {
        Ok(Some(b)) => b,
        Ok(None) => copy_from_peer(node, sha).await?,
        Err(e) => {
            tracing::warn!(sha = %super::hex(sha), error = %e, "a stored log chunk is damaged; copying it from a peer");
            copy_from_peer(node, sha).await?
        }
    };
    let log = Arc::new(super::decode(&bytes).map_err(|e| unreadable(sha, e))?);
    chunks.cache.insert(*sha, log.clone());
    Ok(log)
}

/// Copies the chunk from the first peer that answers with it, and keeps
/// it here. Peers are asked in turn, its homes first; when one has not
/// answered within [`HEDGE`] (a home that is down, or cut off, would
/// otherwise hold the read for the whole [`TIMEOUT`]), the next is asked
/// too, and the first good answer wins.
pub async fn copy_from_peer(node: &Node, sha: &[u8; 32]) -> Result<bytes::Bytes, ApiError> {
    let name = super::hex(sha);
    let Some(ep) = node.peer() else {
        return Err(ApiError::new(ErrorCode::Internal, format!("log chunk {name} is missing from this node")));
    };
    let homes = crate::cluster::placement::homes(sha, &crate::cluster::quorum::voters(node));
    let others = crate::cluster::quorum::others_homes_first(node, &homes);
    let ask = |copy: crate::cluster::quorum::Copy| async move {
        let got = forward::call(ep, &copy.addr, &PeerCall::ChunkGet { sha: *sha }, TIMEOUT).await;
        (copy.id, got)
    };
    let mut queue = others.into_iter();
    let mut asked = FuturesUnordered::new();
    let mut why = Vec::new();
    loop {
        if asked.is_empty() {
            match queue.next() {
                Some(copy) => asked.push(ask(copy)),
                None => break,
            }
        }
        tokio::select! {
            Some((id, got)) = asked.next() => match got {
                Ok(Called::Ok(bytes)) if !bytes.is_empty() => {
                    let bytes = bytes::Bytes::from(bytes);
                    super::replicate::keep(node, *sha, bytes.clone()).await?;
                    return Ok(bytes);
                }
                Ok(_) => why.push(format!("node {id}: does not have it")),
                Err(e) => why.push(format!("node {id}: {}", e.message)),
            },
            _ = tokio::time::sleep(HEDGE), if queue.len() > 0 => {
                if let Some(copy) = queue.next() {
                    asked.push(ask(copy));
                }
            }
            else => break,
        }
    }
    Err(ApiError::new(ErrorCode::Unavailable, format!("no node could supply log chunk {name}: {}", why.join("; "))))
}

fn unreadable(sha: &[u8; 32], e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("log chunk {} unreadable: {e}", super::hex(sha)))
}
