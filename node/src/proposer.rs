//! The write path: packs concurrent commands into one Raft entry.
//!
//! openraft 0.9 appends and fsyncs each client write before it takes the
//! next, so one command per entry caps a node at one fsync per command.
//! The proposer keeps two batches in flight (one being appended, one
//! waiting in openraft's queue); commands that arrive meanwhile wait here
//! and go together in the next entry, so under load many commands share
//! each append and fsync while a lone command still goes out at once. Each
//! caller gets its own command's outcome back. Batches in flight together
//! hold commands from different callers (a caller waits for its answer),
//! so the order between them is free.
//!
//! On a follower the batch goes to the leader over the peer link, which
//! commits it and answers the outcomes: any node takes writes.

use bm_api::latency::LatencyHistogram;
use bm_api::{ApiError, ErrorCode};
use bm_raft::{codec, NodeInfo, Payload, PeerEndpoint, Raft};
use openraft::error::{ClientWriteError, RaftError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use crate::cluster::forward::{self, Called, Leader};
use crate::cluster::proto::PeerCall;
use crate::sm::{Batch, Command, Outcome};

/// How long a write waits for a leader (an election, a transfer) before
/// the caller is told to retry.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// How long a leader waits for a quorum to commit a write (shorter than
/// a forwarded call's timeout, so the follower hears the verdict).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Holds new writes while a leadership transfer is under way.
#[derive(Clone)]
pub struct WritePause(Arc<watch::Sender<u32>>);

impl Default for WritePause {
    fn default() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }
}

/// Releases the pause when dropped.
pub struct PauseGuard(WritePause);

impl Drop for PauseGuard {
    fn drop(&mut self) {
        self.0 .0.send_modify(|n| *n -= 1);
    }
}

impl WritePause {
    /// Holds writes until the guard is dropped.
    pub fn pause(&self) -> PauseGuard {
        self.0.send_modify(|n| *n += 1);
        PauseGuard(self.clone())
    }

    /// Whether writes are held.
    pub fn is_paused(&self) -> bool {
        *self.0.borrow() > 0
    }

    async fn wait(&self) {
        let _ = self.0.subscribe().wait_for(|n| *n == 0).await;
    }
}

/// What the batching task needs to commit a batch here or on the leader.
struct Ctx {
    raft: Raft,
    me: u64,
    peer: Option<PeerEndpoint>,
    pause: WritePause,
}

/// Most commands in one entry.
const MAX_BATCH: usize = 1024;
/// Batches handed to Raft at once: while one is being appended and
/// applied, the next is already waiting in openraft's queue.
const PIPELINE: usize = 2;

type Waiter = (Instant, oneshot::Sender<Result<Outcome, ApiError>>);

/// Commit latencies (enqueue to outcome) counted in the buckets of
/// [`bm_api::latency`], since the node started: cheap to record (one atomic
/// add), fixed in size, and read by anyone without resetting it.
#[derive(Clone)]
pub struct Latencies(Arc<[AtomicU64]>);

impl Default for Latencies {
    fn default() -> Self {
        Self((0..bm_api::latency::BUCKETS).map(|_| AtomicU64::new(0)).collect())
    }
}

impl Latencies {
    /// The counts so far, for node `node`.
    pub fn reading(&self, node: u64) -> LatencyHistogram {
        let mut counts: Vec<u64> = self.0.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        while counts.last() == Some(&0) {
            counts.pop();
        }
        LatencyHistogram { node, counts }
    }

    fn record(&self, since: Instant) {
        let us = bm_api::latency::micros(since.elapsed());
        self.0[bm_api::latency::bucket_of(us)].fetch_add(1, Ordering::Relaxed);
    }
}

/// Handle to the batching task.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<(Command, Waiter)>,
    latencies: Latencies,
}

