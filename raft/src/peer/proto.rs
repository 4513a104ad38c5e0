//! The messages of the peer link: one request and one response per stream.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::types::{NodeId, TypeConfig};

/// What a peer asks for. Variant order is the wire format: append only.
#[derive(Serialize, Deserialize)]
pub(crate) enum Request {
    /// Raft log replication and heartbeats.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft election.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot (openraft cuts the snapshot into chunks).
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// An opaque application request, for the node's [`super::AppHandler`].
    App(#[serde(with = "crate::bytes")] Vec<u8>),
    /// An application request with a body of `body_len` raw bytes after the
    /// frame (a blob piece, a log chunk). The body reaches the handler as
    /// it came off the stream: inside [`Request::App`] it was copied into
    /// the call's encoding, then the request's, and out of both again.
    AppBody {
        /// The encoded call.
        #[serde(with = "crate::bytes")]
        head: Vec<u8>,
        /// Length of the body that follows the frame.
        body_len: u64,
    },
}

impl Request {
    /// The request's kind, for logs (never its content).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Request::AppendEntries(_) => "append-entries",
            Request::Vote(_) => "vote",
            Request::InstallSnapshot(_) => "install-snapshot",
            Request::App(_) | Request::AppBody { .. } => "app",
        }
    }
}

/// The answer to a [`Request`] of the same variant.
#[derive(Serialize, Deserialize)]
pub(crate) enum Response {
    /// Answer to [`Request::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`Request::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`Request::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// Answer to [`Request::App`]: the handler's result.
    App(Result<crate::types::Payload, String>),
}

/// Stream error code: the request frame was oversized, truncated or unreadable.
pub(crate) const CODE_BAD_FRAME: u32 = 1;
/// Stream error code: the frame was read but is not a request.
pub(crate) const CODE_BAD_REQUEST: u32 = 2;
/// Stream error code: the answer could not be encoded or sent.
pub(crate) const CODE_INTERNAL: u32 = 3;

/// Describes a stream error code for messages.
pub(crate) fn code_name(code: quinn::VarInt) -> &'static str {
    match code.into_inner() {
        c if c == CODE_BAD_FRAME as u64 => "bad frame",
        c if c == CODE_BAD_REQUEST as u64 => "bad request",
        c if c == CODE_INTERNAL as u64 => "internal error",
        _ => "unknown reason",
    }
}

#[cfg(test)]
mod tests {
    use openraft::error::{Fatal, ForwardToLeader};
    use openraft::{CommittedLeaderId, LogId, Vote};

    use super::*;
    use crate::codec;
    use crate::types::{NodeInfo, Payload};

    #[test]
    fn raft_messages_and_errors_survive_bincode() {
        let vote = Vote::new_committed(3, 1);
        let entry = openraft::Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), 7),
            payload: openraft::EntryPayload::Normal(Payload(vec![1, 2, 3])),
        };
        let req = Request::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: None,
            leader_commit: Some(LogId::new(CommittedLeaderId::new(3, 1), 6)),
            entries: vec![entry],
        });
        let bytes = codec::encode("request", &req).unwrap();
        let Request::AppendEntries(back) = codec::decode::<Request>("request", &bytes).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(back.entries.len(), 1);

        let errors: Vec<RaftError<NodeId>> = vec![RaftError::Fatal(Fatal::Stopped), RaftError::Fatal(Fatal::Panicked)];
        for e in errors {
            let bytes = codec::encode("response", &Response::Vote(Err(e.clone()))).unwrap();
            let Response::Vote(Err(back)) = codec::decode::<Response>("response", &bytes).unwrap() else {
                panic!("wrong variant")
            };
            assert_eq!(back.to_string(), e.to_string());
        }
        let fwd: RaftError<NodeId, openraft::error::ClientWriteError<NodeId, NodeInfo>> =
            RaftError::APIError(openraft::error::ClientWriteError::ForwardToLeader(ForwardToLeader {
                leader_id: Some(2),
                leader_node: Some(NodeInfo { peer_addr: "127.0.0.1:1".into(), api_addr: "http://x".into() }),
            }));
        let bytes = codec::encode("error", &fwd).unwrap();
        let back: RaftError<NodeId, openraft::error::ClientWriteError<NodeId, NodeInfo>> =
            codec::decode("error", &bytes).unwrap();
        assert_eq!(back.to_string(), fwd.to_string());
    }
}
