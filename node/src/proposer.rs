//! The write path: packs concurrent commands into one Raft entry.
//!
//! openraft 0.9 appends and fsyncs each client write before it takes the
//! next, so one command per entry caps a node at one fsync per command.
//! The proposer keeps one batch in flight; commands that arrive meanwhile
//! wait in a queue and go together in the next entry, so under load many
//! commands share each append and fsync while a lone command still goes
//! out at once. Each caller gets its own command's outcome back.

use bm_api::{ApiError, ErrorCode};
use bm_raft::{codec, NodeInfo, Payload, Raft};
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot};

use crate::sm::{Batch, Command, Outcome};

/// Most commands in one entry.
const MAX_BATCH: usize = 1024;

type Waiter = oneshot::Sender<Result<Outcome, ApiError>>;

/// Handle to the batching task.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<(Command, Waiter)>,
}

impl Proposer {
    /// Starts the batching task for `raft`.
    pub fn start(raft: Raft) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Self { tx }
    }

    /// Commits `cmd` (with whatever else is waiting) and returns its outcome.
    pub async fn propose(&self, cmd: Command) -> Result<Outcome, ApiError> {
        let (tx, rx) = oneshot::channel();
        let gone = || ApiError::new(ErrorCode::Unavailable, "the node is shutting down");
        self.tx.send((cmd, tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<(Command, Waiter)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (cmds, waiters): (Batch, Vec<Waiter>) = batch.drain(..).unzip();
        match commit(&raft, &cmds).await {
            Ok(outcomes) => {
                for (w, o) in waiters.into_iter().zip(outcomes) {
                    let _ = w.send(Ok(o));
                }
            }
            Err(e) => {
                for w in waiters {
                    let _ = w.send(Err(e.clone()));
                }
            }
        }
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
