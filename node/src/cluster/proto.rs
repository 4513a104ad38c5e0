//! The application messages nodes exchange over the peer link, on top of
//! Raft's own RPCs. Encoded with the bincode codec, like everything else
//! on the wire.

use bm_api::cluster::MemberAdd;
use bm_api::ApiError;
use serde::{Deserialize, Serialize};

/// A request from one node to another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PeerCall {
    /// A batch of state-machine commands (already encoded) for the leader
    /// to commit; the answer is the encoded outcomes.
    Propose(Vec<u8>),
    /// The leader confirms it still leads and answers the log index a
    /// linearizable read must wait for (encoded `Option<u64>`).
    ReadIndex,
    /// The receiver reports its own Raft status (encoded `NodeStatus`).
    Status,
    /// Workers whose agents called the sending node since its last report;
    /// the leader counts them as heard from.
    Heartbeats(Vec<String>),
    /// A membership change for the leader to carry out.
    Member(MemberOp),
    /// Would the receiver vote for the sender now (encoded `bool`)?
    PreVote(super::prevote::PreVote),
    /// One piece of a blob to keep (see `blobs::replicate`); its bytes are
    /// the call's body.
    BlobPut {
        /// Names this transfer's staging file.
        upload: String,
        /// Where the piece goes.
        offset: u64,
        /// The whole blob's sha256, on the last piece only: the receiver
        /// then checks the whole against it and keeps it.
        sha: Option<String>,
    },
    /// Up to `len` bytes of a blob from `offset`.
    BlobGet {
        /// Its sha256.
        sha: String,
        /// Where to start.
        offset: u64,
        /// Most bytes to answer.
        len: u64,
    },
    /// Part of a leadership transfer: the receiver stops (or resumes)
    /// starting elections, or, if it is the new leader-to-be, starts one.
    Transfer(TransferStep),
    /// A log chunk to keep (see `chunks::replicate`), the packed chunk
    /// being the call's body; answered once it is on the receiver's disk.
    ChunkPut {
        /// Its sha256, which the receiver checks.
        sha: [u8; 32],
    },
    /// A log chunk, answered empty when the receiver lacks it.
    ChunkGet {
        /// Its sha256.
        sha: [u8; 32],
    },
}

/// A membership change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MemberOp {
    /// Add a node (learner, then voter unless asked otherwise).
    Add(MemberAdd),
    /// Remove a node altogether.
    Remove(u64),
    /// Hand leadership to this voter.
    TransferLeader(u64),
}

/// What a node does during a leadership transfer.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum TransferStep {
    /// Do not start elections for this many milliseconds.
    Quiet(u64),
    /// Start an election now.
    Elect,
}

/// The answer to a [`PeerCall`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Answer {
    /// Done; the bytes depend on the call.
    Ok(#[serde(with = "bm_raft::bytes")] Vec<u8>),
    /// The receiver is not the leader and did nothing; ask the leader.
    NotLeader,
    /// Refused or failed, with the error to hand to the API caller.
    Err(ApiError),
}
