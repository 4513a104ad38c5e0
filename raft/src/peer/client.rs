//! The calling side of the peer link: one cached QUIC connection per peer
//! address, one bi-directional stream per call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use quinn::{Connection, ConnectionError, ReadError, WriteError};

use super::proto::{code_name, Request, Response};
use super::FrameLimits;
use crate::codec;
use crate::tls::PEER_SERVER_NAME;
use bm_api::frame::{read_frame, write_frame, ReadFrameError, WriteFrameError};

/// Why a call failed, before it is mapped to a [`super::PeerError`] or to
/// openraft's `RPCError`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No connection could be made (address, handshake, certificate).
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The connection broke during the call.
    #[error("connection to {addr} lost: {reason}")]
    Lost { addr: String, reason: String },
    /// The deadline passed; `connected` says whether a connection was up.
    #[error("call to {addr} timed out after {after:?}")]
    Timeout { addr: String, after: Duration, connected: bool },
    /// The request is over the frame limit; nothing was sent.
    #[error("request to {addr} of {len} bytes is over the frame limit of {max}")]
    TooLarge { addr: String, len: usize, max: usize },
    /// The peer answered something we cannot use, or refused the request.
    #[error("protocol error with {addr}: {reason}")]
    Protocol { addr: String, reason: String },
}

/// A handshake in progress, shared by every caller waiting for it.
type Pending = Shared<BoxFuture<'static, Result<Connection, String>>>;

/// One peer's cached connection, and the handshake in progress if there is
/// none: concurrent callers share one handshake instead of starting several.
#[derive(Default)]
struct Slot {
    conn: Mutex<Option<Connection>>,
    pending: Mutex<Option<Pending>>,
}

impl Slot {
    fn live(&self) -> Option<Connection> {
        let conn = self.conn.lock().expect("peer slot poisoned");
        conn.as_ref().filter(|c| c.close_reason().is_none()).cloned()
    }

    /// Forgets `conn` if it is still the cached one.
    fn forget(&self, conn: &Connection) {
        let mut cached = self.conn.lock().expect("peer slot poisoned");
        if cached.as_ref().is_some_and(|c| c.stable_id() == conn.stable_id()) {
            *cached = None;
        }
    }
}

/// Calls peers through the node's one QUIC endpoint.
pub(crate) struct Client {
    endpoint: quinn::Endpoint,
    limits: FrameLimits,
    peers: Mutex<HashMap<String, Arc<Slot>>>,
}

enum Stage {
    Connecting,
    Calling,
}

impl Client {
    pub(crate) fn new(endpoint: quinn::Endpoint, limits: FrameLimits) -> Self {
        Self { endpoint, limits, peers: Mutex::new(HashMap::new()) }
    }

    /// Drops every cached connection (the endpoint is closing).
    pub(crate) fn forget_all(&self) {
        self.peers.lock().expect("peer map poisoned").clear();
    }

