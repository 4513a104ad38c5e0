//! Bytes kept on a majority of the voters before they are acknowledged:
//! who else gets a copy, and waiting until enough of them have it.
//!
//! Blobs (outputs) and log chunks both need this: their bytes stay off the
//! Raft log, so Raft's own majority does not cover them, and a reference
//! committed through Raft must never point at bytes only one node holds.

use std::future::Future;

use bm_api::{ApiError, ErrorCode};
use futures::stream::{FuturesUnordered, StreamExt};

use crate::node::Node;

/// Another member that gets a copy.
#[derive(Clone, Debug)]
pub struct Copy {
    /// Its node id.
    pub id: u64,
    /// Whether its copy counts towards the majority.
    pub voter: bool,
    /// Its peer address.
    pub addr: String,
}

/// Every other member, and how many of the voters among them must confirm
/// their copy (with this node's own, a majority of the voters).
pub fn copies(node: &Node) -> (usize, Vec<Copy>) {
    if node.peer().is_none() {
        return (0, Vec::new());
    }
    let membership = node.raft().metrics().borrow().membership_config.membership().clone();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let needed = (voters.len() / 2 + 1).saturating_sub(usize::from(voters.contains(&node.id())));
    let others = membership
        .nodes()
        .filter(|(id, _)| **id != node.id())
        .map(|(id, info)| Copy { id: *id, voter: voters.contains(id), addr: info.peer_addr.clone() })
        .collect();
    (needed, others)
}

/// Every other member, those in `homes` first: whom to ask for bytes
/// kept on their homes (log chunks, blobs).
pub fn others_homes_first(node: &Node, homes: &[u64]) -> Vec<Copy> {
    let (_, mut others) = copies(node);
    others.sort_by_key(|c| !homes.contains(&c.id));
    others
}

/// The voters of the membership this node knows (none without a peer link).
pub fn voters(node: &Node) -> Vec<u64> {
    if node.peer().is_none() {
        return Vec::new();
    }
    node.raft().metrics().borrow().membership_config.membership().voter_ids().collect()
}

/// Waits until `needed` voters' copies (`pending`, one future per copy)
/// succeeded. The futures still running then are dropped, so a copy that
/// must go on in the background is a spawned task. `what` names the bytes
/// in the error when too few copies succeed.
pub async fn wait<F>(what: &str, needed: usize, pending: Vec<(Copy, F)>) -> Result<(), ApiError>
where
    F: Future<Output = Result<(), ApiError>>,
{
    let mut pending: FuturesUnordered<_> =
        pending.into_iter().map(|(copy, f)| async move { (copy, f.await) }).collect();
    let (mut acked, mut errors) = (0, Vec::new());
    while acked < needed {
        match pending.next().await {
            Some((copy, Ok(()))) => acked += usize::from(copy.voter),
            Some((copy, Err(e))) => errors.push(format!("node {}: {}", copy.id, e.message)),
            None => {
                return Err(ApiError::new(
                    ErrorCode::Unavailable,
                    format!("{what} reached {acked} of the {needed} other voters it needs: {}", errors.join("; ")),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(id: u64, voter: bool) -> Copy {
        Copy { id, voter, addr: String::new() }
    }

    fn fail(why: &str) -> ApiError {
        ApiError::new(ErrorCode::Internal, why)
    }

    #[tokio::test]
    async fn learners_do_not_count_and_failures_are_named() {
        use futures::FutureExt;
        let ok = |c| (c, futures::future::ready(Ok(())).boxed());
        let err = |c, why: &'static str| (c, futures::future::ready(Err(fail(why))).boxed());
        assert!(wait("the upload", 1, vec![err(copy(2, true), "disk full"), ok(copy(3, true))]).await.is_ok());
        let e = wait("the upload", 2, vec![ok(copy(2, false)), ok(copy(3, true)), err(copy(4, true), "gone")])
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert!(e.message.contains("reached 1 of the 2") && e.message.contains("node 4: gone"), "{}", e.message);
        // Nothing needed: done at once, even with copies that never end.
        assert!(wait("x", 0, vec![(copy(2, true), futures::future::pending().boxed())]).await.is_ok());
    }
}
