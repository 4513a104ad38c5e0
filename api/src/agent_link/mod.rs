//! The agent API over QUIC: what an agent uses to reach the cluster.
//!
//! An agent dials out to the nodes' QUIC endpoints (the same UDP port as
//! the peer link, told apart by ALPN), verifies the cluster CA, and shows
//! no certificate of its own: its bootstrap token and then its worker
//! credential travel in each request. [`AgentClient`] hides whether the
//! agent speaks QUIC or, where a cluster has no QUIC endpoint (a single
//! node without a peer link), the HTTP API.

mod link;
pub mod proto;

use bytes::Bytes;
use futures::StreamExt as _;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

pub use link::{AgentLink, Outgoing};
pub use proto::{AgentAnswer, AgentCall, AgentReply, AgentRequest};

use crate::agent::{AgentStorePut, BootstrapRequest, Bootstrapped, EventsUpload, Finish, Instruction};
use crate::client::{Client, ClientError};
use crate::codec;
use crate::eventlog::EventLog;
use crate::jobs::JobOutput;

/// ALPN protocol of the agent link; a node routes connections by it.
pub const ALPN: &[u8] = b"bm-agent/1";

/// An upload's bytes as they are read, so a file need not be held whole
/// in memory. An `Err` item means the source failed (the file changed or
/// could not be read): the upload is abandoned and the node stores nothing.
pub type UploadStream = futures::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// How an agent reaches the cluster: QUIC (the normal way) or HTTP.
#[derive(Clone)]
pub enum AgentClient {
    /// The agent link over QUIC to the nearest node.
    Quic(AgentLink),
    /// The HTTP API (a cluster without QUIC endpoints).
    Http(Client),
}

impl AgentClient {
    /// The same transport, calling with the worker credential `token`.
    pub fn with_token(&self, token: String) -> Self {
        match self {
            AgentClient::Quic(l) => AgentClient::Quic(l.with_token(token)),
            AgentClient::Http(c) => AgentClient::Http(Client::new(c.urls().to_vec(), Some(token))),
        }
    }

    /// Exchanges the single-use bootstrap token for a worker credential.
    pub async fn agent_bootstrap(&self, bootstrap_token: &str) -> Result<Bootstrapped, ClientError> {
        match self {
            AgentClient::Http(c) => c.agent_bootstrap(bootstrap_token).await,
            AgentClient::Quic(l) => {
                let req = BootstrapRequest { bootstrap_token: bootstrap_token.to_string() };
                match l.call(AgentCall::Bootstrap(req), None).await? {
                    (AgentAnswer::Bootstrapped(b), _) => Ok(b),
                    (other, _) => Err(mismatch(l, other)),
                }
            }
        }
    }

    /// Asks what to do next, waiting up to `wait` seconds for work. Also the heartbeat.
    pub async fn agent_instruction(&self, wait: u64) -> Result<Instruction, ClientError> {
        match self {
            AgentClient::Http(c) => c.agent_instruction(wait).await,
            AgentClient::Quic(l) => match l.call(AgentCall::Instruction { wait }, None).await? {
                (AgentAnswer::Instruction(i), _) => Ok(i),
                (other, _) => Err(mismatch(l, other)),
            },
        }
    }

    /// Reports the job started.
    pub async fn agent_start(&self, job: &str, epoch: u64) -> Result<(), ClientError> {
        match self {
            AgentClient::Http(c) => c.agent_start(job, epoch).await,
            AgentClient::Quic(l) => done(l, AgentCall::Start { job: job.into(), epoch }).await,
        }
    }

    /// Sends log lines and control messages.
    pub async fn agent_events(&self, job: &str, upload: &EventsUpload) -> Result<(), ClientError> {
        match self {
            AgentClient::Http(c) => c.agent_events(job, upload).await,
            AgentClient::Quic(l) => {
                let unpackable = |message: String| ClientError::Protocol { url: l.addrs().join(","), message };
                let log = EventLog::from_events(&upload.events).map_err(|e| unpackable(format!("events: {e}")))?;
                let packed = codec::encode("events", &log).map_err(|e| unpackable(e.to_string()))?;
                let (epoch, first, size) = (upload.epoch, upload.first, packed.len() as u64);
                let call = AgentCall::Events { job: job.into(), epoch, first, size };
                match l.call(call, Some(packed.into())).await? {
                    (AgentAnswer::Done, _) => Ok(()),
                    (other, _) => Err(mismatch(l, other)),
                }
            }
        }
    }

    /// Uploads one output file found at `path` in the worker.
    pub async fn agent_output(&self, job: &str, epoch: u64, path: &str, data: Bytes) -> Result<JobOutput, ClientError> {
        match self {
            AgentClient::Http(c) => c.agent_output(job, epoch, path, data).await,
            AgentClient::Quic(l) => {
                let call = AgentCall::Output { job: job.into(), epoch, path: path.into(), size: data.len() as u64 };
                match l.call(call, Some(data)).await? {
                    (AgentAnswer::Output(o), _) => Ok(o),
                    (other, _) => Err(mismatch(l, other)),
                }
            }
        }
    }

