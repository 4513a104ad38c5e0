//! The agent's QUIC connection to the cluster: the nearest node, found by
//! racing a handshake and a `Hello` to every node, and a new race whenever
//! that node stops answering.
//!
//! Each call is one bi-directional stream. The calls are idempotent on the
//! server (events are numbered, outputs deduplicated, start and finish
//! repeatable), so a call whose answer was lost is simply made again, on
//! whichever node is nearest by then.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use quinn::Connection;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::Mutex;

use super::proto::{AgentAnswer, AgentCall, AgentReply, AgentRequest, MAX_FRAME};
use crate::client::ClientError;
use crate::frame::{read_frame, write_frame};
use crate::quic::SERVER_NAME;

/// How long a node may take to answer the handshake and `Hello`.
const PROBE: Duration = Duration::from_secs(3);
/// How long a call may take beyond any wait it asks for and the bytes it
/// moves: a node that is paused or cut off is given up after this, and the
/// call made elsewhere.
const CALL: Duration = Duration::from_secs(30);

/// The connection in use and where it goes.
#[derive(Clone)]
struct Current {
    addr: String,
    conn: Connection,
}

/// What clones of a link share: the endpoint and the current connection.
struct Shared {
    endpoint: quinn::Endpoint,
    addrs: Vec<String>,
    current: Mutex<Option<Current>>,
}

/// A QUIC link from an agent to the cluster; clones share the connection.
#[derive(Clone)]
pub struct AgentLink {
    shared: Arc<Shared>,
    token: Option<String>,
}

impl AgentLink {
    /// A link to the nodes at `addrs` ("host:port", their peer endpoints),
    /// trusting the cluster CA `ca_pem`. Nothing is connected until the first call.
    pub fn new(addrs: Vec<String>, ca_pem: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(!addrs.is_empty(), "no node address to connect to");
        let any: SocketAddr = "0.0.0.0:0".parse().expect("a valid address");
        let mut endpoint = crate::quic::endpoint(any, None).context("cannot open a UDP socket for the agent link")?;
        endpoint.set_default_client_config(crate::quic::anonymous_client_config(
            ca_pem,
            super::ALPN,
            crate::quic::Route::of(addrs.iter().map(String::as_str)),
        )?);
        let shared = Shared { endpoint, addrs, current: Mutex::new(None) };
        Ok(Self { shared: Arc::new(shared), token: None })
    }

    /// The same link, calling with the worker credential `token`.
    pub fn with_token(&self, token: String) -> Self {
        Self { shared: self.shared.clone(), token: Some(token) }
    }

    /// The node addresses this link may use.
    pub fn addrs(&self) -> &[String] {
        &self.shared.addrs
    }

    /// Makes one call; `body` is sent after the request (output bytes), and
    /// the bytes after the answer (input bytes) are returned with it.
    pub async fn call(&self, call: AgentCall, body: Option<Bytes>) -> Result<(AgentAnswer, Bytes), ClientError> {
        let mut rest = Vec::new();
        let body = body.map(Outgoing::Bytes).unwrap_or(Outgoing::None);
        let answer = self.call_with(call, body, Some(&mut rest), 0).await?;
        Ok((answer, rest.into()))
    }

    /// Makes one call, sending `body` after the request and writing the
    /// bytes that follow an input's answer to `sink` as they arrive. The
    /// call may take [`CALL`], plus any wait it asks for, plus the time to
    /// move its upload or `expected` download bytes at
    /// [`crate::patience::UPLOAD_FLOOR`].
    pub async fn call_with(
        &self,
        call: AgentCall,
        body: Outgoing,
        sink: Option<&mut (dyn AsyncWrite + Unpin + Send)>,
        expected: u64,
    ) -> Result<AgentAnswer, ClientError> {
        let wait = match &call {
            AgentCall::Instruction { wait } => Duration::from_secs(*wait),
            _ => Duration::ZERO,
        };
        let bytes = body.len().max(expected);
        let limit = CALL + wait + Duration::from_secs(bytes / crate::patience::UPLOAD_FLOOR);
        let name = call.name();
        let current = self.connection().await?;
        let req = AgentRequest { token: self.token.clone(), call };
        match tokio::time::timeout(limit, exchange(&current.conn, &req, body, sink)).await {
            Ok(Ok(Ok(answer))) => Ok(answer),
            Ok(Ok(Err(error))) => Err(ClientError::Api { status: error.code.status(), error }),
            Ok(Err(Failure::Protocol(message))) => Err(ClientError::Protocol { url: current.addr, message }),
            Ok(Err(Failure::Local(message))) => Err(ClientError::Local { message }),
            Ok(Err(Failure::Transport(message))) => Err(self.lost(current, name, message).await),
            Err(_) => Err(self.lost(current, name, format!("no answer within {limit:?}")).await),
        }
    }

    /// Forgets a connection that failed, so the next call races the nodes again.
    async fn lost(&self, failed: Current, call: &str, message: String) -> ClientError {
        tracing::warn!(node = %failed.addr, call, reason = %message, "agent link lost its node; will reconnect");
        let mut current = self.shared.current.lock().await;
        if current.as_ref().is_some_and(|c| c.conn.stable_id() == failed.conn.stable_id()) {
            failed.conn.close(0u32.into(), b"giving up on this node");
            *current = None;
        }
        ClientError::Transport { urls: failed.addr, message }
    }

