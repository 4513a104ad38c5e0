//! The cluster itself: its members, their roles and replication progress,
//! and the membership changes an operator makes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One node's own view of Raft, as it reports it to whoever asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeStatus {
    /// Node id.
    pub id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    /// The node's current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// Index of the last entry in its log.
    pub last_log: Option<u64>,
    /// Highest index it knows to be committed.
    pub committed: Option<u64>,
    /// Highest index it has applied.
    pub applied: Option<u64>,
    /// Index covered by its last snapshot.
    pub snapshot: Option<u64>,
    /// Index its log is purged up to.
    pub purged: Option<u64>,
    /// Its peer (QUIC) address.
    pub peer_addr: String,
    /// Its HTTP API base URL.
    pub api_url: String,
    /// Agents connected to this node over QUIC right now.
    #[serde(default)]
    pub agents: u64,
    /// Log chunks on this node's disk (the bytes of large log batches;
    /// each is kept on a majority of the voters, its homes, and on any
    /// other node that has read it).
    #[serde(default)]
    pub log_chunks: u64,
    /// Log chunks a job refers to and this node is a home of (every one,
    /// on a node set to keep them all), but does not hold: the repair
    /// pass's work left here (0 once it has run).
    #[serde(default)]
    pub log_chunks_missing: u64,
    /// Output blobs a job refers to and this node is a home of (every one,
    /// on a node set to keep them all), but does not hold: like
    /// `log_chunks_missing`, 0 once repair has run.
    #[serde(default)]
    pub blobs_missing: u64,
}

/// One member as seen from the node answering `GET /v1/cluster`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberStatus {
    /// Node id.
    pub id: u64,
    /// Whether it votes (a learner only receives the log).
    pub voter: bool,
    /// `ok` when it answered, else why not (`unreachable: …`).
    pub health: String,
    /// Round trip of the status call, microseconds, when it answered.
    pub rtt_us: Option<u64>,
    /// Entries it trails the leader by, as the leader counts them (only
    /// known when the answering node is the leader).
    pub lag: Option<u64>,
    /// Its peer address from the membership.
    pub peer_addr: String,
    /// Its API URL from the membership.
    pub api_url: String,
    /// What it reported about itself, when it answered.
    pub status: Option<NodeStatus>,
}

/// The whole cluster, as one node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterStatus {
    /// The node that answered.
    pub answered_by: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Its current term.
    pub term: u64,
    /// Members (voters and learners), by id.
    pub members: Vec<MemberStatus>,
}

/// Asks the cluster to take in a new node (learner first, voter once it
/// has caught up).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberAdd {
    /// The new node's id (unused in this cluster).
    pub id: u64,
    /// Its peer (QUIC) address.
    pub peer_addr: String,
    /// Its HTTP API base URL.
    pub api_url: String,
    /// Leave it a learner (it replicates, never votes).
    #[serde(default)]
    pub learner: bool,
}

/// Asks the leader to hand leadership to another voter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderTransfer {
    /// The voter that should lead.
    pub to: u64,
}