    /// Sends `req` to `addr` (then `extra`, the raw body of a
    /// [`Request::AppBody`]) and waits for the answer, all within `timeout`.
    pub(crate) async fn call(
        &self,
        addr: &str,
        req: &Request,
        extra: Option<bytes::Bytes>,
        timeout: Duration,
    ) -> Result<Response, CallError> {
        let body = bytes::Bytes::from(codec::encode("peer request", req).map_err(|e| protocol(addr, e))?);
        if let Some(len) = extra.as_ref().map(|b| b.len()).filter(|&len| len > self.limits.max_frame) {
            return Err(CallError::TooLarge { addr: addr.to_string(), len, max: self.limits.max_frame });
        }
        let mut stage = Stage::Connecting;
        let started = std::time::Instant::now();
        let res = tokio::time::timeout(timeout, self.call_inner(addr, &body, extra, &mut stage)).await;
        // The round trip as the caller sees it; compared with the peer's own
        // handling time (logged there) it shows what the link and the
        // scheduler add (docs/benchmarks.md).
        tracing::debug!(
            peer = addr,
            request = req.kind(),
            bytes = body.len(),
            micros = bm_api::latency::micros(started.elapsed()),
            ok = matches!(res, Ok(Ok(_))),
            "peer call done"
        );
        match res {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout {
                addr: addr.to_string(),
                after: timeout,
                connected: matches!(stage, Stage::Calling),
            }),
        }
    }

    async fn call_inner(
        &self,
        addr: &str,
        body: &bytes::Bytes,
        extra: Option<bytes::Bytes>,
        stage: &mut Stage,
    ) -> Result<Response, CallError> {
        let slot = self.slot(addr);
        let conn = self.connection(addr, &slot).await?;
        *stage = Stage::Calling;
        let res = self.exchange(addr, &conn, body, extra).await;
        if let Err(CallError::Lost { .. }) = &res {
            // The next call makes a fresh connection.
            slot.forget(&conn);
        }
        let bytes = res?;
        codec::decode_limited("peer response", &bytes, self.limits.max_frame).map_err(|e| protocol(addr, e))
    }

    fn slot(&self, addr: &str) -> Arc<Slot> {
        self.peers.lock().expect("peer map poisoned").entry(addr.to_string()).or_default().clone()
    }

    /// The cached connection to `addr`, or a new one. The handshake runs in
    /// its own task, so a caller that gives up (short Raft timeouts) does not
    /// abort it: the next caller finds it done or joins it.
    async fn connection(&self, addr: &str, slot: &Arc<Slot>) -> Result<Connection, CallError> {
        if let Some(c) = slot.live() {
            return Ok(c);
        }
        let pending = {
            let mut pending = slot.pending.lock().expect("peer slot poisoned");
            // Checked again under the lock: a handshake may have just finished.
            if let Some(c) = slot.live() {
                return Ok(c);
            }
            match &*pending {
                Some(p) => p.clone(),
                None => {
                    let task = tokio::spawn(connect(self.endpoint.clone(), addr.to_string(), slot.clone()));
                    let p =
                        async move { task.await.map_err(|e| format!("handshake task failed: {e}"))? }.boxed().shared();
                    *pending = Some(p.clone());
                    p
                }
            }
        };
        pending.await.map_err(|reason| CallError::Connect { addr: addr.to_string(), reason })
    }

    async fn exchange(
        &self,
        addr: &str,
        conn: &Connection,
        body: &bytes::Bytes,
        extra: Option<bytes::Bytes>,
    ) -> Result<Vec<u8>, CallError> {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(addr, e))?;
        let written = match write_frame(&mut send, body.clone(), self.limits.max_frame).await {
            Ok(()) => match extra {
                Some(extra) => send.write_chunk(extra).await.map_err(WriteFrameError::Write),
                None => Ok(()),
            },
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {}
            Err(WriteFrameError::TooLarge { len, max }) => {
                let _ = send.reset(0u32.into());
                return Err(CallError::TooLarge { addr: addr.to_string(), len, max });
            }
            // The peer refused the stream: its reset code (read below) says why.
            Err(WriteFrameError::Write(WriteError::Stopped(_))) => {}
            Err(WriteFrameError::Write(e)) => return Err(write_error(addr, e)),
        }
        let _ = send.finish();
        match read_frame(&mut recv, self.limits.max_frame).await {
            Ok(b) => Ok(b),
            Err(ReadFrameError::Read(e)) => Err(read_error(addr, e)),
            Err(e) => Err(protocol(addr, format!("bad response: {e}"))),
        }
    }
}

fn protocol(addr: &str, reason: impl ToString) -> CallError {
    CallError::Protocol { addr: addr.to_string(), reason: reason.to_string() }
}

fn lost(addr: &str, e: ConnectionError) -> CallError {
    CallError::Lost { addr: addr.to_string(), reason: e.to_string() }
}

fn read_error(addr: &str, e: ReadError) -> CallError {
    match e {
        ReadError::ConnectionLost(e) => lost(addr, e),
        ReadError::Reset(code) => protocol(addr, format!("peer refused the request ({})", code_name(code))),
        e => protocol(addr, e),
    }
}

fn write_error(addr: &str, e: WriteError) -> CallError {
    match e {
        WriteError::ConnectionLost(e) => lost(addr, e),
        e => protocol(addr, e),
    }
}

/// Resolves `addr` and makes the handshake, then caches the connection in
/// `slot` (or clears the attempt on failure).
async fn connect(endpoint: quinn::Endpoint, addr: String, slot: Arc<Slot>) -> Result<Connection, String> {
    let res = async {
        let target = resolve(&endpoint, &addr).await?;
        let connecting = endpoint.connect(target, PEER_SERVER_NAME).map_err(|e| e.to_string())?;
        connecting.await.map_err(|e| e.to_string())
    }
    .await;
    match &res {
        Ok(conn) => {
            tracing::debug!(peer = %addr, "connected to peer");
            *slot.conn.lock().expect("peer slot poisoned") = Some(conn.clone());
        }
        Err(e) => tracing::debug!(peer = %addr, error = %e, "cannot connect to peer"),
    }
    *slot.pending.lock().expect("peer slot poisoned") = None;
    res
}

/// Resolves "host:port", preferring an address of the local socket's family.
async fn resolve(endpoint: &quinn::Endpoint, addr: &str) -> Result<SocketAddr, String> {
    if addr.is_empty() {
        return Err("no peer address configured".into());
    }
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    let all: Vec<SocketAddr> =
        tokio::net::lookup_host(addr).await.map_err(|e| format!("cannot resolve: {e}"))?.collect();
    let v6 = endpoint.local_addr().map(|a| a.is_ipv6()).unwrap_or(false);
    all.iter()
        .find(|a| a.is_ipv6() == v6)
        .or(all.first())
        .copied()
        .ok_or_else(|| "the name resolves to no address".to_string())
}
