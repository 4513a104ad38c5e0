//! Storing an upload on a majority of the voters (its homes) before it
//! is acknowledged.
//!
//! An upload is taken piece by piece: each piece is hashed, written to a
//! staging file here and sent on to the other homes as soon as it
//! arrives, so the copies overlap the transfer from the agent instead of
//! following it. The last piece carries the whole blob's sha256; each
//! store then checks the whole and keeps it under that name.

use std::sync::Arc;
use std::time::Duration;

use bm_api::{ApiError, ErrorCode};
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::CHUNK;
use crate::cluster::forward::{self, Called};
use crate::cluster::missed::Missed;
use crate::cluster::proto::PeerCall;
use crate::cluster::quorum::{self, Copy};
use crate::node::Node;

/// Longest one piece may take to reach a peer.
const PIECE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after the upload has landed here the homes may take to
/// confirm their copies before the other voters get one too.
const HEDGE: Duration = Duration::from_secs(2);
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

/// Writes the `size` bytes `pieces` yields here and on the other homes of
/// the output `id` (see [`super::placement`]; with this node, a majority
/// of the voters), and returns their sha256 once a majority of the voters
/// hold them. When a home cannot take its copy (down, cut off, slower
/// than [`HEDGE`] once the upload has landed here, or it missed a copy
/// lately), the bytes go to the other voters too: from the start of the
/// upload when the miss is known, else from this node's disk; repair
/// later brings them to the home that missed them. An error from `pieces`, or fewer or more bytes
/// than `size`, stores nothing.
pub async fn store_stream(
    node: &Node,
    id: &str,
    size: u64,
    mut pieces: impl Stream<Item = Result<Bytes, ApiError>> + Unpin,
) -> Result<String, ApiError> {
    let upload = ulid::Ulid::new().to_string();
    let local = {
        let (tx, rx) = mpsc::unbounded_channel();
        Sink { tx, done: tokio::spawn(keep_here(node.clone(), upload.clone(), rx)) }
    };
    let (needed, others) = quorum::copies(node);
    let homes = super::placement::homes(id, &quorum::voters(node));
    let (to_homes, rest): (Vec<Copy>, Vec<Copy>) = others.into_iter().partition(|c| homes.contains(&c.id));
    let (first, mut rest): (Vec<Copy>, Vec<Copy>) = if node.missed().any(to_homes.iter().map(|c| c.id)) {
        // A home is likely down: every voter gets the pieces as they come.
        (to_homes.into_iter().chain(rest.into_iter().filter(|c| c.voter)).collect(), Vec::new())
    } else {
        (to_homes, rest.into_iter().filter(|c| c.voter).collect())
    };
    let peers: Vec<(Copy, Sink)> = match node.peer() {
        None => Vec::new(),
        Some(ep) => first
            .into_iter()
            .map(|copy| {
                let (tx, rx) = mpsc::unbounded_channel();
                let sent = send_to_peer(ep.clone(), node.missed().clone(), copy.clone(), upload.clone(), rx);
                (copy, Sink { tx, done: tokio::spawn(sent) })
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
    local.done.await.map_err(internal)??;
    // The copies still running once enough have landed finish on their
    // own (their tasks run on).
    let mut pending: FuturesUnordered<BoxFuture<'static, (Copy, Result<(), ApiError>)>> = peers
        .into_iter()
        .map(|(copy, s)| async move { (copy, s.done.await.map_err(internal).and_then(|r| r)) }.boxed())
        .collect();
    let (mut acked, mut errors, mut tried) = (0, Vec::new(), Vec::new());
    let mut hedge = Some(tokio::time::Instant::now() + HEDGE);
    while acked < needed {
        let next = match hedge {
            Some(at) => tokio::time::timeout_at(at, pending.next()).await.ok(),
            None => Some(pending.next().await),
        };
        match next {
            Some(Some((copy, Ok(())))) => {
                acked += usize::from(copy.voter);
                tried.push(copy.id);
                continue;
            }
            Some(Some((copy, Err(e)))) => {
                errors.push(format!("node {}: {}", copy.id, e.message));
                tried.push(copy.id);
                continue;
            }
            Some(None) if hedge.is_none() => {
                return Err(ApiError::new(
                    ErrorCode::Unavailable,
                    format!("the upload reached {acked} of the {needed} other voters it needs: {}", errors.join("; ")),
                ));
            }
            Some(None) => {
                tracing::warn!(%sha, missed = %errors.join("; "), "a home missed an upload; copying it to the other voters")
            }
            None => {
                tracing::warn!(%sha, "the homes of an upload are slow; copying it to the other voters too");
                let landed: Vec<u64> = tried.clone();
                homes.iter().filter(|h| !landed.contains(h)).for_each(|h| node.missed().missed(*h));
            }
        }
        // Too few homes took it in time: this node has it whole, and the
        // voters not tried yet get it from its disk (the homes still under
        // way go on and count too).
        hedge = None;
        let Some(ep) = node.peer() else { unreachable!("copies are needed only with a peer link") };
        for copy in std::mem::take(&mut rest) {
            let task = push(node.clone(), ep.clone(), copy.clone(), sha.clone(), size);
            pending.push(async move { (copy, tokio::spawn(task).await.map_err(internal).and_then(|r| r)) }.boxed());
        }
    }
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

/// Sends the pieces to the node `to`, up to [`WINDOW`] at once; the
/// last (which makes the peer check the whole and keep it) goes once every
/// other piece has landed. Notes in `missed` whether the node took them.
async fn send_to_peer(
    ep: bm_raft::PeerEndpoint,
    missed: Arc<Missed>,
    to: Copy,
    upload: String,
    mut rx: mpsc::UnboundedReceiver<Piece>,
) -> Result<(), ApiError> {
    let mut inflight = FuturesUnordered::new();
    let sent = async {
        loop {
            tokio::select! {
                Some(r) = inflight.next(), if !inflight.is_empty() => r?,
                p = rx.recv(), if inflight.len() < WINDOW => {
                    let Some(p) = p else {
                        // The upload failed here: not the peer's miss.
                        return Ok(Err(ApiError::new(ErrorCode::Internal, "the upload stopped before its end")));
                    };
                    if p.sha.is_none() {
                        inflight.push(put(&ep, &to.addr, &upload, p));
                        continue;
                    }
                    while let Some(r) = inflight.next().await {
                        r?;
                    }
                    return put(&ep, &to.addr, &upload, p).await.map(Ok);
                }
            }
        }
    };
    match sent.await {
        Ok(done) => {
            missed.reached(to.id);
            done
        }
        Err(e) => {
            missed.missed(to.id);
            Err(e)
        }
    }
}

/// Copies the stored blob `sha` of `size` bytes from this node's disk to
/// the node `to`, a piece at a time.
async fn push(node: Node, ep: bm_raft::PeerEndpoint, to: Copy, sha: String, size: u64) -> Result<(), ApiError> {
    let upload = ulid::Ulid::new().to_string();
    let mut offset = 0u64;
    loop {
        let len = (size - offset).min(CHUNK as u64);
        let bytes = node.blobs().read_range(&sha, offset, len as usize).await.map_err(|e| {
            ApiError::new(ErrorCode::Internal, format!("cannot read blob {sha} to copy it to node {}: {e}", to.id))
        })?;
        let last = offset + len == size;
        let piece = Piece { offset, bytes: bytes.into(), sha: last.then(|| sha.clone()) };
        match put(&ep, &to.addr, &upload, piece).await {
            Ok(()) => node.missed().reached(to.id),
            Err(e) => {
                node.missed().missed(to.id);
                return Err(e);
            }
        }
        if last {
            return Ok(());
        }
        offset += len;
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
