//! The serving side of the peer link: accept connections, then one task per
//! stream, each answering one request.
//!
//! A broken request (oversized, truncated or undecodable frame) stops and
//! resets only its own stream: the connection and its other streams go on.

use std::net::SocketAddr;

use quinn::{Connection, ReadError, RecvStream, SendStream, VarInt};

use super::frame::{read_frame, write_frame, ReadFrameError};
use super::proto::{Request, Response, CODE_BAD_FRAME, CODE_BAD_REQUEST, CODE_INTERNAL};
use super::{AppHandler, FrameLimits};
use crate::codec;
use crate::types::Raft;

/// What a stream task needs; cloned into every task.
#[derive(Clone)]
pub(crate) struct Service {
    pub(crate) raft: Raft,
    pub(crate) app: AppHandler,
    pub(crate) limits: FrameLimits,
    pub(crate) contact: super::contact::LeaderContact,
}

/// Accepts connections until the endpoint closes.
pub(crate) async fn accept_loop(endpoint: quinn::Endpoint, service: Service) {
    while let Some(incoming) = endpoint.accept().await {
        let service = service.clone();
        tokio::spawn(async move {
            let peer = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve_connection(conn, peer, service).await,
                // A client without a certificate from the cluster CA ends here.
                Err(e) => tracing::warn!(peer = %peer, error = %e, "refused peer connection at the handshake"),
            }
        });
    }
    tracing::debug!("peer endpoint closed; no longer accepting");
}

async fn serve_connection(conn: Connection, peer: SocketAddr, service: Service) {
    tracing::debug!(peer = %peer, "peer connected");
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                let service = service.clone();
                tokio::spawn(serve_stream(send, recv, peer, service));
            }
            Err(e) => {
                tracing::debug!(peer = %peer, reason = %e, "peer connection ended");
                return;
            }
        }
    }
}

async fn serve_stream(mut send: SendStream, mut recv: RecvStream, peer: SocketAddr, service: Service) {
    let max = service.limits.max_frame;
    let body = match read_frame(&mut recv, max).await {
        Ok(b) => b,
        // The caller gave up (timeout) or the connection went away: nothing to refuse.
        Err(ReadFrameError::Read(e @ (ReadError::ConnectionLost(_) | ReadError::Reset(_)))) => {
            tracing::debug!(peer = %peer, reason = %e, "peer request abandoned");
            return;
        }
        Err(e) => return refuse(&mut send, &mut recv, peer, CODE_BAD_FRAME, &e),
    };
    let req: Request = match codec::decode_limited("peer request", &body, max) {
        Ok(r) => r,
        Err(e) => return refuse(&mut send, &mut recv, peer, CODE_BAD_REQUEST, &e),
    };
    let kind = req.kind();
    let resp = answer(&service, req).await;
    let bytes = match codec::encode("peer response", &resp) {
        Ok(b) => b,
        Err(e) => return refuse(&mut send, &mut recv, peer, CODE_INTERNAL, &e),
    };
    if let Err(e) = write_frame(&mut send, &bytes, max).await {
        tracing::warn!(peer = %peer, request = kind, error = %e, "cannot send the answer");
        let _ = send.reset(VarInt::from_u32(CODE_INTERNAL));
        return;
    }
    let _ = send.finish();
}

async fn answer(service: &Service, req: Request) -> Response {
    match req {
        Request::AppendEntries(r) => {
            let resp = service.raft.append_entries(r).await;
            // Anything but "your vote is stale" comes from the current leader.
            if matches!(&resp, Ok(a) if !matches!(a, openraft::raft::AppendEntriesResponse::HigherVote(_))) {
                service.contact.touch();
            }
            Response::AppendEntries(resp)
        }
        Request::Vote(r) => Response::Vote(service.raft.vote(r).await),
        Request::InstallSnapshot(r) => Response::InstallSnapshot(service.raft.install_snapshot(r).await),
        Request::App(r) => Response::App((service.app)(r).await),
    }
}

fn refuse(send: &mut SendStream, recv: &mut RecvStream, peer: SocketAddr, code: u32, reason: &dyn std::fmt::Display) {
    tracing::warn!(peer = %peer, reason = %reason, "refused a peer request; resetting its stream");
    let code = VarInt::from_u32(code);
    let _ = recv.stop(code);
    let _ = send.reset(code);
}
