//! Storing an upload on a majority of the voters before it is
//! acknowledged.
//!
//! An upload is taken piece by piece: each piece is hashed, written to a
//! staging file here and sent on to every peer as soon as it arrives, so
//! the copies overlap the transfer from the agent instead of following
//! it. The last piece carries the whole blob's sha256; each store then
//! checks the whole and keeps it under that name.

use std::time::Duration;

use bm_api::{ApiError, ErrorCode};
use bytes::Bytes;
use futures::stream::{FuturesUnordered, Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::CHUNK;
use crate::cluster::forward::{self, Called};
use crate::cluster::proto::PeerCall;
use crate::cluster::quorum;
use crate::node::Node;

/// Longest one piece may take to reach a peer.
const PIECE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pieces of one blob in flight to one peer at once: enough to keep the
/// link busy while the peer writes earlier pieces.
const WINDOW: usize = 4;

/// One piece on its way to a store.
#[derive(Clone)]
struct Piece {
    offset: u64,
    bytes: Bytes,
    /// The whole blob's sha256, on the last piece only.
    sha: Option<String>,
}

/// A store receiving the pieces (this node's disk or a peer), and what it
/// ended with.
struct Sink {
    tx: mpsc::UnboundedSender<Piece>,
    done: JoinHandle<Result<(), ApiError>>,
}

/// A blob held whole in memory as pieces for [`store_stream`].
pub fn pieces(bytes: Bytes) -> impl Stream<Item = Result<Bytes, ApiError>> + Unpin {
    let len = bytes.len();
    futures::stream::iter((0..len).step_by(CHUNK).map(move |at| Ok(bytes.slice(at..(at + CHUNK).min(len)))))
}

/// Writes the `size` bytes `pieces` yields here and on enough peers that a
/// majority of the voters hold them; returns their sha256. Copies to the
/// remaining peers go on in the background. An error from `pieces`, or
/// fewer or more bytes than `size`, stores nothing.
pub async fn store_stream(
    node: &Node,
    size: u64,
    mut pieces: impl Stream<Item = Result<Bytes, ApiError>> + Unpin,
) -> Result<String, ApiError> {
    let upload = ulid::Ulid::new().to_string();
    let local = {
        let (tx, rx) = mpsc::unbounded_channel();
        Sink { tx, done: tokio::spawn(keep_here(node.clone(), upload.clone(), rx)) }
    };
    let (needed, others) = quorum::copies(node);
    let peers: Vec<(quorum::Copy, Sink)> = match node.peer() {
        None => Vec::new(),
        Some(ep) => others
            .into_iter()
            .map(|copy| {
                let (tx, rx) = mpsc::unbounded_channel();
                let done = tokio::spawn(send_to_peer(ep.clone(), copy.addr.clone(), upload.clone(), rx));
                (copy, Sink { tx, done })
            })
            .collect(),
    };
    let send = |p: Piece| {
        let _ = local.tx.send(p.clone());
        for (_, s) in &peers {
            let _ = s.tx.send(p.clone());
        }
    };

    // The bytes are hashed on a thread of their own while the next pieces
    // arrive and the earlier ones travel; only the last piece, which
    // carries the sha256, waits for the hash.
    let (to_hash, mut hash_rx) = mpsc::unbounded_channel::<Bytes>();
    let mut hashing = tokio::task::spawn_blocking(move || {
        let mut h = Sha256::new();
        while let Some(b) = hash_rx.blocking_recv() {
            h.update(&b);
        }
        hex::encode(h.finalize())
    });
    let mut to_hash = Some(to_hash);
    let mut offset = 0u64;
    let mut sha = None;
    while sha.is_none() {
        let bytes = match pieces.next().await {
            Some(piece) => piece?,
            None if size == 0 && offset == 0 => Bytes::new(),
            None => {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!("the upload ended after {offset} of the {size} bytes announced"),
                ))
            }
        };
        let end = offset + bytes.len() as u64;
        if end > size {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("the upload is longer than the {size} bytes announced"),
            ));
        }
        if let Some(tx) = &to_hash {
            let _ = tx.send(bytes.clone());
        }
        if end == size {
            to_hash = None; // The hasher's input ends here.
            let digest = (&mut hashing)
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot hash an upload: {e}")))?;
            sha = Some(digest);
        }
        send(Piece { offset, bytes, sha: sha.clone() });
        offset = end;
    }
    let sha = sha.expect("the loop ends with the sha256");

    let internal = |e: tokio::task::JoinError| ApiError::new(ErrorCode::Internal, e.to_string());
    // The copies still running once enough have landed finish on their
    // own (their tasks run on).
    let remote = quorum::wait(
        "the upload",
        needed,
        peers.into_iter().map(|(copy, s)| (copy, async move { s.done.await.map_err(internal)? })).collect(),
    );
    let here = async { local.done.await.map_err(internal)? };
    tokio::try_join!(here, remote)?;
    Ok(sha)
}

/// Writes the pieces to this node's store.
async fn keep_here(node: Node, upload: String, mut rx: mpsc::UnboundedReceiver<Piece>) -> Result<(), ApiError> {
    while let Some(p) = rx.recv().await {
        node.blobs()
            // This node hashed the bytes as they came: no need to read them back.
            .put_piece(&upload, p.offset, p.bytes, p.sha.as_deref(), false)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot store a blob: {e}")))?;
        if p.sha.is_some() {
            return Ok(());
        }
    }
    Err(ApiError::new(ErrorCode::Internal, "the upload stopped before its end"))
}

/// Sends the pieces to the node at `addr`, up to [`WINDOW`] at once; the
/// last (which makes the peer check the whole and keep it) goes once every
/// other piece has landed.
async fn send_to_peer(
    ep: bm_raft::PeerEndpoint,
    addr: String,
    upload: String,
    mut rx: mpsc::UnboundedReceiver<Piece>,
) -> Result<(), ApiError> {
    let mut inflight = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(r) = inflight.next(), if !inflight.is_empty() => r?,
            p = rx.recv(), if inflight.len() < WINDOW => {
                let Some(p) = p else {
                    return Err(ApiError::new(ErrorCode::Internal, "the upload stopped before its end"));
                };
                if p.sha.is_none() {
                    inflight.push(put(&ep, &addr, &upload, p));
                    continue;
                }
                while let Some(r) = inflight.next().await {
                    r?;
                }
                return put(&ep, &addr, &upload, p).await;
            }
        }
    }
}

/// Sends one piece to the node at `addr`.
async fn put(ep: &bm_raft::PeerEndpoint, addr: &str, upload: &str, p: Piece) -> Result<(), ApiError> {
    let call = PeerCall::BlobPut { upload: upload.to_string(), offset: p.offset, sha: p.sha };
    match forward::call_with(ep, addr, &call, Some(p.bytes), PIECE_TIMEOUT).await? {
        Called::Ok(_) => Ok(()),
        Called::NotLeader => Err(ApiError::new(ErrorCode::Internal, "unexpected answer to a blob piece")),
    }
}