    /// The connection in use, or the nearest node's after a race.
    async fn connection(&self) -> Result<Current, ClientError> {
        let mut current = self.shared.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| c.conn.close_reason().is_none()) {
            return Ok(c.clone());
        }
        let (c, rtt, node) = self.nearest().await?;
        tracing::info!(node = %c.addr, id = node, rtt_ms = rtt.as_secs_f64() * 1000.0, "agent link connected to the nearest node");
        *current = Some(c.clone());
        Ok(c)
    }

    /// Races a handshake and a `Hello` to every node; the first to answer is
    /// the nearest (smallest round trip) among those up.
    async fn nearest(&self) -> Result<(Current, Duration, u64), ClientError> {
        let mut race: FuturesUnordered<_> = self.shared.addrs.iter().map(|addr| self.probe(addr.clone())).collect();
        let mut failures = Vec::new();
        while let Some(result) = race.next().await {
            match result {
                Ok(found) => return Ok(found),
                Err(e) => failures.push(e),
            }
        }
        Err(ClientError::Transport { urls: self.shared.addrs.join(","), message: failures.join("; ") })
    }

    async fn probe(&self, addr: String) -> Result<(Current, Duration, u64), String> {
        let started = Instant::now();
        let attempt = async {
            let sock = tokio::net::lookup_host(&addr)
                .await
                .map_err(|e| format!("{addr}: {e}"))?
                .next()
                .ok_or_else(|| format!("{addr}: no address"))?;
            let conn = self
                .shared
                .endpoint
                .connect(sock, SERVER_NAME)
                .map_err(|e| format!("{addr}: {e}"))?
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            let hello = AgentRequest { token: None, call: AgentCall::Hello };
            match exchange(&conn, &hello, Outgoing::None, None).await {
                Ok(Ok(AgentAnswer::Hello { node })) => Ok((conn, node)),
                Ok(other) => Err(format!("{addr}: unexpected answer to hello: {other:?}")),
                Err(Failure::Protocol(m) | Failure::Transport(m) | Failure::Local(m)) => Err(format!("{addr}: {m}")),
            }
        };
        match tokio::time::timeout(PROBE, attempt).await {
            Ok(Ok((conn, node))) => Ok((Current { addr, conn }, started.elapsed(), node)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("{addr}: no answer within {PROBE:?}")),
        }
    }
}

/// What follows a request on its stream.
pub enum Outgoing {
    /// Nothing.
    None,
    /// Bytes already in memory.
    Bytes(Bytes),
    /// `size` bytes read as they go; an `Err` item abandons the call (the
    /// stream is reset, so the node stores nothing).
    Stream {
        /// How many bytes the stream yields when all goes well.
        size: u64,
        /// The bytes.
        body: super::UploadStream,
    },
}

impl Outgoing {
    fn len(&self) -> u64 {
        match self {
            Outgoing::None => 0,
            Outgoing::Bytes(b) => b.len() as u64,
            Outgoing::Stream { size, .. } => *size,
        }
    }
}

/// How an exchange failed.
enum Failure {
    /// The connection or stream broke: try another node.
    Transport(String),
    /// The node answered something unreadable.
    Protocol(String),
    /// This side stopped: the upload's source or the download's sink failed.
    Local(String),
}

/// Stream reset code when the agent abandons an upload.
const CODE_ABANDONED: u32 = 2;

/// One request and its answer on a fresh stream of `conn`.
async fn exchange(
    conn: &Connection,
    req: &AgentRequest,
    body: Outgoing,
    sink: Option<&mut (dyn AsyncWrite + Unpin + Send)>,
) -> Result<AgentReply, Failure> {
    let t = |e: &dyn std::fmt::Display| Failure::Transport(e.to_string());
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| t(&e))?;
    let frame = serde_json::to_vec(req).map_err(|e| Failure::Protocol(e.to_string()))?;
    write_frame(&mut send, frame.into(), MAX_FRAME).await.map_err(|e| t(&e))?;
    // A refused upload is stopped by the node, which answers why: the
    // answer is read even when the body could not be sent whole.
    let sent = match body {
        Outgoing::None => Ok(()),
        // Handed over as it is: copying a file into the stream cost as much
        // as sending it.
        Outgoing::Bytes(body) => send.write_chunk(body).await.map_err(|e| t(&e)),
        Outgoing::Stream { mut body, .. } => loop {
            match body.next().await {
                None => break Ok(()),
                Some(Ok(piece)) => {
                    if let Err(e) = send.write_chunk(piece).await {
                        break Err(t(&e));
                    }
                }
                Some(Err(e)) => {
                    let _ = send.reset(quinn::VarInt::from_u32(CODE_ABANDONED));
                    return Err(Failure::Local(format!("upload abandoned: {e}")));
                }
            }
        },
    };
    let _ = send.finish();
    let answer = match read_frame(&mut recv, MAX_FRAME).await {
        Ok(a) => a,
        Err(e) => return Err(sent.err().unwrap_or_else(|| t(&e))),
    };
    let reply: AgentReply =
        serde_json::from_slice(&answer).map_err(|e| Failure::Protocol(format!("unreadable answer: {e}")))?;
    if let Ok(AgentAnswer::Input { size }) = &reply {
        let Some(sink) = sink else {
            return Err(Failure::Protocol("an input answer to a call that expects none".into()));
        };
        let mut got = 0u64;
        while let Some(piece) = recv.read_chunk(usize::MAX, true).await.map_err(|e| t(&e))? {
            got += piece.bytes.len() as u64;
            if got > *size {
                return Err(Failure::Protocol(format!("input longer than the {size} bytes announced")));
            }
            sink.write_all(&piece.bytes).await.map_err(|e| Failure::Local(format!("cannot keep the input: {e}")))?;
        }
        if got != *size {
            return Err(Failure::Transport(format!("input ended after {got} of {size} bytes")));
        }
        sink.flush().await.map_err(|e| Failure::Local(format!("cannot keep the input: {e}")))?;
    }
    Ok(reply)
}
