//! One agent connection: a task per stream, each answering one call.
//!
//! A broken request (oversized, truncated or unreadable frame) is answered
//! with an error naming what was wrong when the stream still works, and
//! otherwise resets only its own stream; the connection goes on.

use std::net::SocketAddr;

use bm_api::agent_link::proto::{AgentReply, AgentRequest, MAX_FRAME};
use bm_api::frame::{read_frame, write_frame, ReadFrameError};
use bm_api::{ApiError, ErrorCode};
use futures::StreamExt as _;
use quinn::{Connection, ReadError, RecvStream, SendStream, VarInt};

use super::dispatch::Trailer;
use crate::node::Node;

/// Stream reset code for a request that could not be read at all.
const CODE_BAD_FRAME: u32 = 1;
/// Stream reset code for an answer whose bytes could not all be read here.
const CODE_SOURCE_FAILED: u32 = 3;

/// Serves the streams of one agent connection until it closes.
pub async fn connection(node: Node, conn: Connection) {
    let peer = conn.remote_address();
    let _counted = node.agent_connected();
    tracing::info!(agent = %peer, "agent connected");
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(stream(node.clone(), send, recv, peer));
            }
            Err(e) => {
                tracing::debug!(agent = %peer, reason = %e, "agent connection ended");
                return;
            }
        }
    }
}

async fn stream(node: Node, mut send: SendStream, mut recv: RecvStream, peer: SocketAddr) {
    let frame = match read_frame(&mut recv, MAX_FRAME).await {
        Ok(f) => f,
        Err(ReadFrameError::Read(e @ (ReadError::ConnectionLost(_) | ReadError::Reset(_)))) => {
            tracing::debug!(agent = %peer, reason = %e, "agent call abandoned");
            return;
        }
        Err(e @ ReadFrameError::TooLarge { .. }) => {
            tracing::warn!(agent = %peer, error = %e, "refused an agent call");
            let _ = recv.stop(VarInt::from_u32(CODE_BAD_FRAME));
            let reply: AgentReply = Err(ApiError::new(ErrorCode::BadRequest, format!("agent call refused: {e}")));
            return answer(&mut send, peer, &reply, None).await;
        }
        Err(e) => {
            tracing::warn!(agent = %peer, error = %e, "unreadable agent call; resetting its stream");
            let _ = send.reset(VarInt::from_u32(CODE_BAD_FRAME));
            return;
        }
    };
    let (reply, trailer) = match serde_json::from_slice::<AgentRequest>(&frame) {
        Ok(req) => super::dispatch::call(&node, req, &mut recv).await,
        Err(e) => {
            tracing::warn!(agent = %peer, error = %e, "refused an agent call");
            (Err(ApiError::new(ErrorCode::BadRequest, format!("agent call unreadable: {e}"))), None)
        }
    };
    answer(&mut send, peer, &reply, trailer).await;
}

/// Writes the answer frame, then any bytes that follow it, and ends the stream.
async fn answer(send: &mut SendStream, peer: SocketAddr, reply: &AgentReply, trailer: Option<Trailer>) {
    let result = async {
        let frame = serde_json::to_vec(reply).map_err(|e| e.to_string())?;
        write_frame(send, frame.into(), MAX_FRAME).await.map_err(|e| e.to_string())?;
        if let Some(mut pieces) = trailer {
            while let Some(piece) = pieces.next().await {
                match piece {
                    Ok(bytes) => send.write_chunk(bytes).await.map_err(|e| e.to_string())?,
                    Err(e) => {
                        // Cut, so the agent sees a failed download and not a short file.
                        let _ = send.reset(VarInt::from_u32(CODE_SOURCE_FAILED));
                        return Err(format!("the bytes after the answer failed: {e}"));
                    }
                }
            }
        }
        send.finish().map_err(|e| e.to_string())
    };
    if let Err(e) = result.await {
        tracing::debug!(agent = %peer, error = %e, "cannot send the answer to an agent");
    }
}
