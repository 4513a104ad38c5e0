//! A network that reaches nobody: a one-voter cluster never sends an RPC,
//! and a node whose peers are not configured must say so, not hang.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use crate::types::{NodeId, NodeInfo, TypeConfig};

/// Network factory for a single-node cluster: every RPC is "unreachable".
#[derive(Clone, Default)]
pub struct NoNetwork;

#[derive(Debug, thiserror::Error)]
#[error("node {0} has no peer network configured")]
struct NoPeers(NodeId);

fn unreachable<E: std::error::Error>(target: NodeId) -> RPCError<NodeId, NodeInfo, E> {
    RPCError::Unreachable(Unreachable::new(&NoPeers(target)))
}

/// The per-peer client of [`NoNetwork`].
pub struct NoClient(NodeId);

impl RaftNetworkFactory<TypeConfig> for NoNetwork {
    type Network = NoClient;

    async fn new_client(&mut self, target: NodeId, _node: &NodeInfo) -> NoClient {
        NoClient(target)
    }
}

impl RaftNetwork<TypeConfig> for NoClient {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        Err(unreachable(self.0))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>>
    {
        Err(unreachable(self.0))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        Err(unreachable(self.0))
    }
}
