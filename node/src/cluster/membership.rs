//! Membership changes, carried out by the leader: add a node (as a learner
//! that catches up, then a voter), remove one, hand leadership to another.
//!
//! openraft 0.9 has no leadership transfer, so it is built from its public
//! knobs: the leader stops sending (heartbeats and writes) so that every
//! follower's leader lease runs out, the other voters are told not to start
//! elections for a while, and the chosen voter, whose log the leader made
//! sure is complete, starts one and wins it.

use std::collections::BTreeSet;
use std::time::Duration;

use bm_api::cluster::{ClusterStatus, MemberAdd};
use bm_api::{ApiError, ErrorCode};
use bm_raft::NodeInfo;
use openraft::ChangeMembers;

use super::forward::{self, Called};
use super::proto::{MemberOp, PeerCall, TransferStep};
use crate::node::Node;

/// How long a transfer may take before it is abandoned (leadership then
/// stays or goes wherever the ordinary election takes it).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(5);

fn raft_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Conflict, e.to_string())
}

/// Carries out `op`; the caller has checked this node leads. Answers the
/// cluster's status as the leader sees it once the change is done (a
/// removed node stops hearing from the cluster, so its view would stay
/// stale).
pub async fn apply(node: &Node, op: MemberOp) -> Result<ClusterStatus, ApiError> {
    match op {
        MemberOp::Add(add) => add_member(node, add).await?,
        MemberOp::Remove(id) => {
            if let Some(s) = remove(node, id).await? {
                return Ok(s);
            }
        }
        MemberOp::TransferLeader(to) => transfer(node, to).await?,
    }
    Ok(super::status::cluster(node).await)
}

async fn add_member(node: &Node, add: MemberAdd) -> Result<(), ApiError> {
    if add.id == 0 {
        return Err(ApiError::new(ErrorCode::BadRequest, "node ids start at 1"));
    }
    let raft = node.raft();
    let info = NodeInfo { peer_addr: add.peer_addr.clone(), api_addr: add.api_url.clone() };
    let known = raft.metrics().borrow().membership_config.membership().get_node(&add.id).cloned();
    match known {
        Some(k) if k != info => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("node {} is already a member with other addresses ({k}); remove it first", add.id),
            ))
        }
        Some(_) => {}
        None => {
            tracing::info!(node = add.id, peer = %add.peer_addr, "adding a learner");
            raft.add_learner(add.id, info, true).await.map_err(raft_err)?;
        }
    }
    if !add.learner {
        tracing::info!(node = add.id, "promoting to voter");
        raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([add.id])), false).await.map_err(raft_err)?;
    }
    Ok(())
}

/// Removes `id`; when that is this leader itself, hands over first and
/// has the new leader do it, answering its status.
async fn remove(node: &Node, id: u64) -> Result<Option<ClusterStatus>, ApiError> {
    let raft = node.raft();
    let membership = raft.metrics().borrow().membership_config.membership().clone();
    if membership.get_node(&id).is_none() {
        return Err(ApiError::new(ErrorCode::NotFound, format!("node {id} is not a member")));
    }
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    if voters.contains(&id) {
        if voters.len() == 1 {
            return Err(ApiError::new(ErrorCode::Conflict, format!("node {id} is the last voter")));
        }
        if id == node.id() {
            // A leader that removes itself leaves the cluster leaderless
            // for an election; hand over first.
            transfer(node, best_successor(node, id)).await?;
            return match forward::to_leader(raft, node.peer_or_err()?, node.id(), &remove_call(id), TRANSFER_TIMEOUT)
                .await?
            {
                Some(bytes) => Ok(Some(
                    bm_raft::codec::decode("cluster status", &bytes)
                        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?,
                )),
                None => Err(ApiError::new(ErrorCode::Unavailable, "leadership did not move; retry")),
            };
        }
        tracing::info!(node = id, "removing a voter");
        raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false).await.map_err(raft_err)?;
    }
    tracing::info!(node = id, "removing the node");
    raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false).await.map_err(raft_err)?;
    Ok(None)
}

