//! A blob's bytes as a stream, for downloads: read from this node's disk
//! a piece at a time, or, on a node that does not hold it, from a peer
//! (its homes first) without keeping a copy.
//!
//! A download used to read the whole range into memory (a 1 GiB output
//! took 1 GiB of the node's memory per request), and a node without the
//! blob copied all of it to its disk before the first byte went out.
//! Since blobs live on their homes only, one node in three lacks any
//! given blob; streaming from a home serves it at once and leaves the
//! placement as it is (repair, not reads, decides who keeps what).

use std::time::Duration;

use bm_api::{ApiError, ErrorCode};
use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

use super::CHUNK;
use crate::cluster::forward::{self, Called};
use crate::cluster::proto::PeerCall;
use crate::cluster::quorum::Copy;
use crate::node::Node;

/// Pieces read ahead of the client.
const AHEAD: usize = 2;
/// Longest one piece may take from a peer.
const PIECE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the pieces come from.
enum Source {
    /// This node's disk.
    Here,
    /// Peers, the one that answered last first.
    Peers(Vec<Copy>),
}

/// The `len` bytes of blob `sha` from `start`. The first piece is read
/// before this returns, so a blob nobody can supply is an error here and
/// not a response cut short; a later failure ends the stream with an
/// error (the client sees a short body).
pub async fn open(
    node: &Node,
    sha: &str,
    start: u64,
    len: u64,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static, ApiError> {
    let mut source = if node.blobs().has(sha).await {
        Source::Here
    } else {
        let peers = super::fetch::peers_for(node, sha, None);
        if peers.is_empty() {
            return Err(ApiError::new(ErrorCode::Internal, format!("blob {sha} is missing from this node")));
        }
        Source::Peers(peers)
    };
    let first_len = len.min(CHUNK as u64);
    let first = piece(node, &mut source, sha, start, first_len).await?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(AHEAD);
    let (node, sha) = (node.clone(), sha.to_string());
    tokio::spawn(async move {
        let (mut at, end) = (start + first_len, start + len);
        while at < end {
            let n = (end - at).min(CHUNK as u64);
            let next = piece(&node, &mut source, &sha, at, n).await.map_err(|e| std::io::Error::other(e.message));
            let failed = next.is_err();
            // A closed channel: the client went away.
            if tx.send(next).await.is_err() || failed {
                return;
            }
            at += n;
        }
    });
    let first = futures::stream::once(futures::future::ready(Ok(first)));
    Ok(futures::StreamExt::chain(first, tokio_stream::wrappers::ReceiverStream::new(rx)))
}

/// `len` bytes at `offset` from `source`; with peers, each is asked in
/// turn until one answers, and it goes first for the next piece.
async fn piece(node: &Node, source: &mut Source, sha: &str, offset: u64, len: u64) -> Result<Bytes, ApiError> {
    let peers = match source {
        Source::Here => {
            return node.blobs().read_range(sha, offset, len as usize).await.map(Bytes::from).map_err(|e| {
                ApiError::new(ErrorCode::Internal, format!("blob {sha} unreadable at byte {offset}: {e}"))
            })
        }
        Source::Peers(peers) => peers,
    };
    let Some(ep) = node.peer() else {
        return Err(ApiError::new(ErrorCode::Internal, format!("blob {sha} is missing from this node")));
    };
    let mut why = Vec::new();
    for i in 0..peers.len() {
        let (id, addr) = (peers[i].id, &peers[i].addr);
        let call = PeerCall::BlobGet { sha: sha.to_string(), offset, len };
        match forward::call(ep, addr, &call, PIECE_TIMEOUT).await {
            Ok(Called::Ok(b)) if b.len() as u64 == len => {
                peers[..=i].rotate_right(1);
                return Ok(b.into());
            }
            Ok(Called::Ok(b)) => why.push(format!("node {id}: {} bytes, not {len}", b.len())),
            Ok(Called::NotLeader) => why.push(format!("node {id}: unexpected answer")),
            Err(e) => why.push(format!("node {id}: {}", e.message)),
        }
    }
    Err(ApiError::new(
        ErrorCode::Unavailable,
        format!("no node could supply blob {sha} at byte {offset}: {}", why.join("; ")),
    ))
}