impl Proposer {
    /// Starts the batching task for `raft` on node `me`; with a peer link
    /// it forwards batches to the leader when this node does not lead.
    pub fn start(raft: Raft, me: u64, peer: Option<PeerEndpoint>, pause: WritePause) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let latencies = Latencies::default();
        tokio::spawn(run(Arc::new(Ctx { raft, me, peer, pause }), rx, latencies.clone()));
        Self { tx, latencies }
    }

    /// The commit-latency recorder.
    pub fn latencies(&self) -> &Latencies {
        &self.latencies
    }

    /// Commits `cmd` (with whatever else is waiting) and returns its outcome.
    pub async fn propose(&self, cmd: Command) -> Result<Outcome, ApiError> {
        let (tx, rx) = oneshot::channel();
        let gone = || ApiError::new(ErrorCode::Unavailable, "the node is shutting down");
        self.tx.send((cmd, (Instant::now(), tx))).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

async fn run(ctx: Arc<Ctx>, mut rx: mpsc::UnboundedReceiver<(Command, Waiter)>, latencies: Latencies) {
    let inflight = Arc::new(Semaphore::new(PIPELINE));
    loop {
        let Ok(permit) = inflight.clone().acquire_owned().await else { return };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let (ctx, latencies) = (ctx.clone(), latencies.clone());
        tokio::spawn(async move {
            let (cmds, waiters): (Batch, Vec<Waiter>) = batch.into_iter().unzip();
            match commit(&ctx, &cmds).await {
                Ok(outcomes) => {
                    for ((since, w), o) in waiters.into_iter().zip(outcomes) {
                        latencies.record(since);
                        let _ = w.send(Ok(o));
                    }
                }
                Err(e) => {
                    for (_, w) in waiters {
                        let _ = w.send(Err(e.clone()));
                    }
                }
            }
            drop(permit);
        });
    }
}

async fn commit(ctx: &Ctx, cmds: &Batch) -> Result<Vec<Outcome>, ApiError> {
    let bytes = codec::encode("state-machine command batch", cmds)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let answer = match &ctx.peer {
        None => ctx.raft.client_write(Payload(bytes)).await.map_err(write_error)?.data.0,
        Some(ep) => commit_anywhere(ctx, ep, bytes).await?,
    };
    let outcomes: Vec<Outcome> =
        codec::decode("command outcomes", &answer).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    if outcomes.len() != cmds.len() {
        return Err(ApiError::new(ErrorCode::Internal, "state machine answered a batch with the wrong count"));
    }
    Ok(outcomes)
}

/// Commits here when this node leads, else on the leader; waits out
/// elections and transfers. Only "not the leader" answers, which mean
/// nothing was done, are retried, so a batch is never committed twice.
async fn commit_anywhere(ctx: &Ctx, ep: &PeerEndpoint, bytes: Vec<u8>) -> Result<Vec<u8>, ApiError> {
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    let retry = || ApiError::new(ErrorCode::Unavailable, "no leader could be reached in time; retry");
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(retry());
        }
        if tokio::time::timeout(left, ctx.pause.wait()).await.is_err() {
            return Err(retry());
        }
        match forward::await_leader(&ctx.raft, ctx.me, left).await {
            Leader::Me => match write_bounded(&ctx.raft, bytes.clone()).await? {
                Ok(resp) => return Ok(resp.data.0),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => return Err(write_error(e)),
            },
            Leader::Unknown => tokio::time::sleep(Duration::from_millis(20)).await,
            Leader::Other { id, peer_addr } => {
                let call = PeerCall::Propose(bytes.clone());
                match forward::call_leader(&ctx.raft, ep, id, &peer_addr, &call).await? {
                    Called::Ok(answer) => return Ok(answer),
                    Called::NotLeader => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
    }
}

/// A leader cut off from its quorum keeps waiting for a commit that cannot
/// come; the caller is told so (the write may still commit later, if this
/// node keeps leading).
pub async fn write_bounded(
    raft: &Raft,
    bytes: Vec<u8>,
) -> Result<
    Result<openraft::raft::ClientWriteResponse<bm_raft::TypeConfig>, RaftError<u64, ClientWriteError<u64, NodeInfo>>>,
    ApiError,
> {
    tokio::time::timeout(WRITE_TIMEOUT, raft.client_write(Payload(bytes))).await.map_err(|_| {
        ApiError::new(ErrorCode::Unavailable, "no quorum confirmed the write in time; its outcome is unknown")
    })
}

/// The API error for a failed local write.
pub fn write_error(e: RaftError<u64, ClientWriteError<u64, NodeInfo>>) -> ApiError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ApiError::new(
            ErrorCode::Unavailable,
            match f.leader_node {
                Some(n) => format!("this node is not the leader; try {}", n.api_addr),
                None => "no leader is known right now; retry".to_string(),
            },
        ),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ApiError::new(ErrorCode::Conflict, e.to_string())
        }
        RaftError::Fatal(e) => ApiError::new(ErrorCode::Internal, format!("raft stopped: {e}")),
    }
}