/// The voter other than `leaving` that has replicated the most.
fn best_successor(node: &Node, leaving: u64) -> u64 {
    let m = node.raft().metrics().borrow().clone();
    let matched = |v: &u64| m.replication.as_ref().and_then(|r| r.get(v).cloned()).flatten().map(|l| l.index);
    m.membership_config.membership().voter_ids().filter(|v| *v != leaving).max_by_key(matched).unwrap_or(leaving)
}

fn remove_call(id: u64) -> PeerCall {
    PeerCall::Member(MemberOp::Remove(id))
}

/// Hands leadership to voter `to`.
pub async fn transfer(node: &Node, to: u64) -> Result<(), ApiError> {
    let raft = node.raft();
    let me = node.id();
    if to == me {
        return Ok(());
    }
    let m = raft.metrics().borrow().clone();
    let membership = m.membership_config.membership().clone();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let Some(target) = membership.get_node(&to).filter(|_| voters.contains(&to)).cloned() else {
        return Err(ApiError::new(ErrorCode::BadRequest, format!("node {to} is not a voter")));
    };
    let ep = node.peer_or_err()?;
    let lease = Duration::from_millis(node.config().raft.election_timeout_max_ms);
    let quiet_ms = (TRANSFER_TIMEOUT.as_millis()) as u64;
    tracing::info!(to, "transferring leadership");
    // Stop writes here so that the target's log is complete and stays so.
    let _pause = node.pause_writes();
    let caught_up = raft
        .wait(Some(TRANSFER_TIMEOUT))
        .metrics(
            |m| {
                let last = m.last_log_index;
                m.replication.as_ref().and_then(|r| r.get(&to)).map(|l| l.map(|l| l.index)) == Some(last)
            },
            "target caught up",
        )
        .await;
    if caught_up.is_err() {
        let m = raft.metrics().borrow().clone();
        let matched = m.replication.as_ref().and_then(|r| r.get(&to).cloned()).flatten().map(|l| l.index);
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("node {to} did not catch up (it has {matched:?} of {:?}); not transferring", m.last_log_index),
        ));
    }
    for v in voters.iter().filter(|v| **v != to && **v != me) {
        if let Some(n) = membership.get_node(v) {
            let _ = forward::call(ep, &n.peer_addr, &PeerCall::Transfer(TransferStep::Quiet(quiet_ms)), lease).await;
        }
    }
    quiet(node, quiet_ms);
    raft.runtime_config().heartbeat(false);
    // Let every follower's lease on this leader run out, then ask the
    // target to stand.
    tokio::time::sleep(lease + Duration::from_millis(50)).await;
    let elected = forward::call(ep, &target.peer_addr, &PeerCall::Transfer(TransferStep::Elect), lease).await;
    let moved = match elected {
        Ok(Called::Ok(_)) => raft
            .wait(Some(TRANSFER_TIMEOUT))
            .metrics(|m| m.current_leader == Some(to), "leadership moved")
            .await
            .is_ok(),
        _ => false,
    };
    raft.runtime_config().heartbeat(true);
    // End the quiet periods now rather than when they run out.
    quiet(node, 0);
    for v in voters.iter().filter(|v| **v != to && **v != me) {
        if let Some(n) = membership.get_node(v) {
            let _ = forward::call(ep, &n.peer_addr, &PeerCall::Transfer(TransferStep::Quiet(0)), lease).await;
        }
    }
    if moved {
        tracing::info!(to, "leadership transferred");
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Unavailable, format!("leadership did not move to node {to}")))
    }
}

/// Stops this node from starting elections for `ms` milliseconds (the
/// pre-vote loop keeps them off while the quiet period lasts).
pub fn quiet(node: &Node, ms: u64) {
    node.set_quiet_until(std::time::Instant::now() + Duration::from_millis(ms));
    node.raft().runtime_config().elect(false);
}
