//! The serving side of the peer link: accept connections, then one task per
//! stream, each answering one request.
//!
//! A broken request (oversized, truncated or undecodable frame) stops and
//! resets only its own stream: the connection and its other streams go on.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use quinn::{Connection, ReadError, RecvStream, SendStream, VarInt};

use super::proto::{Request, Response, CODE_BAD_FRAME, CODE_BAD_REQUEST, CODE_INTERNAL};
use super::{AgentConnHandler, AppHandler, FrameLimits};
use crate::codec;
use crate::tls::ALPN_PEER;
use crate::types::Raft;
use bm_api::frame::{read_bytes, read_frame, write_frame, ReadFrameError};

/// What a stream task needs; cloned into every task.
#[derive(Clone)]
pub(crate) struct Service {
    pub(crate) raft: Raft,
    pub(crate) app: AppHandler,
    pub(crate) limits: FrameLimits,
    pub(crate) contact: super::contact::LeaderContact,
    /// Who serves connections that speak the agent protocol, once set.
    pub(crate) agents: Arc<OnceLock<AgentConnHandler>>,
}

/// Accepts connections until the endpoint closes.
pub(crate) async fn accept_loop(endpoint: quinn::Endpoint, service: Service) {
    while let Some(incoming) = endpoint.accept().await {
        let service = service.clone();
        tokio::spawn(async move {
            let peer = incoming.remote_address();
            match incoming.await {
                Ok(conn) => route(conn, peer, service).await,
                // A client without a certificate from the cluster CA ends here.
                Err(e) => tracing::warn!(peer = %peer, error = %e, "refused peer connection at the handshake"),
            }
        });
    }
    tracing::debug!("peer endpoint closed; no longer accepting");
}

/// Error code a connection is closed with when it may not speak what it asked for.
const CODE_REFUSED: u32 = 1;

/// Sends a connection to the protocol it negotiated: the peer protocol for a
/// node showing a certificate from the cluster CA, the agent protocol to the
/// node's agent service, anything else closed with a warning.
async fn route(conn: Connection, peer: SocketAddr, service: Service) {
    let alpn = conn
        .handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol);
    match alpn.as_deref() {
        Some(ALPN_PEER) if conn.peer_identity().is_some() => serve_connection(conn, peer, service).await,
        Some(ALPN_PEER) => {
            tracing::warn!(peer = %peer, "refused peer connection: no client certificate from the cluster CA");
            conn.close(CODE_REFUSED.into(), b"a peer must show a node certificate");
        }
        Some(a) if a == bm_api::agent_link::ALPN => match service.agents.get() {
            Some(handler) => handler(conn).await,
            None => {
                tracing::warn!(peer = %peer, "refused agent connection: this node serves no agents");
                conn.close(CODE_REFUSED.into(), b"no agent service here");
            }
        },
        other => {
            tracing::warn!(peer = %peer, alpn = ?other, "refused peer connection: unknown protocol");
            conn.close(CODE_REFUSED.into(), b"unknown protocol");
        }
    }
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
    let received = std::time::Instant::now();
    let size = body.len();
    let req: Request = match codec::decode_limited("peer request", &body, max) {
        Ok(r) => r,
        Err(e) => return refuse(&mut send, &mut recv, peer, CODE_BAD_REQUEST, &e),
    };
    let kind = req.kind();
    let body = match &req {
        Request::AppBody { body_len, .. } if *body_len > max as u64 => {
            let e = format!("a body of {body_len} bytes is over the limit of {max}");
            return refuse(&mut send, &mut recv, peer, CODE_BAD_FRAME, &e);
        }
        Request::AppBody { body_len, .. } => match read_bytes(&mut recv, *body_len as usize).await {
            Ok(b) => Some(bytes::Bytes::from(b)),
            Err(ReadFrameError::Read(e @ (ReadError::ConnectionLost(_) | ReadError::Reset(_)))) => {
                tracing::debug!(peer = %peer, reason = %e, "peer request abandoned");
                return;
            }
            Err(e) => return refuse(&mut send, &mut recv, peer, CODE_BAD_FRAME, &e),
        },
        _ => None,
    };
    let decoded = std::time::Instant::now();
    let resp = answer(&service, req, body).await;
    tracing::debug!(
        peer = %peer,
        request = kind,
        bytes = size,
        decode_micros = bm_api::latency::micros(decoded - received),
        answer_micros = bm_api::latency::micros(decoded.elapsed()),
        "peer request answered"
    );
    let bytes = match codec::encode("peer response", &resp) {
        Ok(b) => b,
        Err(e) => return refuse(&mut send, &mut recv, peer, CODE_INTERNAL, &e),
    };
    if let Err(e) = write_frame(&mut send, bytes.into(), max).await {
        tracing::warn!(peer = %peer, request = kind, error = %e, "cannot send the answer");
        let _ = send.reset(VarInt::from_u32(CODE_INTERNAL));
        return;
    }
    let _ = send.finish();
}

async fn answer(service: &Service, req: Request, body: Option<bytes::Bytes>) -> Response {
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
        Request::App(r) => Response::App((service.app)(r, None).await.map(crate::types::Payload)),
        Request::AppBody { head, .. } => Response::App((service.app)(head, body).await.map(crate::types::Payload)),
    }
}

fn refuse(send: &mut SendStream, recv: &mut RecvStream, peer: SocketAddr, code: u32, reason: &dyn std::fmt::Display) {
    tracing::warn!(peer = %peer, reason = %reason, "refused a peer request; resetting its stream");
    let code = VarInt::from_u32(code);
    let _ = recv.stop(code);
    let _ = send.reset(code);
}
