//! `GET /v1/cluster`: every member's role and replication progress, as
//! the answering node and the members themselves report it.

use std::time::{Duration, Instant};

use bm_api::cluster::{ClusterStatus, MemberStatus, NodeStatus};
use bm_raft::codec;
use openraft::ServerState;

use super::forward::{self, Called};
use super::proto::PeerCall;
use crate::node::Node;

/// How long the answering node waits for each member's own report.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// This node's own view of Raft.
pub async fn local(node: &Node) -> NodeStatus {
    let committed = node.raft().with_raft_state(|st| st.committed.map(|l| l.index)).await.ok().flatten();
    let m = node.raft().metrics().borrow().clone();
    let me = m.membership_config.membership().get_node(&node.id()).cloned().unwrap_or_default();
    let voter = m.membership_config.membership().voter_ids().any(|v| v == node.id());
    let role = match m.state {
        ServerState::Leader => "leader",
        ServerState::Candidate => "candidate",
        ServerState::Shutdown => "shutdown",
        ServerState::Learner => "learner",
        ServerState::Follower if !voter => "learner",
        ServerState::Follower => "follower",
    };
    NodeStatus {
        id: node.id(),
        role: role.to_string(),
        term: m.current_term,
        leader: m.current_leader,
        last_log: m.last_log_index,
        committed,
        applied: m.last_applied.map(|l| l.index),
        snapshot: m.snapshot.map(|l| l.index),
        purged: m.purged.map(|l| l.index),
        peer_addr: me.peer_addr,
        api_url: me.api_addr,
        agents: node.agents_connected() as u64,
        log_chunks: node.chunks().store.count() as u64,
        log_chunks_missing: crate::blobs::repair::missing_chunks(node).len() as u64,
        blobs_missing: crate::blobs::repair::missing_blobs(node).len() as u64,
    }
}

/// The whole cluster as this node sees it, asking every member in parallel.
pub async fn cluster(node: &Node) -> ClusterStatus {
    let m = node.raft().metrics().borrow().clone();
    let membership = m.membership_config.membership().clone();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let leader_last = m.last_log_index.unwrap_or(0);
    let asks = membership.nodes().map(|(id, info)| {
        let (id, info) = (*id, info.clone());
        let node = node.clone();
        let replication = m.replication.clone();
        let voter = voters.contains(&id);
        async move {
            let (health, rtt_us, status) = if id == node.id() {
                ("ok".to_string(), Some(0), Some(local(&node).await))
            } else {
                ask(&node, &info.peer_addr).await
            };
            let lag = replication
                .as_ref()
                .and_then(|r| r.get(&id))
                .map(|matched| leader_last.saturating_sub(matched.map(|l| l.index).unwrap_or(0)));
            MemberStatus { id, voter, health, rtt_us, lag, peer_addr: info.peer_addr, api_url: info.api_addr, status }
        }
    });
    let members = futures::future::join_all(asks).await;
    ClusterStatus { answered_by: node.id(), leader: m.current_leader, term: m.current_term, members }
}

async fn ask(node: &Node, peer_addr: &str) -> (String, Option<u64>, Option<NodeStatus>) {
    let Some(ep) = node.peer() else { return ("no peer link".into(), None, None) };
    let start = Instant::now();
    match forward::call(ep, peer_addr, &PeerCall::Status, ASK_TIMEOUT).await {
        Ok(Called::Ok(bytes)) => match codec::decode::<NodeStatus>("node status", &bytes) {
            Ok(s) => ("ok".into(), Some(bm_api::latency::micros(start.elapsed())), Some(s)),
            Err(e) => (format!("bad answer: {e}"), None, None),
        },
        Ok(Called::NotLeader) => ("bad answer: not leader".into(), None, None),
        Err(e) => (format!("unreachable: {}", e.message), None, None),
    }
}