    /// Uploads one output file of `size` bytes as `body` yields them (see
    /// [`UploadStream`]). One attempt: the stream cannot be replayed, so
    /// the caller makes it again to retry.
    pub async fn agent_output_stream(
        &self,
        job: &str,
        epoch: u64,
        path: &str,
        size: u64,
        body: UploadStream,
    ) -> Result<JobOutput, ClientError> {
        match self {
            AgentClient::Http(c) => c.agent_output_stream(job, epoch, path, size, body).await,
            AgentClient::Quic(l) => {
                let call = AgentCall::Output { job: job.into(), epoch, path: path.into(), size };
                match l.call_with(call, Outgoing::Stream { size, body }, None, 0).await? {
                    AgentAnswer::Output(o) => Ok(o),
                    other => Err(mismatch(l, other)),
                }
            }
        }
    }

    /// Downloads an output of a job this one depends on, whole in memory
    /// (see [`AgentClient::agent_input_into`] for files of any size).
    pub async fn agent_input(&self, job: &str, epoch: u64, output: &str) -> Result<Bytes, ClientError> {
        let mut buf = Vec::new();
        self.agent_input_into(job, epoch, output, 0, &mut buf).await?;
        Ok(buf.into())
    }

    /// Downloads an output of a job this one depends on into `sink` a
    /// piece at a time, and returns how many bytes it wrote. `expected` is
    /// the output's size as far as the caller knows (0 if not): it buys the
    /// call time to move that many bytes. A failed write to `sink` is
    /// [`ClientError::Local`]; a download cut short is a transport error,
    /// after which the caller starts over with an empty sink.
    pub async fn agent_input_into(
        &self,
        job: &str,
        epoch: u64,
        output: &str,
        expected: u64,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64, ClientError> {
        match self {
            AgentClient::Http(c) => {
                let resp = c.agent_input(job, epoch, output).await?;
                let url = resp.url().to_string();
                let size = resp.content_length();
                let mut body = resp.bytes_stream();
                let mut got = 0u64;
                // A node that stops sending mid-body is given up like one
                // that does not answer (the headers had their own limit).
                let idle = crate::patience::CALL;
                loop {
                    let next = tokio::time::timeout(idle, body.next()).await.map_err(|_| ClientError::Transport {
                        urls: url.clone(),
                        message: format!("no input bytes for {idle:?} after {got}"),
                    })?;
                    let Some(piece) = next else { break };
                    let piece =
                        piece.map_err(|e| ClientError::Transport { urls: url.clone(), message: e.to_string() })?;
                    sink.write_all(&piece).await.map_err(|e| ClientError::Local { message: e.to_string() })?;
                    got += piece.len() as u64;
                }
                if let Some(n) = size.filter(|n| *n != got) {
                    let message = format!("input ended after {got} of {n} bytes");
                    return Err(ClientError::Transport { urls: url, message });
                }
                sink.flush().await.map_err(|e| ClientError::Local { message: e.to_string() })?;
                Ok(got)
            }
            AgentClient::Quic(l) => {
                let call = AgentCall::Input { job: job.into(), epoch, output: output.into() };
                match l.call_with(call, Outgoing::None, Some(sink), expected).await? {
                    AgentAnswer::Input { size } => Ok(size),
                    other => Err(mismatch(l, other)),
                }
            }
        }
    }

    /// Sets a job-store value (`bmat store put`).
    pub async fn agent_store_put(&self, job: &str, name: &str, put: &AgentStorePut) -> Result<(), ClientError> {
        match self {
            AgentClient::Http(c) => c.agent_store_put(job, name, put).await,
            AgentClient::Quic(l) => {
                done(l, AgentCall::StorePut { job: job.into(), name: name.into(), put: put.clone() }).await
            }
        }
    }

    /// Reports the end of the job.
    pub async fn agent_finish(&self, job: &str, finish: &Finish) -> Result<(), ClientError> {
        match self {
            AgentClient::Http(c) => c.agent_finish(job, finish).await,
            AgentClient::Quic(l) => done(l, AgentCall::Finish { job: job.into(), finish: finish.clone() }).await,
        }
    }
}

async fn done(l: &AgentLink, call: AgentCall) -> Result<(), ClientError> {
    match l.call(call, None).await? {
        (AgentAnswer::Done, _) => Ok(()),
        (other, _) => Err(mismatch(l, other)),
    }
}

fn mismatch(l: &AgentLink, answer: AgentAnswer) -> ClientError {
    ClientError::Protocol { url: l.addrs().join(","), message: format!("answer does not fit the call: {answer:?}") }
}
