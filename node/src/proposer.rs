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

use bm_api::{ApiError, ErrorCode};
use bm_raft::{codec, NodeInfo, Payload, Raft};
use openraft::error::{ClientWriteError, RaftError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::sm::{Batch, Command, Outcome};

/// Most commands in one entry.
const MAX_BATCH: usize = 1024;
/// Batches handed to Raft at once: while one is being appended and
/// applied, the next is already waiting in openraft's queue.
const PIPELINE: usize = 2;

type Waiter = (Instant, oneshot::Sender<Result<Outcome, ApiError>>);

/// Most commit-latency samples kept between two reads.
const MAX_SAMPLES: usize = 1 << 20;

/// Commit latencies (enqueue to outcome, microseconds) for benchmarks and metrics.
#[derive(Clone, Default)]
pub struct Latencies(Arc<Mutex<Vec<u32>>>);

impl Latencies {
    /// Takes the samples recorded since the last call.
    pub fn take(&self) -> Vec<u32> {
        std::mem::take(&mut *self.0.lock().expect("latency lock"))
    }

    fn record(&self, since: Instant) {
        let mut v = self.0.lock().expect("latency lock");
        if v.len() < MAX_SAMPLES {
            v.push(since.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
    }
}

/// Handle to the batching task.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<(Command, Waiter)>,
    latencies: Latencies,
}

impl Proposer {
    /// Starts the batching task for `raft`.
    pub fn start(raft: Raft) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let latencies = Latencies::default();
        tokio::spawn(run(raft, rx, latencies.clone()));
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

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<(Command, Waiter)>, latencies: Latencies) {
    let inflight = Arc::new(Semaphore::new(PIPELINE));
    loop {
        let Ok(permit) = inflight.clone().acquire_owned().await else { return };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let (raft, latencies) = (raft.clone(), latencies.clone());
        tokio::spawn(async move {
            let (cmds, waiters): (Batch, Vec<Waiter>) = batch.into_iter().unzip();
            match commit(&raft, &cmds).await {
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

async fn commit(raft: &Raft, cmds: &Batch) -> Result<Vec<Outcome>, ApiError> {
    let bytes = codec::encode("state-machine command batch", cmds)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let resp = raft.client_write(Payload(bytes)).await.map_err(write_error)?;
    let outcomes: Vec<Outcome> = codec::decode("command outcomes", &resp.data.0)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    if outcomes.len() != cmds.len() {
        return Err(ApiError::new(ErrorCode::Internal, "state machine answered a batch with the wrong count"));
    }
    Ok(outcomes)
}

fn write_error(e: RaftError<u64, ClientWriteError<u64, NodeInfo>>) -> ApiError {
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
