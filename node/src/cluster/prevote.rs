//! Pre-vote, built on top of openraft 0.9 (which has none). A node may
//! start an election only when a majority of the voters, itself included,
//! say they too have lost their leader and that its log is at least as
//! complete as theirs. A node cut off from the others never gets that
//! majority, so its term does not climb while it is away, and when the
//! link heals it rejoins as a follower instead of forcing an election on a
//! healthy cluster.
//!
//! The loop switches openraft's own election timer on and off, and once the
//! pre-vote is won it asks openraft to stand at once (after a random pause,
//! so that followers that lost the same leader do not split the vote)
//! rather than wait out one more election timeout; openraft runs the real
//! vote.

use std::time::Duration;

use bm_raft::{codec, PeerEndpoint};
use futures::stream::{FuturesUnordered, StreamExt};
use openraft::{LogId, ServerState};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::forward::{self, Called};
use super::proto::PeerCall;
use crate::node::Node;

/// What a would-be candidate asks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreVote {
    /// The candidate's id.
    pub candidate: u64,
    /// The id of the last entry in its log.
    pub last_log: Option<LogId<u64>>,
}

/// Whether this node would vote for the asker now: it has not heard from a
/// leader for longer than a leader's lease, and the asker's log is not
/// behind its own.
pub fn grant(node: &Node, ep: &PeerEndpoint, req: &PreVote) -> bool {
    let lease = Duration::from_millis(node.config().raft.election_timeout_max_ms);
    let leaderless = node.raft().metrics().borrow().state != ServerState::Leader
        && ep.leader_contact().since().is_none_or(|d| d > lease);
    leaderless && req.last_log >= node.last_log_id()
}

/// The longest pause between two looks at the leader's silence, in
/// milliseconds: with a longer heartbeat, a dead leader is still noticed
/// this soon after its lease runs out.
const TICK_MAX_MS: u64 = 50;

/// Runs for as long as the node runs.
pub async fn run(node: Node, ep: PeerEndpoint) {
    let t = node.config().raft.clone();
    let lease = Duration::from_millis(t.election_timeout_max_ms);
    let tick = Duration::from_millis(t.heartbeat_ms.clamp(10, TICK_MAX_MS));
    let raft = node.raft().clone();
    raft.runtime_config().elect(false);
    let min = Duration::from_millis(t.election_timeout_min_ms);
    let mut last_stand: Option<tokio::time::Instant> = None;
    loop {
        tokio::time::sleep(tick).await;
        let m = raft.metrics().borrow().clone();
        if m.state == ServerState::Leader || m.state == ServerState::Shutdown {
            continue;
        }
        if node.is_quiet() {
            raft.runtime_config().elect(false);
            continue;
        }
        let stale = ep.leader_contact().since().is_none_or(|d| d > lease);
        if !stale {
            raft.runtime_config().elect(false);
            continue;
        }
        let membership = m.membership_config.membership().clone();
        let voters: Vec<u64> = membership.voter_ids().collect();
        if !voters.contains(&node.id()) {
            continue;
        }
        let req = PreVote { candidate: node.id(), last_log: node.last_log_id() };
        let mut asks: FuturesUnordered<_> = voters
            .iter()
            .filter(|v| **v != node.id())
            .filter_map(|v| membership.get_node(v))
            .map(|n| {
                let (ep, req, addr) = (ep.clone(), req.clone(), n.peer_addr.clone());
                async move {
                    let call = PeerCall::PreVote(req);
                    match forward::call(&ep, &addr, &call, tick * 2).await {
                        Ok(Called::Ok(b)) => codec::decode::<bool>("pre-vote answer", &b).unwrap_or(false),
                        _ => false,
                    }
                }
            })
            .collect();
        // Counted as they come: a majority does not wait for the dead
        // leader's call to time out.
        let mut granted = 1;
        while granted * 2 <= voters.len() {
            match asks.next().await {
                Some(true) => granted += 1,
                Some(false) => {}
                None => break,
            }
        }
        let majority = granted * 2 > voters.len();
        raft.runtime_config().elect(majority);
        let rested = last_stand.is_none_or(|t| t.elapsed() > lease);
        if majority && rested && m.state != ServerState::Candidate {
            let pause = rand::thread_rng().gen_range(Duration::ZERO..=min / 2);
            tokio::time::sleep(pause).await;
            let still = ep.leader_contact().since().is_none_or(|d| d > lease);
            let state = raft.metrics().borrow().state;
            if still && !node.is_quiet() && matches!(state, ServerState::Follower) {
                last_stand = Some(tokio::time::Instant::now());
                let _ = raft.trigger().elect().await;
            }
        }
    }
}
