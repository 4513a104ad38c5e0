//! The openraft type configuration shared by every bm node.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// A node's identity in the cluster; small integers chosen by the operator.
pub type NodeId = u64;

/// Where a node can be reached: its peer (Raft, QUIC) address and its HTTP API
/// address. Carried in the membership so every node can find every other one.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Address of the node's peer endpoint (Raft RPCs and forwarding).
    pub peer_addr: String,
    /// Base URL of the node's HTTP API.
    pub api_addr: String,
}

impl fmt::Debug for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer={} api={}", self.peer_addr, self.api_addr)
    }
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An opaque, already encoded application command or response.
///
/// Raft never looks inside; its `Debug` form prints only the length so that
/// openraft's logs cannot leak what a command carries (token hashes, secrets
/// of the job store).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload(#[serde(with = "crate::bytes")] pub Vec<u8>);

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

openraft::declare_raft_types!(
    /// The type configuration of bm's Raft group.
    pub TypeConfig:
        D = Payload,
        R = Payload,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The Raft handle type every node runs.
pub type Raft = openraft::Raft<TypeConfig>;
