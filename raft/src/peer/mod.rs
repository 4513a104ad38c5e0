//! The peer link: Raft RPCs and application requests between nodes, over
//! QUIC with mutual TLS (see [`crate::tls`]).
//!
//! Each node has one [`PeerEndpoint`] (one UDP socket) that both serves its
//! peers and calls them, so a peer's source address is its listen address.
//! A call opens one bi-directional stream on a cached connection, writes one
//! request frame (then, for a call with a body, its raw bytes), and reads
//! one response frame.

mod client;
mod contact;
mod network;
mod proto;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bm_api::quic::Route;

pub use contact::LeaderContact;
pub use network::{QuicNetwork, QuicPeer};

use crate::codec;
use crate::tls::PeerTls;
use crate::types::Raft;
use client::{CallError, Client};
use proto::{Request, Response};

/// Handler for application requests arriving on the peer link (the node uses it to forward writes, reads, status...).
///
/// The bytes are opaque to this crate: the encoded call, and the body sent
/// with [`PeerEndpoint::call_app_with`] if any. An `Err` travels back to
/// the caller as [`PeerError::Remote`].
pub type AppHandler = Arc<
    dyn Fn(Vec<u8>, Option<bytes::Bytes>) -> futures::future::BoxFuture<'static, Result<Vec<u8>, String>> + Send + Sync,
>;

/// Handler for a connection that speaks the agent protocol (the node's agent
/// service); the peer endpoint only routes such connections to it, so this
/// crate never learns what an agent says.
pub type AgentConnHandler = Arc<dyn Fn(quinn::Connection) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// Why a peer call failed.
///
/// Callers decide from it whether to retry elsewhere (`Unreachable`,
/// `Timeout`), report the remote's answer (`Remote`), or treat the peer as
/// broken (`Protocol`).
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// No connection could be made or it broke: the message names the address and the cause.
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// The peer was connected but did not answer in time.
    #[error("peer call timed out")]
    Timeout,
    /// The peer's application handler answered with this error.
    #[error("peer answered with an error: {0}")]
    Remote(String),
    /// The peer refused the request or answered something unreadable: the message names the address.
    #[error("peer protocol error: {0}")]
    Protocol(String),
}

impl From<CallError> for PeerError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Timeout { connected: true, .. } => PeerError::Timeout,
            CallError::Timeout { connected: false, ref addr, after } => {
                PeerError::Unreachable(format!("{addr}: no connection within {after:?}"))
            }
            CallError::Connect { .. } | CallError::Lost { .. } => PeerError::Unreachable(e.to_string()),
            CallError::TooLarge { .. } | CallError::Protocol { .. } => PeerError::Protocol(e.to_string()),
        }
    }
}

/// Size limits of the peer link's frames, so a peer cannot make a node
/// allocate or decode without bound.
#[derive(Clone, Copy, Debug)]
pub struct FrameLimits {
    /// Largest request or response frame, in bytes (at most 4 GiB - 1 on the wire).
    pub max_frame: usize,
}

impl Default for FrameLimits {
    /// 64 MiB: room for openraft's default 3 MiB snapshot chunks and large append batches.
    fn default() -> Self {
        Self { max_frame: codec::DEFAULT_LIMIT }
    }
}

/// One QUIC endpoint per node, used both to serve peers and to call them (one UDP socket, so a peer's source address is its listen address).
///
/// Clones share the endpoint and the connection cache.
#[derive(Clone)]
pub struct PeerEndpoint {
    endpoint: quinn::Endpoint,
    client: Arc<Client>,
    limits: FrameLimits,
    local: SocketAddr,
    contact: LeaderContact,
    agents: Arc<std::sync::OnceLock<AgentConnHandler>>,
}

impl PeerEndpoint {
    /// Binds the UDP socket at `addr` (port 0 picks one). Must be called
    /// within a Tokio runtime.
    pub fn bind(addr: SocketAddr, tls: &PeerTls, limits: FrameLimits) -> anyhow::Result<Self> {
        // A node bound to loopback is part of a cluster on this host, and so
        // are the agents that reach it.
        let route = if addr.ip().is_loopback() { Route::Loopback } else { Route::Network };
        let mut endpoint = bm_api::quic::endpoint(addr, Some(tls.server_config(route)?))
            .with_context(|| format!("cannot bind the peer endpoint on {addr}"))?;
        endpoint.set_default_client_config(tls.client_config(route)?);
        let local = endpoint.local_addr().context("peer endpoint has no local address")?;
        let client = Arc::new(Client::new(endpoint.clone(), limits));
        Ok(Self { endpoint, client, limits, local, contact: LeaderContact::default(), agents: Default::default() })
    }

    /// The bound address (with the port chosen when binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Raft's network factory: RPCs to the peer_addr in each target's
    /// NodeInfo. `durable` is this node's log mark ([`crate::Storage::durable`]):
    /// the commit index sent to followers never passes it.
    pub fn network(&self, durable: crate::Durable) -> QuicNetwork {
        QuicNetwork { client: self.client.clone(), durable }
    }

    /// Starts serving incoming connections: Raft RPCs go to `raft`, application requests to `app`.
    /// Returns the accept-loop task, which ends when the endpoint is closed.
    pub fn serve(&self, raft: Raft, app: AppHandler) -> tokio::task::JoinHandle<()> {
        let service = server::Service {
            raft,
            app,
            limits: self.limits,
            contact: self.contact.clone(),
            agents: self.agents.clone(),
        };
        tokio::spawn(server::accept_loop(self.endpoint.clone(), service))
    }

    /// Serves agent connections (the agent ALPN, no client certificate) with
    /// `handler` from now on; until then they are refused. Set once.
    pub fn serve_agents(&self, handler: AgentConnHandler) {
        if self.agents.set(handler).is_err() {
            tracing::warn!("the agent service was already set; keeping the first");
        }
    }

    /// Sends an application request to the node at `peer_addr` ("host:port") and waits for its answer.
    pub async fn call_app(&self, peer_addr: &str, req: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, PeerError> {
        match self.client.call(peer_addr, &Request::App(req), None, timeout).await? {
            Response::App(r) => r.map(|p| p.0).map_err(PeerError::Remote),
            _ => Err(PeerError::Protocol(format!("{peer_addr}: answer does not match the request"))),
        }
    }

    /// Like [`Self::call_app`], with `body` sent as raw bytes after the
    /// request (up to the frame limit), handed to the peer's handler as is.
    pub async fn call_app_with(
        &self,
        peer_addr: &str,
        req: Vec<u8>,
        body: bytes::Bytes,
        timeout: Duration,
    ) -> Result<Vec<u8>, PeerError> {
        let request = Request::AppBody { head: req, body_len: body.len() as u64 };
        match self.client.call(peer_addr, &request, Some(body), timeout).await? {
            Response::App(r) => r.map(|p| p.0).map_err(PeerError::Remote),
            _ => Err(PeerError::Protocol(format!("{peer_addr}: answer does not match the request"))),
        }
    }

    /// When a leader last replicated to this node (accepted AppendEntries).
    pub fn leader_contact(&self) -> &LeaderContact {
        &self.contact
    }

    /// Closes the endpoint (connections are dropped).
    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"closing");
        self.client.forget_all();
    }
}
