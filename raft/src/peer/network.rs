//! openraft's network over the peer link: each Raft RPC is one call on the
//! target's cached QUIC connection.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use super::client::{CallError, Client};
use super::proto::{Request, Response};
use crate::types::{NodeId, NodeInfo, TypeConfig};

/// Raft's network factory over the peer endpoint; given to `Raft::new`.
///
/// It exists so that openraft reaches every member at the `peer_addr` of its
/// [`NodeInfo`], through the node's one QUIC endpoint.
#[derive(Clone)]
pub struct QuicNetwork {
    pub(crate) client: Arc<Client>,
    /// This node's durable log mark: no follower is told a commit index
    /// past it (see [`crate::Durable`]).
    pub(crate) durable: crate::Durable,
}

/// The link to one Raft target, made by [`QuicNetwork`] for openraft.
pub struct QuicPeer {
    client: Arc<Client>,
    target: NodeId,
    addr: String,
    durable: crate::Durable,
}

impl RaftNetworkFactory<TypeConfig> for QuicNetwork {
    type Network = QuicPeer;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> QuicPeer {
        QuicPeer { client: self.client.clone(), target, addr: node.peer_addr.clone(), durable: self.durable.clone() }
    }
}

type RpcError<E = openraft::error::Infallible> = RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>;

impl QuicPeer {
    async fn call(&self, req: Request, option: &RPCOption) -> Result<Response, CallError> {
        self.client.call(&self.addr, &req, None, option.hard_ttl()).await
    }

    /// Maps a failed call; `sender` is the node id the request carries (for
    /// the timeout error), `action` the RPC kind.
    fn rpc_error<E: std::error::Error>(
        &self,
        e: CallError,
        action: RPCTypes,
        sender: Option<NodeId>,
        ttl: Duration,
    ) -> RpcError<E> {
        tracing::debug!(target_node = self.target, error = %e, "raft rpc failed");
        match e {
            // A connection was up and the peer is slow: openraft retries at once.
            CallError::Timeout { connected: true, .. } => RPCError::Timeout(Timeout {
                action,
                id: sender.unwrap_or(self.target),
                target: self.target,
                timeout: ttl,
            }),
            // No connection, or it broke: openraft backs off before the next try.
            CallError::Timeout { connected: false, .. } | CallError::Connect { .. } | CallError::Lost { .. } => {
                RPCError::Unreachable(Unreachable::new(&e))
            }
            CallError::TooLarge { .. } | CallError::Protocol { .. } => RPCError::Network(NetworkError::new(&e)),
        }
    }

    fn unexpected<E: std::error::Error>(&self) -> RpcError<E> {
        let e = CallError::Protocol { addr: self.addr.clone(), reason: "answer does not match the request".into() };
        RPCError::Network(NetworkError::new(&e))
    }

    fn remote<E: std::error::Error>(&self, e: RaftError<NodeId, E>) -> RpcError<E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl RaftNetwork<TypeConfig> for QuicPeer {
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        rpc.leader_commit = self.durable.clamp(rpc.leader_commit);
        let sender = rpc.vote.leader_id().voted_for();
        let entries = rpc.entries.len() as u64;
        match self.call(Request::AppendEntries(rpc), &option).await {
            Ok(Response::AppendEntries(r)) => r.map_err(|e| self.remote(e)),
            Ok(_) => Err(self.unexpected()),
            // Over the frame limit: openraft retries at once with fewer entries.
            Err(CallError::TooLarge { .. }) if entries > 1 => {
                Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(entries / 2)))
            }
            // Too many entries to send, store and answer within the time
            // openraft allows (one heartbeat): a follower catching up after
            // a pause would ask for the same batch forever. Half as many
            // fit sooner; openraft retries at once with the hint.
            Err(CallError::Timeout { connected: true, .. }) if entries > 1 => {
                tracing::debug!(target_node = self.target, entries, "append timed out; sending fewer entries");
                Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(entries / 2)))
            }
            Err(e) => Err(self.rpc_error(e, RPCTypes::AppendEntries, sender, option.hard_ttl())),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        let sender = rpc.vote.leader_id().voted_for();
        match self.call(Request::InstallSnapshot(rpc), &option).await {
            Ok(Response::InstallSnapshot(r)) => r.map_err(|e| self.remote(e)),
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.rpc_error(e, RPCTypes::InstallSnapshot, sender, option.hard_ttl())),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcError> {
        let sender = rpc.vote.leader_id().voted_for();
        match self.call(Request::Vote(rpc), &option).await {
            Ok(Response::Vote(r)) => r.map_err(|e| self.remote(e)),
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.rpc_error(e, RPCTypes::Vote, sender, option.hard_ttl())),
        }
    }
}
